"""The emulator over real HTTP: every endpoint and status, expiry, control API, contract."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from opsgenie_heartbeat_emulator import EmulatorHandle

StartCli = Callable[[str, Path], tuple[subprocess.Popen[str], str]]

SPEC = Path(__file__).resolve().parent.parent / "specs" / "opsgenie-heartbeat-openapi.yml"


class Api:
    """Raw HTTP to the emulator, with the key, so tests see exactly what the wire carries."""

    def __init__(self, emulator: EmulatorHandle, key: str | None = None) -> None:
        self.base = emulator.url
        self.session = requests.Session()
        if key is not None:
            self.session.headers["Authorization"] = f"GenieKey {key}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=10, **kwargs)


@pytest.fixture
def api(opsgenie_emulator: EmulatorHandle) -> Api:
    return Api(opsgenie_emulator, opsgenie_emulator.api_key)


def create(api: Api, name: str = "nightly", **fields: Any) -> requests.Response:
    body = {"name": name, "interval": 10, "intervalUnit": "minutes", "enabled": True, **fields}
    return api("POST", "/v2/heartbeats", json=body)


def test_create_answers_201_with_the_envelope_and_headers(api: Api) -> None:
    response = create(api, alertTags=["etl"], alertPriority="P2", ownerTeam={"name": "data"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"data", "took", "requestId"}
    assert body["requestId"] == response.headers["X-Request-ID"]
    assert response.headers["X-RateLimit-State"] == "OK"
    assert body["data"]["name"] == "nightly"
    assert body["data"]["alertMessage"] == "nightly is expired"  # the service's default
    assert body["data"]["alertPriority"] == "P2"
    assert body["data"]["ownerTeam"] == {"name": "data"}
    assert body["data"]["expired"] is False
    assert "lastPingTime" not in body["data"]


def test_list_get_update_enable_disable_delete(api: Api) -> None:
    create(api, "a")
    create(api, "b")
    listed = api("GET", "/v2/heartbeats").json()["data"]["heartbeats"]
    assert sorted(h["name"] for h in listed) == ["a", "b"]
    assert api("GET", "/v2/heartbeats/a").json()["data"]["interval"] == 10

    updated = api("PATCH", "/v2/heartbeats/a", json={"interval": 3, "intervalUnit": "hours"})
    assert updated.status_code == 200
    assert updated.json()["data"] == {"name": "a", "enabled": True, "expired": False}
    assert api("GET", "/v2/heartbeats/a").json()["data"]["intervalUnit"] == "hours"

    disabled = api("POST", "/v2/heartbeats/a/disable")
    assert disabled.status_code == 200
    assert disabled.json()["data"]["enabled"] is False
    assert api("POST", "/v2/heartbeats/a/enable").json()["data"]["enabled"] is True

    deleted = api("DELETE", "/v2/heartbeats/a")
    assert deleted.status_code == 200
    assert isinstance(deleted.json()["result"], str)
    assert api("GET", "/v2/heartbeats/a").status_code == 404


def test_duplicate_name_is_409(api: Api) -> None:
    assert create(api).status_code == 201
    second = create(api)
    assert second.status_code == 409
    assert "already exists" in second.json()["message"]


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/enable"), ("POST", "/disable")],
)
def test_unknown_name_is_404(api: Api, method: str, suffix: str) -> None:
    response = api(method, f"/v2/heartbeats/ghost{suffix}", json={"interval": 2} if method == "PATCH" else None)
    assert response.status_code == 404
    assert response.json()["requestId"]


def test_missing_or_wrong_key_is_401(opsgenie_emulator: EmulatorHandle) -> None:
    assert Api(opsgenie_emulator)("GET", "/v2/heartbeats").status_code == 401
    assert Api(opsgenie_emulator, "wrong")("GET", "/v2/heartbeats").status_code == 401
    bearer = requests.get(
        opsgenie_emulator.url + "/v2/heartbeats",
        headers={"Authorization": f"Bearer {opsgenie_emulator.api_key}"},
        timeout=10,
    )
    assert bearer.status_code == 401


def test_ping_only_key_pings_and_nothing_else(opsgenie_emulator: EmulatorHandle, api: Api) -> None:
    create(api)
    ping_only = Api(opsgenie_emulator, opsgenie_emulator.ping_only_key)
    assert ping_only("POST", "/v2/heartbeats/nightly/ping").status_code == 202
    assert ping_only("GET", "/v2/heartbeats").status_code == 403
    assert ping_only("GET", "/v2/heartbeats/nightly").status_code == 403
    assert create(ping_only, "other").status_code == 403
    assert ping_only("DELETE", "/v2/heartbeats/nightly").status_code == 403


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"name": "x" * 201}, "name"),
        ({"interval": 0}, "interval"),
        ({"interval": "5"}, "interval"),
        ({"intervalUnit": "weeks"}, "intervalUnit"),
        ({"intervalUnit": "Minutes"}, "intervalUnit"),
        ({"alertPriority": "P6"}, "alertPriority"),
        ({"alertTags": [f"t{i}" for i in range(21)]}, "alertTags"),
        ({"alertTags": ["x" * 51]}, "alertTags"),
        ({"alertMessage": "m" * 131}, "alertMessage"),
        ({"description": "d" * 10_001}, "description"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_field_rules_give_422_naming_the_field(api: Api, fields: dict[str, Any], bad_field: str) -> None:
    response = create(api, **{"name": "rules", **fields})
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "Request body is not processable. Please check the errors."
    assert list(body["errors"]) == [bad_field]
    assert api("GET", "/v2/heartbeats").json()["data"]["heartbeats"] == []


def test_missing_required_fields_give_422(api: Api) -> None:
    response = api("POST", "/v2/heartbeats", json={"name": "x"})
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"interval", "intervalUnit", "enabled"}


def test_malformed_json_is_400(api: Api) -> None:
    response = api("POST", "/v2/heartbeats", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert api("PATCH", "/v2/heartbeats/x", data=b"[1,").status_code in (400, 404)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "HEAD"])
def test_ping_accepts_every_documented_method(api: Api, opsgenie_emulator: EmulatorHandle, method: str) -> None:
    create(api)
    response = api(method, "/v2/heartbeats/nightly/ping")
    assert response.status_code == 202
    if method != "HEAD":
        assert response.json()["result"] == "PONG - Heartbeat received"
    assert opsgenie_emulator.heartbeats()["nightly"]["lastPingTime"]


def test_ping_of_unknown_name_is_pong_and_recorded(api: Api, opsgenie_emulator: EmulatorHandle) -> None:
    response = api("POST", "/v2/heartbeats/typo/ping")
    assert response.status_code == 202
    assert response.json()["result"] == "PONG - Heartbeat received"
    (entry,) = [r for r in opsgenie_emulator.requests() if r["endpoint"] == "ping"]
    assert entry["name"] == "typo"
    assert entry["unknown_heartbeat"] is True
    assert opsgenie_emulator.heartbeats() == {}


def test_name_is_one_percent_decoded_path_segment(api: Api, opsgenie_emulator: EmulatorHandle) -> None:
    assert create(api, "a/b").status_code == 201
    assert api("GET", "/v2/heartbeats/a%2Fb").json()["data"]["name"] == "a/b"
    # A literal slash is a different route, not the heartbeat "a/b".
    assert api("GET", "/v2/heartbeats/a/b").status_code == 404
    assert api("POST", "/v2/heartbeats/a%2Fb/ping").status_code == 202
    entry = opsgenie_emulator.requests()[-1]
    assert entry["path"] == "/v2/heartbeats/a%2Fb/ping"
    assert entry["name"] == "a/b"


def test_expiry_raises_exactly_one_alert_and_a_ping_clears_it(api: Api, opsgenie_emulator: EmulatorHandle) -> None:
    create(api, "nightly", interval=10, intervalUnit="minutes", alertTags=["etl"], alertPriority="P1")
    opsgenie_emulator.advance(9 * 60)
    assert opsgenie_emulator.heartbeats()["nightly"]["expired"] is False
    assert opsgenie_emulator.alerts() == []

    opsgenie_emulator.advance(2 * 60)
    assert api("GET", "/v2/heartbeats/nightly").json()["data"]["expired"] is True
    opsgenie_emulator.advance(60 * 60)
    (alert,) = opsgenie_emulator.alerts()
    assert alert["name"] == "nightly"
    assert alert["message"] == "nightly is expired"
    assert alert["tags"] == ["etl"]
    assert alert["priority"] == "P1"

    api("POST", "/v2/heartbeats/nightly/ping")
    data = api("GET", "/v2/heartbeats/nightly").json()["data"]
    assert data["expired"] is False
    assert data["lastPingTime"].endswith("Z")
    assert len(data["lastPingTime"]) == len("2025-02-20T14:00:05.533Z")
    # Expires again, alerts again: one alert per expiry.
    opsgenie_emulator.advance(11 * 60)
    assert len(opsgenie_emulator.alerts()) == 2


def test_disabled_never_expires_and_enabling_does_not_clear_expired(
    api: Api, opsgenie_emulator: EmulatorHandle
) -> None:
    create(api, "off", interval=1, intervalUnit="minutes")
    api("POST", "/v2/heartbeats/off/disable")
    opsgenie_emulator.advance(3600)
    assert opsgenie_emulator.heartbeats()["off"]["expired"] is False
    assert opsgenie_emulator.alerts() == []

    create(api, "late", interval=1, intervalUnit="minutes")
    opsgenie_emulator.advance(120)
    assert opsgenie_emulator.heartbeats()["late"]["expired"] is True
    api("POST", "/v2/heartbeats/late/disable")
    api("POST", "/v2/heartbeats/late/enable")
    assert api("GET", "/v2/heartbeats/late").json()["data"]["expired"] is True


def test_reset_clears_everything(api: Api, opsgenie_emulator: EmulatorHandle) -> None:
    create(api, interval=1)
    opsgenie_emulator.advance(120)
    opsgenie_emulator.set_faults({"kind": "latency", "seconds": 0.01})
    opsgenie_emulator.reset()
    assert opsgenie_emulator.heartbeats() == {}
    assert opsgenie_emulator.alerts() == []
    assert opsgenie_emulator.requests() == []
    assert requests.get(opsgenie_emulator.url + "/_emulator/faults", timeout=5).json() == {"faults": []}


def test_rate_limit_fault_answers_429_with_the_real_headers(api: Api, opsgenie_emulator: EmulatorHandle) -> None:
    opsgenie_emulator.set_faults({"kind": "rate_limit", "rate": 1, "burst": 2, "period_in_sec": 60})
    statuses = [api("GET", "/v2/heartbeats").status_code for _ in range(4)]
    assert statuses[:2] == [200, 200]
    assert 429 in statuses[2:]
    throttled = api("GET", "/v2/heartbeats")
    assert throttled.status_code == 429
    assert throttled.headers["X-RateLimit-State"] == "THROTTLED"
    assert throttled.headers["X-RateLimit-Reason"] == "ACCOUNT"
    assert throttled.headers["X-RateLimit-Period-In-Sec"] == "60"
    assert throttled.json()["message"].startswith("You are making too many requests!")


def test_status_fault_for_one_endpoint_and_a_number_of_times(api: Api, opsgenie_emulator: EmulatorHandle) -> None:
    create(api)
    opsgenie_emulator.set_faults({"kind": "status", "status": 503, "endpoint": "ping", "times": 2})
    assert api("GET", "/v2/heartbeats/nightly").status_code == 200
    pings = [api("POST", "/v2/heartbeats/nightly/ping").status_code for _ in range(3)]
    assert pings == [503, 503, 202]


def test_share_fault_is_seeded_and_repeatable(api: Api, opsgenie_emulator: EmulatorHandle) -> None:
    def run() -> list[int]:
        opsgenie_emulator.set_faults({"kind": "status", "status": 502, "share": 0.5, "seed": 3})
        return [api("GET", "/v2/heartbeats").status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert 0 < first.count(502) < 20


def test_latency_and_dropped_connection_faults(api: Api, opsgenie_emulator: EmulatorHandle) -> None:
    opsgenie_emulator.set_faults({"kind": "latency", "seconds": 0.3, "times": 1})
    started = time.monotonic()
    assert api("GET", "/v2/heartbeats").status_code == 200
    assert time.monotonic() - started >= 0.3

    opsgenie_emulator.set_faults({"kind": "drop", "endpoint": "create", "times": 1})
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        create(api, "dropped")
    # A drop happens after the request was processed: the heartbeat exists.
    assert "dropped" in opsgenie_emulator.heartbeats()
    assert opsgenie_emulator.requests()[-1]["status"] == "dropped"


def test_bad_fault_definition_is_refused(opsgenie_emulator: EmulatorHandle) -> None:
    response = requests.post(
        opsgenie_emulator.url + "/_emulator/faults", json={"faults": [{"kind": "meteor"}]}, timeout=5
    )
    assert response.status_code == 400
    assert "kind must be one of" in response.json()["message"]


# ---------------------------------------------------------------------------- contract


@pytest.fixture(scope="module")
def openapi(opsgenie_emulator_server: EmulatorHandle) -> Any:
    from openapi_core import OpenAPI

    spec = yaml.safe_load(SPEC.read_text())
    spec["servers"] = [{"url": opsgenie_emulator_server.url}]
    return OpenAPI.from_dict(spec)


def test_every_response_the_spec_defines_matches_it(api: Api, openapi: Any) -> None:
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    responses = [
        create(api, "c", description="d", alertTags=["t"], ownerTeam={"id": "t1", "name": "ops"}),
        create(api, "c"),  # 409 (not in the seed spec: skipped below)
        api("POST", "/v2/heartbeats", data=b"{"),
        api("GET", "/v2/heartbeats/c/ping"),
        api("GET", "/v2/heartbeats/ghost/ping"),
        api("GET", "/v2/heartbeats"),
        api("GET", "/v2/heartbeats/c"),
        api("GET", "/v2/heartbeats/ghost"),
        api("PATCH", "/v2/heartbeats/c", json={"interval": 5, "alertPriority": "P4"}),
        api("PATCH", "/v2/heartbeats/ghost", json={"interval": 5}),
        api("POST", "/v2/heartbeats/c/disable"),
        api("POST", "/v2/heartbeats/c/enable"),
        api("POST", "/v2/heartbeats/ghost/enable"),
        api("DELETE", "/v2/heartbeats/c"),
        api("DELETE", "/v2/heartbeats/c"),
        requests.get(api.base + "/v2/heartbeats", timeout=5),  # 401
    ]
    skipped = []
    for response in responses:
        operation = _operation(response.request.method or "", response.request.path_url)
        if str(response.status_code) not in operation["responses"]:
            skipped.append(response.status_code)
            continue
        openapi.validate_response(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response))
    # Only the 409, which the seed spec does not list, goes unchecked.
    assert skipped == [409]


def _operation(method: str, path: str) -> dict[str, Any]:
    spec = yaml.safe_load(SPEC.read_text())
    parts = path.split("?")[0].split("/")
    template = (
        "/v2/heartbeats" if len(parts) == 3 else "/v2/heartbeats/{name}" + ("/" + parts[4] if len(parts) == 5 else "")
    )
    operation: dict[str, Any] = spec["paths"][template][method.lower()]
    return operation


# ---------------------------------------------------------------------------- CLI and persistence


def test_state_file_survives_a_killed_process(tmp_path: Path, start_emulator_cli: StartCli) -> None:
    state = tmp_path / "state.db"
    process, url = start_emulator_cli("cli-key", state)
    headers = {"Authorization": "GenieKey cli-key"}
    try:
        body = {"name": "kept", "interval": 2, "intervalUnit": "hours", "enabled": True, "alertTags": ["x"]}
        assert requests.post(url + "/v2/heartbeats", json=body, headers=headers, timeout=5).status_code == 201
        assert requests.post(url + "/v2/heartbeats/kept/ping", headers=headers, timeout=5).status_code == 202
        before = requests.get(url + "/v2/heartbeats/kept", headers=headers, timeout=5).json()["data"]
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    process, url = start_emulator_cli("cli-key", state)
    try:
        after = requests.get(url + "/v2/heartbeats/kept", headers=headers, timeout=5).json()["data"]
    finally:
        process.terminate()
        process.wait(10)
    assert after == before
    assert after["lastPingTime"]


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "opsgenie-heartbeat-emulator"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30, check=True)
    assert "--ping-only-key" in result.stdout
    assert "--state" in result.stdout


def test_connection_json_points_airflow_at_the_emulator(opsgenie_emulator: EmulatorHandle) -> None:
    conn = json.loads(opsgenie_emulator.connection_json(region=None))
    assert conn["conn_type"] == "opsgenie_heartbeat"
    assert conn["host"] == opsgenie_emulator.url


@pytest.mark.parametrize(
    ("change", "alerts_at_11_minutes_after_lengthening", "alerts_at_6_minutes_after_shortening"),
    [("running", False, True), ("next_ping", True, False)],
)
def test_what_a_changed_interval_does_to_the_running_countdown(
    api: Api,
    opsgenie_emulator: EmulatorHandle,
    change: str,
    alerts_at_11_minutes_after_lengthening: bool,
    alerts_at_6_minutes_after_shortening: bool,
) -> None:
    """``running`` moves the deadline of the countdown under way; ``next_ping`` waits for the next ping."""
    opsgenie_emulator.set_interval_change(change)
    create(api, "longer")  # 10 minutes
    create(api, "shorter")
    api("POST", "/v2/heartbeats/longer/ping")
    api("POST", "/v2/heartbeats/shorter/ping")
    api("PATCH", "/v2/heartbeats/longer", json={"interval": 30})
    api("PATCH", "/v2/heartbeats/shorter", json={"interval": 5})
    opsgenie_emulator.advance(6 * 60)
    assert ("shorter" in {a["name"] for a in opsgenie_emulator.alerts()}) is alerts_at_6_minutes_after_shortening
    opsgenie_emulator.advance(5 * 60)
    assert ("longer" in {a["name"] for a in opsgenie_emulator.alerts()}) is alerts_at_11_minutes_after_lengthening
    # Under both readings the next ping starts a countdown with the new interval.
    create(api, "pinged")
    api("PATCH", "/v2/heartbeats/pinged", json={"interval": 30})
    api("POST", "/v2/heartbeats/pinged/ping")
    opsgenie_emulator.advance(29 * 60)
    assert "pinged" not in {a["name"] for a in opsgenie_emulator.alerts()}
    opsgenie_emulator.advance(2 * 60)
    assert "pinged" in {a["name"] for a in opsgenie_emulator.alerts()}


def test_a_reset_returns_to_the_configured_reading(api: Api, opsgenie_emulator: EmulatorHandle) -> None:
    opsgenie_emulator.set_interval_change("next_ping")
    assert api("GET", "/_emulator/settings").json() == {"interval_change": "next_ping"}
    opsgenie_emulator.reset()
    assert api("GET", "/_emulator/settings").json() == {"interval_change": "running"}
    refused = api("POST", "/_emulator/settings", json={"interval_change": "sometimes"})
    assert refused.status_code == 400
    assert "interval_change" in refused.text
