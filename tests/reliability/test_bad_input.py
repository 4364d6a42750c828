"""Refused inputs name the field and the rule, and nothing reaches the wire; awkward names round-trip."""

from __future__ import annotations

import json
from typing import Any

import pytest
from matrix import AWKWARD_NAMES, BAD_INPUTS, BadInput

from airflow_provider_opsgenie_hb.api.errors import HeartbeatValidationError
from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook
from opsgenie_heartbeat_emulator import EmulatorHandle

VALID = {"name": "nightly", "interval": 1, "interval_unit": "hours"}


def call(hook: OpsgenieHeartbeatHook, bad: BadInput) -> Any:
    if bad.call == "create":
        return hook.create_heartbeat(**{**VALID, **bad.kwargs})
    if bad.call == "update":
        return hook.update_heartbeat("nightly", **bad.kwargs)
    if bad.call == "get":
        return hook.get_heartbeat(bad.kwargs["name"])
    if bad.call == "ping":
        return hook.ping_heartbeat(bad.kwargs["name"])
    return hook.list_heartbeats()


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[b.label for b in BAD_INPUTS])
def test_refused_before_sending(
    bad: BadInput, opsgenie_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn: dict[str, Any] = {
        "conn_type": "opsgenie_heartbeat",
        "host": opsgenie_emulator.url,
        "password": opsgenie_emulator.api_key,
    }
    if bad.call == "connection":
        conn.update(bad.kwargs)
    monkeypatch.setenv("AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", json.dumps(conn))
    with pytest.raises(HeartbeatValidationError) as err:
        call(OpsgenieHeartbeatHook(), bad)
    assert bad.field in err.value.errors, err.value.errors
    assert bad.field in str(err.value)
    assert "must" in str(err.value) or "required" in str(err.value)  # the rule, not just the field
    assert opsgenie_emulator.requests() == []  # nothing was sent


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_awkward_names_round_trip_and_reach_no_other_endpoint(
    name: str, opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    hook = OpsgenieHeartbeatHook()
    hook.create_heartbeat(name=name, interval=1, interval_unit="hours")
    assert hook.get_heartbeat(name).name == name
    hook.ping_heartbeat(name)
    assert hook.get_heartbeat(name).last_ping_time is not None
    hook.delete_heartbeat(name)
    log = opsgenie_heartbeat_conn.requests()
    assert [r["endpoint"] for r in log] == ["create", "get", "ping", "get", "delete"]
    assert {r["name"] for r in log} == {name}
    assert all(isinstance(r["status"], int) and r["status"] < 300 for r in log)
    assert opsgenie_heartbeat_conn.heartbeats() == {}
