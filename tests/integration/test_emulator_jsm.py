"""The emulator's JSM Operations routes, the JSM client's mapping, and a contract test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_opsgenie_hb.api.client import HeartbeatClient
from airflow_provider_opsgenie_hb.api.errors import (
    HeartbeatNotFoundError,
    HeartbeatUnauthorizedError,
    HeartbeatUnsupportedError,
    HeartbeatValidationError,
)
from opsgenie_heartbeat_emulator import EmulatorHandle

SPEC = Path(__file__).resolve().parent.parent / "specs" / "jsm-ops-heartbeats-openapi.json"
CLOUD = "cloud-1"


@pytest.fixture
def jsm(opsgenie_emulator: EmulatorHandle) -> HeartbeatClient:
    return HeartbeatClient.jsm(
        opsgenie_emulator.jsm_email,
        opsgenie_emulator.api_key,
        cloud_id=CLOUD,
        team_id="team-1",
        base_url=opsgenie_emulator.url,
        time_budget=5,
    )


def raw(emulator: EmulatorHandle, method: str, suffix: str = "", **kwargs: Any) -> requests.Response:
    url = f"{emulator.url}/jsm/ops/api/{CLOUD}/v1/teams/team-1/heartbeats{suffix}"
    return requests.request(method, url, auth=(emulator.jsm_email, emulator.api_key), timeout=10, **kwargs)


def test_routes_speak_jsm(opsgenie_emulator: EmulatorHandle) -> None:
    created = raw(opsgenie_emulator, "POST", json={"name": "n", "interval": 5, "intervalUnit": "minutes"})
    assert created.status_code == 201
    assert created.json()["enabled"] is False  # JSM's default
    assert created.json()["status"] == "Off"
    assert created.json()["intervalUnit"] == "Minutes"
    assert (
        raw(opsgenie_emulator, "PATCH", params={"name": "n"}, json={"name": "n", "enabled": True}).json()["status"]
        == "Pending"
    )
    ping = raw(opsgenie_emulator, "POST", "/ping", params={"name": "n"})
    assert (ping.status_code, ping.json()) == (202, {"message": "PONG - Heartbeat received"})
    assert raw(opsgenie_emulator, "GET", params={"name": "n"}).json()["values"][0]["status"] == "Responsive"
    opsgenie_emulator.advance(6 * 60)
    assert raw(opsgenie_emulator, "GET").json()["values"][0]["status"] == "Unresponsive"
    assert raw(opsgenie_emulator, "DELETE", params={"name": "n"}).status_code == 204
    assert raw(opsgenie_emulator, "DELETE", params={"name": "n"}).status_code == 404
    assert opsgenie_emulator.heartbeats() == {}  # kept apart from OpsGenie's heartbeats


def test_basic_auth_is_required(opsgenie_emulator: EmulatorHandle) -> None:
    url = f"{opsgenie_emulator.url}/jsm/ops/api/{CLOUD}/v1/teams/team-1/heartbeats"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, auth=(opsgenie_emulator.jsm_email, "wrong"), timeout=5).status_code == 401
    with pytest.raises(HeartbeatUnauthorizedError):
        HeartbeatClient.jsm(
            "someone@else", opsgenie_emulator.api_key, cloud_id=CLOUD, team_id="t", base_url=opsgenie_emulator.url
        ).list_heartbeats()


def test_validation_errors_are_422_in_jsm_shape(opsgenie_emulator: EmulatorHandle) -> None:
    response = raw(opsgenie_emulator, "POST", json={"name": "n", "interval": 0, "intervalUnit": "weeks"})
    assert response.status_code == 422
    assert {e["code"] for e in response.json()["errors"]} == {"interval", "intervalUnit"}
    assert raw(opsgenie_emulator, "GET", params={"size": 101}).status_code == 422


def test_client_maps_every_method(jsm: HeartbeatClient, opsgenie_emulator: EmulatorHandle) -> None:
    jsm.create_heartbeat(name="a b/c", interval=2, interval_unit="hours", alert_tags=["x"], alert_priority="P1")
    jsm.create_heartbeat(name="a b", interval=1, interval_unit="days")  # a name that is part of another
    got = jsm.get_heartbeat("a b")
    assert (got.name, got.interval_unit, got.status, got.expired) == ("a b", "days", "Pending", False)
    jsm.ping_heartbeat("a b/c")
    assert jsm.get_heartbeat("a b/c").status == "Responsive"
    assert jsm.update_heartbeat("a b/c", interval=3).enabled is True
    assert jsm.disable_heartbeat("a b/c").enabled is False
    assert jsm.enable_heartbeat("a b/c").enabled is True
    jsm.delete_heartbeat("a b/c")
    assert [h.name for h in jsm.list_heartbeats()] == ["a b"]
    with pytest.raises(HeartbeatNotFoundError, match="no heartbeat named 'a b/c'"):
        jsm.get_heartbeat("a b/c")


def test_list_follows_every_page(jsm: HeartbeatClient, opsgenie_emulator: EmulatorHandle) -> None:
    for i in range(205):
        jsm.create_heartbeat(name=f"h{i:03}", interval=1, interval_unit="hours")
    assert len(jsm.list_heartbeats()) == 205
    pages = [r for r in opsgenie_emulator.requests() if r["endpoint"] == "list"]
    assert len(pages) == 3


def test_no_equivalent_gives_a_clear_error(jsm: HeartbeatClient, opsgenie_emulator: EmulatorHandle) -> None:
    with pytest.raises(HeartbeatUnsupportedError, match="owner_team has no JSM Operations equivalent"):
        jsm.create_heartbeat(name="x", interval=1, interval_unit="hours", owner_team="ops")
    assert opsgenie_emulator.requests() == []


@pytest.mark.parametrize(
    ("extra", "login", "field"),
    [
        ({"team_id": "t"}, "me@example.com", "cloud_id"),
        ({"cloud_id": "c"}, "me@example.com", "team_id"),
        ({"cloud_id": "c", "team_id": "t"}, None, "email"),
    ],
)
def test_jsm_connections_name_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, str], login: str | None, field: str
) -> None:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    conn = {"conn_type": "jsm_ops_heartbeat", "login": login, "password": "token-123", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_JSM_BAD", json.dumps(conn))
    with pytest.raises(HeartbeatValidationError) as err:
        _ = OpsgenieHeartbeatHook("jsm_bad").client
    assert field in err.value.errors


def test_jsm_connection_defaults_to_atlassian(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import JsmOpsHeartbeatHook

    conn = {
        "conn_type": "jsm_ops_heartbeat",
        "login": "me@example.com",
        "password": "token-123",
        "extra": {"cloud_id": "abc", "team_id": "t"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_JSM_OPS_HEARTBEAT_DEFAULT", json.dumps(conn))
    assert JsmOpsHeartbeatHook().client.base_url == "https://api.atlassian.com/jsm/ops/api/abc"


def test_every_jsm_response_the_spec_defines_matches_it(opsgenie_emulator: EmulatorHandle) -> None:
    from openapi_core import OpenAPI
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    spec = json.loads(SPEC.read_text())
    spec["servers"] = [{"url": f"{opsgenie_emulator.url}/jsm/ops/api/{CLOUD}"}]
    openapi = OpenAPI.from_dict(spec)
    responses = [
        raw(
            opsgenie_emulator,
            "POST",
            json={
                "name": "c",
                "interval": 5,
                "intervalUnit": "minutes",
                "alertTags": ["t"],
                "alertPriority": "P2",
                "enabled": True,
            },
        ),
        raw(opsgenie_emulator, "POST", json={"name": "bad", "interval": 0, "intervalUnit": "minutes"}),
        raw(opsgenie_emulator, "GET", params={"name": "c", "offset": 0, "size": 10}),
        raw(opsgenie_emulator, "PATCH", params={"name": "c"}, json={"name": "c", "interval": 7}),
        raw(opsgenie_emulator, "POST", "/ping", params={"name": "c"}),
        raw(opsgenie_emulator, "DELETE", params={"name": "c"}),
        requests.get(f"{opsgenie_emulator.url}/jsm/ops/api/{CLOUD}/v1/teams/team-1/heartbeats", timeout=5),
    ]
    assert [r.status_code for r in responses] == [201, 422, 200, 201, 202, 204, 401]
    for response in responses:
        openapi.validate_response(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response))


def test_fault_injection_applies_to_jsm_routes(jsm: HeartbeatClient, opsgenie_emulator: EmulatorHandle) -> None:
    jsm.create_heartbeat(name="f", interval=1, interval_unit="hours")
    opsgenie_emulator.set_faults(
        {"kind": "status", "status": 503, "endpoint": "ping", "times": 2},
        {"kind": "rate_limit", "rate": 1, "burst": 1, "endpoint": "list", "period_in_sec": 1},
    )
    jsm.ping_heartbeat("f")
    jsm.list_heartbeats()
    jsm.list_heartbeats()
    statuses = [(r["endpoint"], r["status"]) for r in opsgenie_emulator.requests() if r["endpoint"] != "create"]
    assert statuses[:3] == [("ping", 503), ("ping", 503), ("ping", 202)]
    assert ("list", 429) in statuses  # throttled, then retried
    assert statuses[-1] == ("list", 200)


def test_a_get_through_the_filtered_list_keeps_its_request_id(jsm: HeartbeatClient) -> None:
    jsm.create_heartbeat(name="traced", interval=1, interval_unit="hours")
    assert jsm.get_heartbeat("traced").request_id
    result = jsm.ensure_heartbeat(name="traced", interval=1, interval_unit="hours")
    assert result.action == "unchanged"
    assert result.request_id
