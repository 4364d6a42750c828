"""HeartbeatClient against the emulator over loopback: methods, typed errors, retries, names."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pendulum
import pytest
import requests

from airflow_provider_opsgenie_hb.api.backends import resolve_base_url
from airflow_provider_opsgenie_hb.api.client import HeartbeatClient, HeartbeatStatus
from airflow_provider_opsgenie_hb.api.errors import (
    HeartbeatAlreadyExistsError,
    HeartbeatConnectionError,
    HeartbeatError,
    HeartbeatForbiddenError,
    HeartbeatNotFoundError,
    HeartbeatRateLimitedError,
    HeartbeatRequestError,
    HeartbeatResponseError,
    HeartbeatServerError,
    HeartbeatTimeoutError,
    HeartbeatUnauthorizedError,
    HeartbeatValidationError,
)
from airflow_provider_opsgenie_hb.api.policy import EnsurePolicy
from airflow_provider_opsgenie_hb.api.schema import Heartbeat
from opsgenie_heartbeat_emulator import EmulatorHandle


@pytest.fixture
def client(opsgenie_emulator: EmulatorHandle) -> HeartbeatClient:
    return HeartbeatClient.opsgenie(opsgenie_emulator.api_key, opsgenie_emulator.url, time_budget=10)


def test_all_eight_methods(client: HeartbeatClient, opsgenie_emulator: EmulatorHandle) -> None:
    created = client.create_heartbeat(
        name="nightly",
        interval=25,
        interval_unit="hours",
        description="the nightly export",
        owner_team="data",
        alert_message="nightly export did not run",
        alert_tags=["etl", "export"],
        alert_priority="P2",
    )
    assert isinstance(created, Heartbeat)
    assert (created.interval, created.interval_unit, created.enabled) == (25, "hours", True)
    assert created.owner_team == {"name": "data"}
    assert created.alert_tags == ("etl", "export")
    assert created.last_ping_time is None

    ack = client.ping_heartbeat("nightly")
    assert ack.result == "PONG - Heartbeat received"
    assert ack.request_id

    got = client.get_heartbeat("nightly")
    assert isinstance(got.last_ping_time, pendulum.DateTime)
    assert got.last_ping_time.timezone_name == "UTC"
    assert [h.name for h in client.list_heartbeats()] == ["nightly"]

    assert client.update_heartbeat("nightly", interval=2, interval_unit="days") == HeartbeatStatus(
        "nightly", True, False
    )
    assert opsgenie_emulator.heartbeats()["nightly"]["interval"] == 2
    assert client.disable_heartbeat("nightly").enabled is False
    assert opsgenie_emulator.heartbeats()["nightly"]["enabled"] is False
    assert client.enable_heartbeat("nightly").enabled is True
    client.delete_heartbeat("nightly")
    assert opsgenie_emulator.heartbeats() == {}


def test_to_dict_is_json_ready(client: HeartbeatClient) -> None:
    client.create_heartbeat(name="x", interval=1, interval_unit="days")
    client.ping_heartbeat("x")
    data = client.get_heartbeat("x").to_dict()
    assert data["interval_unit"] == "days"
    assert data["last_ping_time"].endswith("Z")
    assert data["alert_tags"] == []


@pytest.mark.parametrize(
    "name",
    ["with spaces", "a/b", "../admin", "a..b", "...", "100%", "what?", "#hash", "ünïcødé ✓", "a%2Fb", "ping"],
)
def test_awkward_names_round_trip_as_one_segment(
    client: HeartbeatClient, opsgenie_emulator: EmulatorHandle, name: str
) -> None:
    client.create_heartbeat(name=name, interval=5, interval_unit="minutes")
    assert client.get_heartbeat(name).name == name
    client.ping_heartbeat(name)
    assert client.get_heartbeat(name).last_ping_time is not None
    client.disable_heartbeat(name)
    client.delete_heartbeat(name)
    assert opsgenie_emulator.heartbeats() == {}
    seen = {r["name"] for r in opsgenie_emulator.requests()}
    assert seen == {name}
    assert not any(r.get("unknown_heartbeat") for r in opsgenie_emulator.requests())


def test_typed_errors(client: HeartbeatClient, opsgenie_emulator: EmulatorHandle) -> None:
    with pytest.raises(HeartbeatNotFoundError) as not_found:
        client.get_heartbeat("ghost")
    assert not_found.value.status == 404
    assert not_found.value.request_id
    assert not_found.value.request_id in str(not_found.value)

    client.create_heartbeat(name="dup", interval=1, interval_unit="hours")
    with pytest.raises(HeartbeatAlreadyExistsError) as exists:
        client.create_heartbeat(name="dup", interval=1, interval_unit="hours")
    assert exists.value.status == 409

    with pytest.raises(HeartbeatUnauthorizedError):
        HeartbeatClient.opsgenie("wrong-key", opsgenie_emulator.url).list_heartbeats()
    assert opsgenie_emulator.ping_only_key
    with pytest.raises(HeartbeatForbiddenError):
        HeartbeatClient.opsgenie(opsgenie_emulator.ping_only_key, opsgenie_emulator.url).list_heartbeats()

    opsgenie_emulator.set_faults({"kind": "status", "status": 402, "times": 1})
    with pytest.raises(HeartbeatRequestError, match="plan does not include heartbeats"):
        client.list_heartbeats()
    assert all(issubclass(cls, HeartbeatError) for cls in (HeartbeatValidationError, HeartbeatTimeoutError))


def test_server_side_422_is_a_validation_error(opsgenie_emulator: EmulatorHandle, client: HeartbeatClient) -> None:
    # The client refuses bad fields before sending, so reach the server's own check
    # through a fault-free raw body sent by the client's session.
    response = client.transport.session.post(
        client.base_url + "/v2/heartbeats", json={"name": "x", "interval": 0, "intervalUnit": "hours", "enabled": True}
    )
    assert response.status_code == 422
    opsgenie_emulator.set_faults(
        {"kind": "status", "status": 422, "times": 1, "body": '{"message": "bad", "errors": {"interval": "too small"}}'}
    )
    with pytest.raises(HeartbeatValidationError) as err:
        client.list_heartbeats()
    assert err.value.errors == {"interval": "too small"}


def test_validation_happens_before_anything_is_sent(client: HeartbeatClient, opsgenie_emulator: EmulatorHandle) -> None:
    with pytest.raises(HeartbeatValidationError) as err:
        client.create_heartbeat(name="x", interval=0, interval_unit="weeks", alert_priority="p1")
    assert set(err.value.errors) == {"interval", "interval_unit", "alert_priority"}
    assert "interval must be at least 1, got 0" in str(err.value)
    with pytest.raises(HeartbeatValidationError, match="name must not be empty"):
        client.ping_heartbeat("  ")
    with pytest.raises(HeartbeatValidationError, match="at least one field"):
        client.update_heartbeat("x")
    assert opsgenie_emulator.requests() == []


# ---------------------------------------------------------------------------- retries


def test_429_with_opsgenies_real_headers_is_retried_within_the_budget(
    client: HeartbeatClient, opsgenie_emulator: EmulatorHandle
) -> None:
    """OpsGenie's 429 names a 60 s window; that is no wait: back off briefly and try again."""
    client.create_heartbeat(name="r", interval=1, interval_unit="hours")
    opsgenie_emulator.set_faults({"kind": "status", "status": 429, "times": 2, "endpoint": "ping"})
    started = time.monotonic()
    client.ping_heartbeat("r")
    assert time.monotonic() - started < 5  # exponential backoff, not the 60 s window
    pings = [r for r in opsgenie_emulator.requests() if r["endpoint"] == "ping"]
    assert [r["status"] for r in pings] == [429, 429, 202]


def test_the_emulators_429_carries_opsgenies_headers(
    client: HeartbeatClient, opsgenie_emulator: EmulatorHandle
) -> None:
    opsgenie_emulator.set_faults({"kind": "rate_limit", "rate": 0.001, "burst": 0.5})
    response = client.transport.session.get(client.base_url + "/v2/heartbeats", timeout=5)
    assert response.status_code == 429
    assert response.headers["X-RateLimit-State"] == "THROTTLED"
    assert response.headers["X-RateLimit-Reason"] == "ACCOUNT"
    assert response.headers["X-RateLimit-Period-In-Sec"] == "60"
    assert "Retry-After" not in response.headers
    assert response.json()["message"].startswith("You are making too many requests!")


def test_retry_after_is_honoured(client: HeartbeatClient, opsgenie_emulator: EmulatorHandle) -> None:
    opsgenie_emulator.set_faults({"kind": "status", "status": 429, "times": 1, "headers": {"Retry-After": "1"}})
    started = time.monotonic()
    client.list_heartbeats()
    assert time.monotonic() - started >= 1.0


def test_a_retry_after_beyond_the_budget_gives_up_at_once(opsgenie_emulator: EmulatorHandle) -> None:
    client = HeartbeatClient.opsgenie(opsgenie_emulator.api_key, opsgenie_emulator.url, time_budget=2)
    opsgenie_emulator.set_faults({"kind": "status", "status": 429, "headers": {"Retry-After": "30"}})
    started = time.monotonic()
    with pytest.raises(HeartbeatRateLimitedError) as err:
        client.list_heartbeats()
    assert time.monotonic() - started < 1  # waiting could not help: no point spending the budget
    assert (err.value.retry_after, err.value.period) == (30, 60)
    assert len(opsgenie_emulator.requests()) == 1


def test_a_burst_of_429s_longer_than_the_budget_ends_cleanly_within_it(opsgenie_emulator: EmulatorHandle) -> None:
    client = HeartbeatClient.opsgenie(opsgenie_emulator.api_key, opsgenie_emulator.url, time_budget=2, max_attempts=50)
    opsgenie_emulator.set_faults({"kind": "rate_limit", "rate": 0.001, "burst": 0.5})
    started = time.monotonic()
    with pytest.raises(HeartbeatRateLimitedError) as err:
        client.list_heartbeats()
    elapsed = time.monotonic() - started
    assert elapsed < 2 * 1.05 + 0.1
    assert err.value.period == 60
    assert err.value.retry_after is None
    assert len(opsgenie_emulator.requests()) >= 3  # it did retry, several times, inside the budget


def test_503_is_retried_then_succeeds(client: HeartbeatClient, opsgenie_emulator: EmulatorHandle) -> None:
    opsgenie_emulator.set_faults({"kind": "status", "status": 503, "times": 3})
    assert client.list_heartbeats() == []
    assert [r["status"] for r in opsgenie_emulator.requests()] == [503, 503, 503, 200]


def test_persistent_5xx_ends_in_a_server_error_after_max_attempts(opsgenie_emulator: EmulatorHandle) -> None:
    client = HeartbeatClient.opsgenie(opsgenie_emulator.api_key, opsgenie_emulator.url, max_attempts=3)
    opsgenie_emulator.set_faults({"kind": "status", "status": 500})
    with pytest.raises(HeartbeatServerError) as err:
        client.list_heartbeats()
    assert err.value.status == 500
    assert len(opsgenie_emulator.requests()) == 3


def test_other_4xx_are_never_retried(client: HeartbeatClient, opsgenie_emulator: EmulatorHandle) -> None:
    with pytest.raises(HeartbeatNotFoundError):
        client.get_heartbeat("ghost")
    assert len(opsgenie_emulator.requests()) == 1


def test_dropped_connection_is_retried(client: HeartbeatClient, opsgenie_emulator: EmulatorHandle) -> None:
    opsgenie_emulator.set_faults({"kind": "drop", "times": 1, "endpoint": "list"})
    assert client.list_heartbeats() == []
    assert [r["status"] for r in opsgenie_emulator.requests()] == ["dropped", 200]


def test_retried_create_after_a_drop_reads_back_and_never_doubles(
    client: HeartbeatClient, opsgenie_emulator: EmulatorHandle
) -> None:
    opsgenie_emulator.set_faults({"kind": "drop", "times": 1, "endpoint": "create"})
    created = client.create_heartbeat(name="once", interval=3, interval_unit="hours")
    assert created.name == "once"
    assert list(opsgenie_emulator.heartbeats()) == ["once"]
    assert [(r["endpoint"], r["status"]) for r in opsgenie_emulator.requests()] == [
        ("create", "dropped"),
        ("create", 409),
        ("get", 200),
    ]


def test_a_first_409_is_still_an_error(client: HeartbeatClient) -> None:
    client.create_heartbeat(name="taken", interval=3, interval_unit="hours")
    with pytest.raises(HeartbeatAlreadyExistsError):
        client.create_heartbeat(name="taken", interval=3, interval_unit="hours")


THEIRS = {"interval": 5, "intervalUnit": "days", "enabled": False, "alertPriority": "P5"}


def _race_a_dropped_create(
    opsgenie_emulator: EmulatorHandle, call: Callable[[], Any]
) -> tuple[Any, BaseException | None]:
    """Our first create is dropped before the service acts on it; before our retry, another
    party creates the same name with its own settings."""
    opsgenie_emulator.set_faults({"kind": "drop", "times": 1, "endpoint": "create", "process": False})
    outcome: list[Any] = []
    failure: list[BaseException] = []

    def ours() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=ours)
    thread.start()
    deadline = time.monotonic() + 5
    while not any(r["status"] == "dropped" for r in opsgenie_emulator.requests()):
        assert time.monotonic() < deadline, "our create never reached the emulator"
        time.sleep(0.01)
    # The client backs off at least 0.2 s before its retry: the other party is faster.
    theirs = requests.post(
        opsgenie_emulator.url + "/v2/heartbeats",
        json={"name": "raced", **THEIRS},
        headers={"Authorization": f"GenieKey {opsgenie_emulator.api_key}"},
        timeout=5,
    )
    assert theirs.status_code == 201
    thread.join(10)
    return (outcome[0] if outcome else None), (failure[0] if failure else None)


def test_a_retried_create_into_someone_elses_heartbeat_is_not_reported_as_ours(
    client: HeartbeatClient, opsgenie_emulator: EmulatorHandle
) -> None:
    result, failure = _race_a_dropped_create(
        opsgenie_emulator, lambda: client.create_heartbeat(name="raced", interval=1, interval_unit="hours")
    )
    assert result is None
    assert isinstance(failure, HeartbeatAlreadyExistsError)
    assert failure.current is not None
    assert failure.current.interval_unit == "days"
    assert failure.differences == {"interval": 1, "interval_unit": "hours", "enabled": True}
    assert [(r["endpoint"], r["status"]) for r in opsgenie_emulator.requests()] == [
        ("create", "dropped"),
        ("create", 201),  # theirs
        ("create", 409),
        ("get", 200),
    ]


def test_ensure_after_a_retried_create_into_someone_elses_heartbeat_updates_it(
    client: HeartbeatClient, opsgenie_emulator: EmulatorHandle
) -> None:
    result, failure = _race_a_dropped_create(
        opsgenie_emulator,
        lambda: client.ensure_heartbeat(name="raced", interval=1, interval_unit="hours", alert_priority="P2"),
    )
    assert failure is None
    assert result.action == "updated"
    assert result.changed == {"interval": 1, "interval_unit": "hours", "enabled": True, "alert_priority": "P2"}
    stored = opsgenie_emulator.heartbeats()["raced"]
    assert (stored["interval"], stored["intervalUnit"], stored["enabled"], stored["alertPriority"]) == (
        1,
        "hours",
        True,
        "P2",
    )


def test_ensure_can_report_the_conflict_instead_of_updating(
    client: HeartbeatClient, opsgenie_emulator: EmulatorHandle
) -> None:
    result, failure = _race_a_dropped_create(
        opsgenie_emulator,
        lambda: client.ensure_heartbeat(
            name="raced", interval=1, interval_unit="hours", policy=EnsurePolicy(update_existing=False)
        ),
    )
    assert failure is None
    assert (result.action, result.changed) == ("conflict", {"interval": 1, "interval_unit": "hours", "enabled": True})
    stored = opsgenie_emulator.heartbeats()["raced"]
    assert {k: stored[k] for k in THEIRS} == THEIRS  # left as they made it
    assert "update" not in [r["endpoint"] for r in opsgenie_emulator.requests()]


def test_ensure_after_a_retried_create_that_finds_its_own_settings_is_not_a_claimed_creation(
    client: HeartbeatClient, opsgenie_emulator: EmulatorHandle
) -> None:
    opsgenie_emulator.set_faults({"kind": "drop", "times": 1, "endpoint": "create"})  # processed, reply lost
    result = client.ensure_heartbeat(name="mine", interval=1, interval_unit="hours")
    assert (result.action, result.changed) == ("unchanged", {})
    assert opsgenie_emulator.heartbeats()["mine"]["intervalUnit"] == "hours"
    assert client.ensure_heartbeat(name="fresh", interval=1, interval_unit="hours").action == "created"


def test_time_budget_bounds_a_hanging_service(opsgenie_emulator: EmulatorHandle) -> None:
    client = HeartbeatClient.opsgenie(opsgenie_emulator.api_key, opsgenie_emulator.url, read_timeout=5, time_budget=1.5)
    opsgenie_emulator.set_faults({"kind": "latency", "seconds": 30})
    started = time.monotonic()
    with pytest.raises(HeartbeatTimeoutError):
        client.list_heartbeats()
    elapsed = time.monotonic() - started
    opsgenie_emulator.reset()
    assert elapsed < 1.5 + 1.0  # the budget, plus scheduling slack


def test_deadline_spans_several_calls(opsgenie_emulator: EmulatorHandle) -> None:
    client = HeartbeatClient.opsgenie(opsgenie_emulator.api_key, opsgenie_emulator.url, time_budget=30)
    opsgenie_emulator.set_faults({"kind": "latency", "seconds": 0.6})
    started = time.monotonic()

    def two_calls() -> None:
        client.list_heartbeats()
        client.list_heartbeats()

    with client.deadline(1.0), pytest.raises(HeartbeatTimeoutError):
        two_calls()
    assert time.monotonic() - started < 2.0  # 1 s deadline; a second 0.6 s call would need 1.2 s
    opsgenie_emulator.reset()


def test_connection_refused_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = HeartbeatClient.opsgenie("k", f"http://127.0.0.1:{port}", time_budget=2)
    with pytest.raises(HeartbeatConnectionError, match="connection failed"):
        client.list_heartbeats()


def test_non_json_200_is_a_response_error(client: HeartbeatClient, opsgenie_emulator: EmulatorHandle) -> None:
    opsgenie_emulator.set_faults(
        {"kind": "body", "status": 200, "body": "<html>maintenance</html>", "content_type": "text/html", "times": 1}
    )
    with pytest.raises(HeartbeatResponseError, match="not a JSON object"):
        client.list_heartbeats()


def test_unexpected_shape_is_a_response_error(client: HeartbeatClient, opsgenie_emulator: EmulatorHandle) -> None:
    opsgenie_emulator.set_faults({"kind": "body", "status": 200, "body": '{"data": {"items": []}}', "times": 1})
    with pytest.raises(HeartbeatResponseError, match="documented shape"):
        client.list_heartbeats()


# ---------------------------------------------------------------------------- base URL


@pytest.mark.parametrize(
    ("host", "region", "expected"),
    [
        (None, None, "https://api.opsgenie.com"),
        ("", "eu", "https://api.eu.opsgenie.com"),
        ("", "us", "https://api.opsgenie.com"),
        ("api.eu.opsgenie.com", None, "https://api.eu.opsgenie.com"),
        ("http://127.0.0.1:8765/", None, "http://127.0.0.1:8765"),
        ("http://localhost:8765", None, "http://localhost:8765"),
        ("http://[::1]:8765", None, "http://[::1]:8765"),
    ],
)
def test_base_url(host: str | None, region: str | None, expected: str) -> None:
    assert resolve_base_url(host, region) == expected


@pytest.mark.parametrize(
    ("host", "region", "field"),
    [
        ("http://api.opsgenie.com", None, "host"),
        ("http://10.0.0.5:8080", None, "host"),
        ("ftp://api.opsgenie.com", None, "host"),
        ("https://", None, "host"),
        ("https://api.opsgenie.com:notaport", None, "host"),
        ("https://api.opsgenie.com?x=1", None, "host"),
        ("", "apac", "region"),
        ("", "EU", "region"),
        ("https://api.opsgenie.com", "eu", "host"),
    ],
)
def test_bad_base_url_names_the_field(host: str, region: str | None, field: str) -> None:
    with pytest.raises(HeartbeatValidationError) as err:
        resolve_base_url(host, region)
    assert list(err.value.errors) == [field]


# ---------------------------------------------------------------------------- secrets


def test_the_key_never_appears_in_logs_errors_or_reprs(
    opsgenie_emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    """A distinctive key, every method, every error path, DEBUG logging on."""
    key = opsgenie_emulator.api_key
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    client = HeartbeatClient.opsgenie(key, opsgenie_emulator.url, time_budget=5)
    texts += [repr(client), str(client), repr(client.transport.session.auth)]
    client.create_heartbeat(name="s", interval=1, interval_unit="hours")
    client.list_heartbeats()
    client.get_heartbeat("s")
    client.update_heartbeat("s", interval=2)
    client.ping_heartbeat("s")
    client.disable_heartbeat("s")
    client.enable_heartbeat("s")
    client.delete_heartbeat("s")
    opsgenie_emulator.set_faults({"kind": "status", "status": 503, "times": 2})
    client.list_heartbeats()
    for call in (
        lambda: client.get_heartbeat("ghost"),
        lambda: HeartbeatClient.opsgenie(key, "http://10.1.2.3"),
        lambda: HeartbeatClient.opsgenie(key + "x", opsgenie_emulator.url).list_heartbeats(),
        lambda: client.create_heartbeat(name="s", interval=-1, interval_unit="hours"),
    ):
        with pytest.raises(HeartbeatError) as err:
            call()
        texts += [str(err.value), repr(err.value), repr(err.value.args)]
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    assert any("GET /v2/heartbeats" in t for t in texts)  # the logs did record the calls
    assert not [t for t in texts if key in t]


def test_bulk_ensure_under_a_rate_limit(client: HeartbeatClient, opsgenie_emulator: EmulatorHandle) -> None:
    specs = [{"name": f"bulk-{i}", "interval": 1, "interval_unit": "hours"} for i in range(30)]
    opsgenie_emulator.set_faults({"kind": "rate_limit", "rate": 40, "burst": 10})
    results = client.ensure_heartbeats(specs)
    assert [getattr(r, "action", r) for r in results] == ["created"] * 30
    assert 429 in [r["status"] for r in opsgenie_emulator.requests()]  # it was throttled, and recovered
    assert sorted(opsgenie_emulator.heartbeats()) == sorted(s["name"] for s in specs)
    again = client.ensure_heartbeats(specs)
    assert [getattr(r, "action", r) for r in again] == ["unchanged"] * 30


def test_bulk_ensure_refuses_bad_input_before_sending(
    client: HeartbeatClient, opsgenie_emulator: EmulatorHandle
) -> None:
    specs = [{"name": "ok", "interval": 1, "interval_unit": "hours"}, {"name": "bad", "interval": 0}]
    with pytest.raises(HeartbeatValidationError, match="interval"):
        client.ensure_heartbeats(specs)
    assert opsgenie_emulator.requests() == []


def test_bulk_ensure_reports_each_failure_without_stopping(
    client: HeartbeatClient, opsgenie_emulator: EmulatorHandle
) -> None:
    opsgenie_emulator.set_faults({"kind": "status", "status": 403, "endpoint": "get", "times": 1})
    results = client.ensure_heartbeats(
        [{"name": f"h{i}", "interval": 1, "interval_unit": "hours"} for i in range(3)], max_workers=1
    )
    assert isinstance(results[0], HeartbeatForbiddenError)
    assert [getattr(r, "action", None) for r in results[1:]] == ["created", "created"]


def test_every_result_carries_its_request_id_and_retries(
    client: HeartbeatClient, opsgenie_emulator: EmulatorHandle
) -> None:
    created = client.create_heartbeat(name="traced", interval=1, interval_unit="hours")
    assert created.request_id
    assert created.retries == 0
    opsgenie_emulator.set_faults({"kind": "status", "status": 503, "times": 1, "endpoint": "ping"})
    ack = client.ping_heartbeat("traced")
    assert (ack.result, ack.retries) == ("PONG - Heartbeat received", 1)
    assert ack.request_id
    assert ack.request_id != created.request_id
    listed = client.list_heartbeats()
    assert [hb.name for hb in listed] == ["traced"]
    assert listed.request_id
    assert listed.retries == 0
    assert client.get_heartbeat("traced").request_id
    assert client.update_heartbeat("traced", interval=2).request_id
    assert client.disable_heartbeat("traced").request_id
    ensured = client.ensure_heartbeat(name="traced", interval=3, interval_unit="hours")
    assert (ensured.action, ensured.retries) == ("updated", 0)
    assert ensured.request_id
    assert client.delete_heartbeat("traced").request_id
    opsgenie_emulator.set_faults({"kind": "status", "status": 503, "times": 9, "endpoint": "get"})
    with pytest.raises(HeartbeatServerError) as failed:
        HeartbeatClient.opsgenie(opsgenie_emulator.api_key, opsgenie_emulator.url, max_attempts=3).get_heartbeat("x")
    assert failed.value.retries == 2


def test_the_retry_policy_and_the_adapter_can_be_handed_in(opsgenie_emulator: EmulatorHandle) -> None:
    """As with Airflow's HTTP provider: a caller's tenacity policy and requests adapter replace the defaults."""
    from requests.adapters import HTTPAdapter
    from tenacity import Retrying, stop_after_attempt

    mounted: list[str] = []

    class CountingAdapter(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            mounted.append(request.method)
            return super().send(request, *args, **kwargs)

    no_retries = Retrying(stop=stop_after_attempt(1), reraise=True)
    client = HeartbeatClient.opsgenie(
        opsgenie_emulator.api_key, opsgenie_emulator.url, retrying=no_retries, adapter=CountingAdapter()
    )
    opsgenie_emulator.set_faults({"kind": "status", "status": 503, "times": 1, "endpoint": "ping"})
    with pytest.raises(HeartbeatServerError):
        client.ping_heartbeat("once")
    assert mounted == ["POST"]  # one attempt, through the adapter handed in
    assert client.ping_heartbeat("once").retries == 0
