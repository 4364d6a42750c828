"""`opsgenie-heartbeat migrate`: OpsGenie -> JSM Operations, on the emulator's two backends."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook
from opsgenie_heartbeat_emulator import EmulatorHandle


@pytest.fixture
def connections(opsgenie_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    monkeypatch.setenv("AIRFLOW_CONN_OG_SOURCE", opsgenie_emulator.connection_json())
    monkeypatch.setenv("AIRFLOW_CONN_JSM_TARGET", opsgenie_emulator.jsm_connection_json(team_id="platform"))
    return opsgenie_emulator


def writes(emulator: EmulatorHandle) -> list[str]:
    return [r["path"] for r in emulator.requests() if r.get("team") and r["method"] != "GET"]


def test_migrate_moves_a_mixed_set_and_is_safe_to_run_twice(
    connections: EmulatorHandle, provider_cli: Callable[..., str]
) -> None:
    def migrate(*flags: str) -> str:
        return provider_cli("migrate", "--from", "og_source", "--to", "jsm_target", *flags)

    source = OpsgenieHeartbeatHook("og_source")
    source.create_heartbeat(name="nightly", interval=25, interval_unit="hours", alert_tags=["etl"], alert_priority="P2")
    source.create_heartbeat(name="paused one", interval=10, interval_unit="minutes", enabled=False)
    source.create_heartbeat(
        name="a/b",
        interval=2,
        interval_unit="days",
        description="slashes travel",
        alert_message="a/b is late",
        owner_team="data",
    )
    target = OpsgenieHeartbeatHook("jsm_target")
    target.create_heartbeat(
        name="nightly", interval=25, interval_unit="hours", alert_tags=["etl"], alert_priority="P2"
    )  # already there and equal

    setup_writes = len(writes(connections))
    out = migrate("--dry-run")
    assert "Plan: 2 to create, 0 to update, 1 unchanged." in out
    assert "owner team {'name': 'data'} becomes the target connection's team" in out
    assert len(writes(connections)) == setup_writes
    assert set(connections.jsm_heartbeats("platform")) == {"nightly"}  # the dry run wrote nothing

    out = migrate()
    assert (
        "Migrated: 2 created, 0 updated, 1 already there and equal, 0 in conflict (left alone), "
        "0 could not be mapped, 0 failed." in out
    )
    moved = connections.jsm_heartbeats("platform")
    assert (moved["paused one"]["interval"], moved["paused one"]["intervalUnit"], moved["paused one"]["enabled"]) == (
        10,
        "Minutes",
        False,
    )
    assert moved["a/b"]["description"] == "slashes travel"
    assert moved["a/b"]["alertMessage"] == "a/b is late"
    assert moved["a/b"]["ownerTeamId"] == "platform"
    assert moved["nightly"]["alertTags"] == ["etl"]

    before = len(writes(connections))
    out = migrate()
    assert "Migrated: 0 created, 0 updated, 3 already there and equal" in out
    assert len(writes(connections)) == before  # the second run changed nothing


def test_migrate_never_overwrites_a_target_heartbeat_it_does_not_manage(
    connections: EmulatorHandle, provider_cli: Callable[..., str]
) -> None:
    OpsgenieHeartbeatHook("og_source").create_heartbeat(name="nightly", interval=25, interval_unit="hours")
    OpsgenieHeartbeatHook("jsm_target").create_heartbeat(
        name="nightly", interval=3, interval_unit="days", alert_tags=["team-data"]
    )
    out = provider_cli("migrate", "--from", "og_source", "--to", "jsm_target", expect_exit=1)
    assert "? nightly" in out
    assert "not managed by deployment 'default'" in out
    assert connections.jsm_heartbeats("platform")["nightly"]["interval"] == 3

    out = provider_cli("migrate", "--from", "og_source", "--to", "jsm_target", "--adopt")
    assert "1 updated" in out
    assert connections.jsm_heartbeats("platform")["nightly"]["interval"] == 25
