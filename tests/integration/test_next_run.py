"""``interval="next_run"``: each run sets the interval to the next run, against the emulator and real Airflow.

The expected intervals come from Airflow's own timetable (the gap between two consecutive
runs it schedules, plus the grace), never from a second reading of the cron.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

import pendulum
import pytest

from airflow_provider_opsgenie_hb.emulator import EmulatorHandle
from airflow_provider_opsgenie_hb.plugins import listener

WEEKDAYS = "30 6 * * 1-5"
HOUR = 3600
# 2026-11-19 is a Thursday: runs on Thursday, Friday, then Monday 2026-11-23.
THURSDAY = pendulum.datetime(2026, 11, 19, 6, 30, tz="UTC")
FRIDAY = pendulum.datetime(2026, 11, 20, 6, 30, tz="UTC")
MONDAY = pendulum.datetime(2026, 11, 23, 6, 30, tz="UTC")
TUESDAY = pendulum.datetime(2026, 11, 24, 6, 30, tz="UTC")
WEDNESDAY = pendulum.datetime(2026, 11, 25, 6, 30, tz="UTC")

NEXT_RUN_DAG = """
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

with DAG(dag_id="{dag_id}", schedule="{schedule}", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         catchup=False, on_success_callback=send_opsgenie_heartbeat(interval="next_run"{extra})) as dag:
    @task
    def work():
        return 1
    work()
"""


def airflow_gap(schedule: str, run_after: pendulum.DateTime) -> datetime.timedelta:
    """The gap after ``run_after`` to the next run, as Airflow's own timetable schedules it."""
    from airflow.timetables.base import DataInterval, TimeRestriction
    from airflow.timetables.trigger import CronTriggerTimetable

    info = CronTriggerTimetable(schedule, timezone="UTC").next_dagrun_info(
        last_automated_data_interval=DataInterval.exact(run_after),
        restriction=TimeRestriction(earliest=None, latest=None, catchup=True),
    )
    assert info is not None
    return info.run_after - run_after


def seconds(heartbeat: dict[str, Any]) -> int:
    return int(heartbeat["interval"]) * {"minutes": 60, "hours": 3600, "days": 86400}[heartbeat["intervalUnit"]]


def endpoints(emulator: EmulatorHandle, since: int = 0) -> list[str]:
    return [r["endpoint"] for r in emulator.requests()[since:] if r["endpoint"] in ("update", "ping", "get", "create")]


@pytest.fixture
def weekday_heartbeat(opsgenie_heartbeat_conn: EmulatorHandle) -> EmulatorHandle:
    """A heartbeat made by sync or ensure: the schedule's longest gap plus grace (73 hours)."""
    from airflow_provider_opsgenie_hb.client import HeartbeatClient

    with HeartbeatClient(api_key=opsgenie_heartbeat_conn.api_key, base_url=opsgenie_heartbeat_conn.url) as client:
        client.create_heartbeat(name="weekdays", interval=73, interval_unit="hours", enabled=True)
    return opsgenie_heartbeat_conn


def test_each_run_sets_the_gap_to_the_next_run_and_a_fixed_rhythm_costs_one_request(
    run_dag: Callable[..., Any], weekday_heartbeat: EmulatorHandle
) -> None:
    emulator = weekday_heartbeat
    source = NEXT_RUN_DAG.format(dag_id="weekdays", schedule=WEEKDAYS, extra="")
    seen: list[tuple[int, list[str]]] = []
    for run_after in (THURSDAY, FRIDAY, MONDAY, TUESDAY, WEDNESDAY):
        before = len(emulator.requests())
        assert run_dag(source, "weekdays", logical_date=run_after, run_after=run_after).state == "success"
        seen.append((seconds(emulator.heartbeats()["weekdays"]), endpoints(emulator, before)))
    expected = [
        int((airflow_gap(WEEKDAYS, r) + datetime.timedelta(hours=1)).total_seconds())
        for r in (THURSDAY, FRIDAY, MONDAY, TUESDAY, WEDNESDAY)
    ]
    assert [s for s, _ in seen] == expected == [25 * HOUR, 73 * HOUR, 25 * HOUR, 25 * HOUR, 25 * HOUR]
    # The PATCH before the ping, and only when the interval changes: Tuesday and Wednesday keep Monday's.
    assert [e for _, e in seen] == [
        ["update", "ping", "get"],  # the first run also checks (once a day) that the heartbeat exists
        ["update", "ping"],
        ["update", "ping"],
        ["ping"],
        ["ping"],
    ]


@pytest.mark.parametrize("interval_change", ["running", "next_ping"])
def test_the_weekend_does_not_alert_and_a_missed_monday_alerts_within_the_grace(
    run_dag: Callable[..., Any], weekday_heartbeat: EmulatorHandle, interval_change: str
) -> None:
    """Correct whether a changed interval applies to the running countdown or from the next ping."""
    emulator = weekday_heartbeat
    emulator.set_interval_change(interval_change)
    source = NEXT_RUN_DAG.format(dag_id="weekdays", schedule=WEEKDAYS, extra="")
    for run_after in (THURSDAY, FRIDAY):
        assert run_dag(source, "weekdays", logical_date=run_after, run_after=run_after).state == "success"
    # Friday's run pinged just now; Monday's run is due 72 hours after Friday's.
    emulator.advance(73 * HOUR - 60)
    assert emulator.alerts() == []  # a weekend is not a missed run, nor is Monday's within its grace
    emulator.advance(120)  # Monday's run is missed: the grace (1 hour) has passed
    assert [a["name"] for a in emulator.alerts()] == ["weekdays"]


def test_a_fixed_interval_alerts_two_days_late_for_the_same_missed_run(
    run_dag: Callable[..., Any], weekday_heartbeat: EmulatorHandle
) -> None:
    """The baseline the mode improves on: with the longest gap, a missed Tuesday waits for Thursday."""
    emulator = weekday_heartbeat
    source = NEXT_RUN_DAG.format(dag_id="weekdays", schedule=WEEKDAYS, extra="").replace(
        'interval="next_run"', "interval=73, interval_unit='hours'"
    )
    assert run_dag(source, "weekdays", logical_date=MONDAY, run_after=MONDAY).state == "success"
    emulator.advance(25 * HOUR + 120)  # Tuesday's run is missed, grace included
    assert emulator.alerts() == []
    emulator.advance(48 * HOUR)
    assert [a["name"] for a in emulator.alerts()] == ["weekdays"]


def test_a_failed_patch_still_pings_and_says_when_it_may_alert(
    run_dag: Callable[..., Any], weekday_heartbeat: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = weekday_heartbeat
    source = NEXT_RUN_DAG.format(dag_id="weekdays", schedule=WEEKDAYS, extra=", deadline=4")
    emulator.set_faults({"kind": "status", "status": 500, "endpoint": "update"})
    caplog.set_level(logging.WARNING)
    assert run_dag(source, "weekdays", logical_date=FRIDAY, run_after=FRIDAY).state == "success"
    assert endpoints(emulator).count("ping") == 1  # the run is reported whatever the PATCH did
    assert emulator.heartbeats()["weekdays"]["interval"] == 73  # unchanged: the PATCH failed
    warnings = [r.getMessage() for r in caplog.records if "could not be set to 73 hours" in r.getMessage()]
    assert warnings
    assert "alerts early" in warnings[0]
    # The next run tries again (nothing was remembered for a PATCH that failed).
    emulator.clear_faults()
    before = len(emulator.requests())
    assert run_dag(source, "weekdays", logical_date=MONDAY, run_after=MONDAY).state == "success"
    assert endpoints(emulator, before)[:2] == ["update", "ping"]
    assert emulator.heartbeats()["weekdays"]["interval"] == 25


def test_a_run_handled_elsewhere_or_a_manual_run_makes_the_next_run_patch_again(
    run_dag: Callable[..., Any],
    weekday_heartbeat: EmulatorHandle,
    heartbeat_record_dir: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a process remembers skips a PATCH only when it also set the interval for the run before."""
    emulator = weekday_heartbeat
    source = NEXT_RUN_DAG.format(dag_id="weekdays", schedule=WEEKDAYS, extra="")
    last_friday = FRIDAY.subtract(weeks=1)
    assert run_dag(source, "weekdays", logical_date=last_friday, run_after=last_friday).state == "success"
    # Monday's run is handled by another DAG processor (its own record), which sets 25 hours.
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR", str(heartbeat_record_dir / "other"))
    last_monday = MONDAY.subtract(weeks=1)
    assert run_dag(source, "weekdays", logical_date=last_monday, run_after=last_monday).state == "success"
    assert seconds(emulator.heartbeats()["weekdays"]) == 25 * HOUR
    # This process set 73 hours last Friday and wants 73 hours again: it must PATCH all the same.
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR", str(heartbeat_record_dir))
    before = len(emulator.requests())
    assert run_dag(source, "weekdays", logical_date=FRIDAY, run_after=FRIDAY).state == "success"
    assert endpoints(emulator, before)[:2] == ["update", "ping"]
    assert seconds(emulator.heartbeats()["weekdays"]) == 73 * HOUR
    # A manual run on Saturday at 10:00: 44.5 hours until Monday 06:30, plus the hour of grace.
    saturday = pendulum.datetime(2026, 11, 21, 10, 0, tz="UTC")
    assert run_dag(source, "weekdays", logical_date=saturday, run_after=saturday).state == "success"
    assert seconds(emulator.heartbeats()["weekdays"]) == int(44.5 * HOUR) + HOUR
    before = len(emulator.requests())
    assert run_dag(source, "weekdays", logical_date=MONDAY, run_after=MONDAY).state == "success"
    assert endpoints(emulator, before) == ["update", "ping"]
    assert seconds(emulator.heartbeats()["weekdays"]) == 25 * HOUR


def test_ensure_creates_the_heartbeat_with_the_interval_to_the_next_run(
    run_dag: Callable[..., Any], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    emulator = opsgenie_heartbeat_conn
    source = NEXT_RUN_DAG.format(dag_id="weekdays", schedule=WEEKDAYS, extra=", ensure=True")
    assert run_dag(source, "weekdays", logical_date=FRIDAY, run_after=FRIDAY).state == "success"
    assert seconds(emulator.heartbeats()["weekdays"]) == 73 * HOUR
    before = len(emulator.requests())
    assert run_dag(source, "weekdays", logical_date=MONDAY, run_after=MONDAY).state == "success"
    # Ensure remembers it ensured the other settings; it does not undo the interval runs set.
    assert endpoints(emulator, before) == ["update", "ping"]
    assert seconds(emulator.heartbeats()["weekdays"]) == 25 * HOUR


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"interval": "next_run", "interval_unit": "hours"}, "interval_unit"),
        ({"interval": "weekly"}, "interval"),
    ],
)
def test_bad_next_run_arguments_are_refused_when_the_dag_is_parsed(kwargs: dict[str, Any], field: str) -> None:
    from airflow_provider_opsgenie_hb.errors import HeartbeatValidationError
    from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

    with pytest.raises(HeartbeatValidationError) as refused:
        send_opsgenie_heartbeat(**kwargs)
    assert field in refused.value.errors


class _Run:
    """What the scheduler hands ``on_dag_run_success``: a DAG run with its DAG, type and times."""

    def __init__(self, dag: Any, run_after: pendulum.DateTime) -> None:
        self.dag, self.run_type, self.run_id = dag, "scheduled", f"scheduled__{run_after.isoformat()}"
        self.run_after = run_after
        self.data_interval_start = self.data_interval_end = run_after


def test_the_listener_in_next_run_mode_sets_the_interval_before_its_ping(
    weekday_heartbeat: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import DAG

    emulator = weekday_heartbeat
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__INTERVAL_MODE", "next_run")
    listener._pinger = None
    tagged = DAG("weekdays", schedule=WEEKDAYS, start_date=pendulum.datetime(2026, 1, 1), tags=["opsgenie-heartbeat"])
    before = len(emulator.requests())
    listener.heartbeat_listener.on_dag_run_success(_Run(tagged, THURSDAY), "success")
    assert listener._pinger is not None
    assert listener._pinger.flush(5)
    assert endpoints(emulator, before) == ["update", "ping"]
    assert seconds(emulator.heartbeats()["weekdays"]) == 25 * HOUR


def test_sync_leaves_the_interval_runs_set_and_lengthens_one_that_would_expire_first(
    opsgenie_heartbeat_conn: EmulatorHandle, tmp_path: Any
) -> None:
    from airflow_provider_opsgenie_hb.client import HeartbeatClient
    from airflow_provider_opsgenie_hb.sync import sync_heartbeats

    emulator = opsgenie_heartbeat_conn
    monthly = "0 0 1 * *"
    (tmp_path / "dags.py").write_text(
        NEXT_RUN_DAG.format(dag_id="steady", schedule=monthly, extra="")
        + NEXT_RUN_DAG.format(dag_id="changed", schedule=monthly, extra="").replace("as dag:", "as dag2:")
    )
    sync_heartbeats(str(tmp_path), dry_run=False)
    created = emulator.heartbeats()
    longest = (745, "hours")  # 31 days + 1 hour of grace: a safe start until the first run sets its own
    assert (created["steady"]["interval"], created["steady"]["intervalUnit"]) == longest
    with HeartbeatClient(api_key=emulator.api_key, base_url=emulator.url) as client:
        # "steady" holds an interval other than the longest gap that outlasts the next run (a
        # fixed-interval sync would reset it); "changed" holds one minute, as if its schedule
        # had been every minute until now: it would alert long before the next run.
        client.update_heartbeat("steady", interval=32, interval_unit="days")
        client.update_heartbeat("changed", interval=1, interval_unit="minutes")
        client.ping_heartbeat("steady")
    result = sync_heartbeats(str(tmp_path), dry_run=False)
    assert {item.name: item.action for item in result.items} == {"steady": "unchanged", "changed": "update"}
    after = emulator.heartbeats()
    assert (after["steady"]["interval"], after["steady"]["intervalUnit"]) == (32, "days")
    assert (after["changed"]["interval"], after["changed"]["intervalUnit"]) == longest


def test_a_heartbeat_deleted_by_hand_is_recreated_by_the_next_run_not_a_day_later(
    run_dag: Callable[..., Any], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    from airflow_provider_opsgenie_hb.client import HeartbeatClient

    emulator = opsgenie_heartbeat_conn
    source = NEXT_RUN_DAG.format(dag_id="weekdays", schedule=WEEKDAYS, extra=", ensure=True")
    assert run_dag(source, "weekdays", logical_date=THURSDAY, run_after=THURSDAY).state == "success"
    with HeartbeatClient(api_key=emulator.api_key, base_url=emulator.url) as client:
        client.delete_heartbeat("weekdays")
    # The record says "ensured" for another day, but the PATCH found no heartbeat: ensure again now.
    assert run_dag(source, "weekdays", logical_date=FRIDAY, run_after=FRIDAY).state == "success"
    assert seconds(emulator.heartbeats()["weekdays"]) == 73 * HOUR
    assert emulator.heartbeats()["weekdays"]["lastPingTime"]  # pinged after it was created again


def test_without_ensure_a_missing_heartbeat_is_named_and_the_ping_still_goes(
    run_dag: Callable[..., Any], opsgenie_heartbeat_conn: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = opsgenie_heartbeat_conn
    caplog.set_level(logging.WARNING)
    source = NEXT_RUN_DAG.format(dag_id="nowhere", schedule=WEEKDAYS, extra="")
    assert run_dag(source, "nowhere", logical_date=FRIDAY, run_after=FRIDAY).state == "success"
    assert endpoints(emulator)[:2] == ["update", "ping"]
    assert any("'nowhere' does not exist" in r.getMessage() for r in caplog.records)
