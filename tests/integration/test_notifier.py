"""The success callback through real Airflow (dag.test()) against the emulator."""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Backend, our_warnings

from airflow_provider_opsgenie_hb.api.errors import HeartbeatValidationError
from airflow_provider_opsgenie_hb.core.record import recent_pings
from airflow_provider_opsgenie_hb.notifications.heartbeat import OpsgenieHeartbeatNotifier, send_opsgenie_heartbeat
from opsgenie_heartbeat_emulator import EmulatorHandle

DAG_SOURCE = """
import pendulum
from airflow.providers.common.compat.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

with DAG(
    dag_id="{dag_id}",
    schedule="{schedule}",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    on_success_callback=send_opsgenie_heartbeat({args}),
) as dag:
    @task
    def work():
        return 1

    work()
"""


def dag_source(dag_id: str, args: str = "", schedule: str = "@hourly") -> str:
    return DAG_SOURCE.format(dag_id=dag_id, args=args, schedule=schedule)


def test_a_successful_run_pings_its_heartbeat(run_dag: Callable[..., Any], backend: Backend) -> None:
    run_dag(dag_source("hb_pings", "ensure=True"), "hb_pings")
    hb = backend.heartbeats()["hb_pings"]
    assert hb["pinged"]
    assert (hb["interval"], hb["intervalUnit"]) == (2, "hours")  # @hourly: 1 hour + 1 hour grace
    # Ping first; the heartbeat did not exist yet, so once more after ensure created it.
    assert backend.operations() == ["ping", "get", "create", "ping"]
    assert [r["status"] for r in backend.emulator.requests() if r["endpoint"] == "ping"] == [202, 202]


def test_each_ping_is_logged_for_the_heartbeats_page(
    run_dag: Callable[..., Any], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    run_dag(dag_source("hb_logged", "ensure=True"), "hb_logged")
    logged = recent_pings("opsgenie_heartbeat_default", "hb_logged")
    # The ping before ensure created the heartbeat, and the one after: newest first.
    assert [entry["source"] for entry in logged] == ["callback", "callback"]
    assert logged[0]["at"] >= logged[1]["at"]
    assert all(entry["request_id"] for entry in logged)
    assert recent_pings("opsgenie_heartbeat_default", "another") == []


def test_a_templated_name_renders(run_dag: Callable[..., Any], backend: Backend) -> None:
    run_dag(dag_source("hb_templated", 'name="prod-{{ dag.dag_id }}", ensure=True'), "hb_templated")
    assert "prod-hb_templated" in backend.heartbeats()
    assert backend.pings() == ["prod-hb_templated", "prod-hb_templated"]


def test_a_failed_run_does_not_ping(run_dag: Callable[..., Any], backend: Backend) -> None:
    source = dag_source("hb_fails", "ensure=True").replace("return 1", "raise RuntimeError('boom')")
    dag_run = run_dag(source, "hb_fails")
    assert dag_run.state == "failed"
    assert backend.pings() == []


def _context(dag_id: str, run_id: str) -> dict[str, Any]:
    """The minimal context the DAG processor passes a DAG-level callback (no task instance)."""
    from airflow.providers.common.compat.sdk import DAG

    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)  # Airflow 2 asks for one
    return {"dag": DAG(dag_id, start_date=start, schedule="@daily"), "run_id": run_id, "reason": "success"}


def test_backfill_runs_do_not_ping_and_can_be_opted_in(backend: Backend) -> None:
    send_opsgenie_heartbeat()(_context("bf", "backfill__2026-01-01T00:00:00+00:00"))
    assert backend.pings() == []
    send_opsgenie_heartbeat()(_context("bf", "scheduled__2026-01-01T00:00:00+00:00"))
    send_opsgenie_heartbeat(run_types=["backfill"])(_context("bf", "backfill__2026-01-02T00:00:00+00:00"))
    assert backend.pings() == ["bf", "bf"]


class _Run:
    def __init__(self, run_type: str) -> None:
        self.run_type = run_type


def test_airflow_2s_dataset_triggered_runs_ping_as_asset_triggered_runs(backend: Backend) -> None:
    """Airflow 2 names an asset-triggered run ``dataset_triggered``: it pings by default, and may be named so."""
    send_opsgenie_heartbeat()(_context("ds", "dataset_triggered__2026-01-01T00:00:00+00:00"))
    send_opsgenie_heartbeat()({**_context("ds", "x"), "dag_run": _Run("dataset_triggered")})
    send_opsgenie_heartbeat(run_types=["dataset_triggered"])(
        {**_context("ds", "x"), "dag_run": _Run("asset_triggered")}
    )
    send_opsgenie_heartbeat(run_types=["scheduled"])(_context("ds", "dataset_triggered__2026-01-02T00:00:00+00:00"))
    assert backend.pings() == ["ds", "ds", "ds"]


def test_ensure_pings_first_and_is_remembered_between_runs(backend: Backend) -> None:
    for _ in range(3):
        send_opsgenie_heartbeat(ensure=True, interval=30, interval_unit="minutes")(_context("once", "manual__1"))
    # The first ping reached no heartbeat (OpsGenie answers PONG anyway): after the create, once more.
    assert backend.operations() == ["ping", "get", "create", "ping", "ping", "ping"]
    assert backend.heartbeats()["once"]["interval"] == 30


def test_a_changed_setting_is_ensured_at_once(backend: Backend) -> None:
    send_opsgenie_heartbeat(ensure=True, interval=30, interval_unit="minutes")(_context("change", "manual__1"))
    send_opsgenie_heartbeat(ensure=True, interval=45, interval_unit="minutes")(_context("change", "manual__2"))
    assert backend.operations()[-3:] == ["ping", "get", "update"]
    assert backend.heartbeats()["change"]["interval"] == 45


def test_settings_templated_per_run_keep_one_record_entry(backend: Backend, metadata_record: None) -> None:
    from conftest import record_variables

    notifier = send_opsgenie_heartbeat(ensure=True, description="last run {{ run_id }}")
    counts = []
    for run in range(1, 4):
        notifier(_context("templated", f"scheduled__{run}"))
        assert backend.heartbeats()["templated"]["description"] == f"last run scheduled__{run}"
        counts.append(len(record_variables()))
    # Each run's settings differ, so each run ensures them; its entry replaces the run before's.
    assert backend.operations()[-2:] == ["get", "update"]
    assert counts[0] == counts[1] == counts[2], counts


def test_ensure_updates_a_heartbeat_that_drifted(backend: Backend) -> None:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    marker = "managed-by-airflow:default"  # this deployment's: the heartbeat is ours to change
    OpsgenieHeartbeatHook().create_heartbeat(
        name="drift", interval=5, interval_unit="days", enabled=False, alert_tags=[marker]
    )
    send_opsgenie_heartbeat(ensure=True, alert_priority="P1")(_context("drift", "scheduled__1"))
    hb = backend.heartbeats()["drift"]
    # Disabled (a maintenance window): left alone, since the notifier does not say.
    assert (hb["interval"], hb["intervalUnit"], hb["enabled"], hb["alertPriority"]) == (25, "hours", False, "P1")
    send_opsgenie_heartbeat(ensure=True, alert_priority="P1", enabled=True)(_context("drift", "scheduled__2"))
    assert backend.heartbeats()["drift"]["enabled"] is True


def test_ensure_never_changes_a_heartbeat_this_deployment_does_not_manage(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    OpsgenieHeartbeatHook().create_heartbeat(name="by-hand", interval=5, interval_unit="days", alert_tags=["sev2"])
    caplog.set_level(logging.WARNING)
    send_opsgenie_heartbeat(ensure=True, alert_priority="P1")(_context("by-hand", "scheduled__1"))
    hb = backend.heartbeats()["by-hand"]
    assert (hb["interval"], hb["alertTags"]) == (5, ["sev2"])
    assert backend.operations()[-2:] == ["ping", "get"]  # pinged, read, not changed
    assert any("exists without this deployment's marker" in r.getMessage() for r in caplog.records)


def test_missing_heartbeat_warns_on_every_run(backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        send_opsgenie_heartbeat(name="typo-name")(_context("d", "scheduled__1"))
    warnings = [r.getMessage() for r in caplog.records if "does not exist" in r.getMessage()]
    assert len(warnings) == 3  # a heartbeat that monitors nothing is not remembered as fine
    assert "'typo-name'" in warnings[0]
    assert "ensure=True" in warnings[0]
    assert backend.operations() == ["ping", "get"] * 3


def test_an_existing_heartbeat_is_checked_once_then_only_pinged(backend: Backend) -> None:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    OpsgenieHeartbeatHook().create_heartbeat(name="steady", interval=1, interval_unit="hours")
    before = len(backend.operations())
    for run in range(4):
        send_opsgenie_heartbeat(name="steady")(_context("d", f"scheduled__{run}"))
    assert backend.operations()[before:] == ["ping", "get", "ping", "ping", "ping"]


def test_existing_heartbeat_gives_no_warning(backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    OpsgenieHeartbeatHook().create_heartbeat(name="fine", interval=1, interval_unit="hours")
    caplog.set_level(logging.WARNING)
    send_opsgenie_heartbeat(name="fine")(_context("d", "scheduled__1"))
    assert not our_warnings(caplog.records)


@pytest.mark.parametrize(
    ("fault", "expected_warning"),
    [
        ({"kind": "status", "status": 503}, "HTTP 503"),
        ({"kind": "latency", "seconds": 30}, "no answer within"),
    ],
)
def test_a_broken_opsgenie_never_fails_the_run_and_the_callback_keeps_its_deadline(
    run_dag: Callable[..., Any],
    backend: Backend,
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, Any],
    expected_warning: str,
) -> None:
    backend.emulator.set_faults(fault)
    caplog.set_level(logging.WARNING)
    notifier = send_opsgenie_heartbeat(deadline=2)
    started = time.monotonic()
    notifier(_context("down", "scheduled__1"))
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 1.0  # the deadline, plus scheduling slack
    messages = [r.getMessage() for r in caplog.records]
    assert any("was not pinged" in m and expected_warning in m for m in messages), messages

    caplog.clear()
    dag_run = run_dag(dag_source("hb_down", "deadline=2"), "hb_down")
    backend.emulator.reset()
    # dag.test() says success even when a DAG-level callback raises: the callback's own
    # warning shows it ran, failed to ping, and kept that to itself.
    assert dag_run.state == "success"
    messages = [r.getMessage() for r in caplog.records]
    assert any("'hb_down' was not pinged" in m and expected_warning in m for m in messages), messages


def test_a_wrong_key_never_fails_the_run(
    run_dag: Callable[..., Any],
    opsgenie_emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", opsgenie_emulator.connection_json(api_key="nope"))
    caplog.set_level(logging.WARNING)
    dag_run = run_dag(dag_source("hb_401", "ensure=True"), "hb_401")
    assert dag_run.state == "success"
    assert any("HTTP 401" in r.getMessage() and "API key" in r.getMessage() for r in caplog.records)


def test_raise_on_error_raises(backend: Backend) -> None:
    from airflow.providers.common.compat.sdk import AirflowException

    backend.emulator.set_faults({"kind": "status", "status": 401})
    with pytest.raises(AirflowException, match="HTTP 401"):
        send_opsgenie_heartbeat(raise_on_error=True, deadline=2)(_context("strict", "scheduled__1"))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "x" * 201}, "name"),
        ({"interval": 5}, "interval"),
        ({"interval": 0, "interval_unit": "hours"}, "interval"),
        ({"interval": 1, "interval_unit": "weeks"}, "interval_unit"),
        ({"alert_priority": "p1"}, "alert_priority"),
        ({"alert_tags": ["x" * 51]}, "alert_tags"),
        ({"deadline": 0}, "deadline"),
        ({"deadline": float("nan")}, "deadline"),
        ({"run_types": ["nightly"]}, "run_types"),
        ({"run_types": []}, "run_types"),
        ({"run_types": "scheduled"}, "run_types"),
        ({"ensure": "yes"}, "ensure"),
        ({"raise_on_error": "no"}, "raise_on_error"),
        ({"opsgenie_heartbeat_conn_id": ""}, "opsgenie_heartbeat_conn_id"),
        ({"name": "prod-{{ dag.dag_id"}, "name"),
        ({"alert_tags": ["{% if %}"]}, "alert_tags"),
        # ensure adds this deployment's marker: 20 tags of the user's would make 21
        ({"ensure": True, "alert_tags": [f"t{i}" for i in range(20)]}, "alert_tags"),
        ({"ensure": True, "alert_tags": ["{{ dag.dag_id }}", *(f"t{i}" for i in range(19))]}, "alert_tags"),
    ],
)
def test_bad_arguments_fail_at_parse_time_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(HeartbeatValidationError) as err:
        OpsgenieHeartbeatNotifier(**kwargs)
    assert field in err.value.errors


def test_nineteen_tags_leave_room_for_the_marker_and_twenty_are_fine_without_ensure() -> None:
    OpsgenieHeartbeatNotifier(ensure=True, alert_tags=[f"t{i}" for i in range(19)])
    OpsgenieHeartbeatNotifier(alert_tags=[f"t{i}" for i in range(20)])  # never sent without ensure


def test_dag_id_is_a_shorthand_in_the_name_as_for_sync(run_dag: Callable[..., Any], backend: Backend) -> None:
    """``{{ dag_id }}`` renders for the callback as it does for sync and the listener: one name for all three."""
    run_dag(dag_source("shorthand", 'name="x-{{ dag_id }}", ensure=True'), "shorthand")
    assert set(backend.heartbeats()) == {"x-shorthand"}
    assert backend.pings() == ["x-shorthand", "x-shorthand"]


def test_templated_values_are_checked_after_rendering_not_before() -> None:
    notifier = OpsgenieHeartbeatNotifier(name="{{ dag.dag_id }}", alert_tags=["{{ dag.dag_id }}"])
    assert notifier.name == "{{ dag.dag_id }}"


def test_a_bad_deployment_setting_stops_the_ensure_never_the_ping(
    run_dag: Callable[..., Any], backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Fail closed: the marker is read after the ping, so a typo in [opsgenie_heartbeat] deployment costs the
    ensure (with a warning naming the setting), not the ping that keeps the heartbeat from alerting."""
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    OpsgenieHeartbeatHook().create_heartbeat(name="bad_deployment", interval=2, interval_unit="hours")
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__DEPLOYMENT", "not a tag!")
    with caplog.at_level(logging.WARNING):
        run_dag(dag_source("bad_deployment", "ensure=True"), "bad_deployment")
    assert backend.pings() == ["bad_deployment"]
    assert backend.heartbeats()["bad_deployment"]["pinged"]
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        "was pinged, but the ensure after the ping did not complete" in m and "deployment" in m for m in messages
    )


def test_a_ping_log_slower_than_the_deadline_never_turns_a_ping_into_not_pinged(
    run_dag: Callable[..., Any],
    opsgenie_heartbeat_conn: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The ping log is written after the ping (to Airflow Variables with record_store = metadata, which can
    be slow): a log that outlasts the deadline leaves a run that was pinged reported as pinged."""
    from airflow_provider_opsgenie_hb.api.client import HeartbeatClient
    from airflow_provider_opsgenie_hb.core import record

    HeartbeatClient.opsgenie(opsgenie_heartbeat_conn.api_key, opsgenie_heartbeat_conn.url).create_heartbeat(
        name="hb_slow_log", interval=2, interval_unit="hours"
    )
    monkeypatch.setattr(record, "record_ping", lambda *args: time.sleep(4))
    with caplog.at_level(logging.INFO):
        run_dag(dag_source("hb_slow_log", "deadline=2"), "hb_slow_log")
    assert [r["endpoint"] for r in opsgenie_heartbeat_conn.requests() if r["name"] == "hb_slow_log"][-1] == "ping"
    warnings = [r.getMessage() for r in our_warnings(caplog.records)]
    assert not [w for w in warnings if "was not pinged" in w], warnings
    assert [w for w in warnings if "was pinged, but" in w], warnings
