"""``interval="next_run"``: each run sets the interval to the next run, against the emulator and real Airflow.

Runs happen on a simulated timeline: each ``dag.test()`` runs with the clock moved to when
the run finishes (time-machine moves it for Airflow, the callback and the in-process
emulator alike), so a weekend really passes between Friday's run and Monday's. The expected
intervals come from Airflow's own timetable, never from a second reading of the cron.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

import pendulum
import pytest
import time_machine
from conftest import AIRFLOW_VERSION
from packaging.version import Version

from airflow_provider_opsgenie_hb.listeners import heartbeat as listener
from opsgenie_heartbeat_emulator import EmulatorHandle

WEEKDAYS = "30 6 * * 1-5"
HOUR = 3600
# Ahead of today, so that the real clock, outside a run, never expires these heartbeats.
THURSDAY = pendulum.datetime(2027, 1, 7, 6, 30, tz="UTC")
FRIDAY = THURSDAY.add(days=1)
SATURDAY = THURSDAY.add(days=2)
MONDAY = THURSDAY.add(days=4)
TUESDAY = THURSDAY.add(days=5)
WEDNESDAY = THURSDAY.add(days=6)

NEXT_RUN_DAG = """
import pendulum
from airflow.providers.common.compat.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

with DAG(dag_id="{dag_id}", schedule="{schedule}", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         catchup=False, on_success_callback=send_opsgenie_heartbeat(interval="next_run"{extra})) as dag:
    @task
    def work():
        return 1
    work()
"""
WEEKDAY_DAG = NEXT_RUN_DAG.format(dag_id="weekdays", schedule=WEEKDAYS, extra="")

# dag.test() on Airflow 2 cannot say when a run was due (it has no run_after): the timeline cannot be simulated.
pytestmark = pytest.mark.skipif(Version("3") > AIRFLOW_VERSION, reason="interval='next_run' is tested on Airflow 3")


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
    """Pings and PATCHes (the once-a-day existence check aside)."""
    return [r["endpoint"] for r in emulator.requests()[since:] if r["endpoint"] in ("update", "ping", "create")]


def alerted(emulator: EmulatorHandle, at: pendulum.DateTime) -> list[str]:
    """The alerts raised by ``at`` (the emulator's clock moved there)."""
    with time_machine.travel(at, tick=False):
        return [a["name"] for a in emulator.alerts()]


@pytest.fixture
def run_at(run_dag: Callable[..., Any], opsgenie_heartbeat_conn: EmulatorHandle) -> Callable[..., list[str]]:
    """Run a DAG due at ``due`` that finishes ``minutes`` later; returns the requests it sent."""

    def run(due: pendulum.DateTime, source: str = WEEKDAY_DAG, dag_id: str = "weekdays", minutes: int = 5) -> list[str]:
        before = len(opsgenie_heartbeat_conn.requests())
        with time_machine.travel(due.add(minutes=minutes), tick=True):
            assert run_dag(source, dag_id, logical_date=due, run_after=due).state == "success"
        sent = endpoints(opsgenie_heartbeat_conn, before)
        # dag.test() says success even when the callback raised: every run's ping must have arrived.
        assert "ping" in sent, sent
        return sent

    return run


@pytest.fixture
def weekday_heartbeat(opsgenie_heartbeat_conn: EmulatorHandle) -> EmulatorHandle:
    """A heartbeat made by sync or ensure: the schedule's longest gap plus grace (73 hours)."""
    from airflow_provider_opsgenie_hb.api.client import HeartbeatClient

    with (
        time_machine.travel(THURSDAY.subtract(days=1), tick=True),
        HeartbeatClient.opsgenie(
            api_key=opsgenie_heartbeat_conn.api_key, base_url=opsgenie_heartbeat_conn.url
        ) as client,
    ):
        client.create_heartbeat(name="weekdays", interval=73, interval_unit="hours", enabled=True)
        client.ping_heartbeat("weekdays")
    return opsgenie_heartbeat_conn


def test_each_run_sets_the_gap_to_the_next_run_in_the_order_safe_under_both_readings(
    run_at: Callable[..., list[str]], weekday_heartbeat: EmulatorHandle
) -> None:
    emulator = weekday_heartbeat
    runs = (THURSDAY, FRIDAY, MONDAY, TUESDAY, WEDNESDAY)
    seen = [(run_at(due), seconds(emulator.heartbeats()["weekdays"])) for due in runs]
    expected = [int((airflow_gap(WEEKDAYS, r) + datetime.timedelta(hours=1)).total_seconds()) for r in runs]
    assert [s for _, s in seen] == expected == [25 * HOUR, 73 * HOUR, 25 * HOUR, 25 * HOUR, 25 * HOUR]
    assert [e for e, _ in seen] == [
        ["ping", "update", "ping"],  # nothing remembered yet: ping, PATCH, ping
        ["update", "ping"],  # longer: the PATCH first, then the ping that arms it
        ["ping", "update", "ping"],  # shorter: a ping first, so the deadline cannot fall behind
        ["ping"],  # a fixed rhythm: one request per run
        ["ping"],
    ]


@pytest.mark.parametrize("interval_change", ["running", "next_ping"])
@pytest.mark.parametrize("hosts", ["one host", "two hosts", "two hosts sharing the record"])
def test_no_false_alert_over_the_weekend_and_a_missed_run_alerts_within_the_grace(
    run_at: Callable[..., list[str]],
    weekday_heartbeat: EmulatorHandle,
    interval_change: str,
    hosts: str,
    heartbeat_record_dir: Any,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """Correct whether a changed interval applies to the running countdown or from the next ping, and
    whichever host reports each run (each with its own record, or all sharing one in the metadata database)."""
    emulator = weekday_heartbeat
    emulator.set_interval_change(interval_change)
    if hosts == "two hosts sharing the record":
        request.getfixturevalue("metadata_record")
    for number, due in enumerate((THURSDAY, FRIDAY, MONDAY)):  # Friday lengthens the interval, Monday shortens it
        if hosts != "one host":  # consecutive runs reported by different hosts
            monkeypatch.setenv(
                "AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR", str(heartbeat_record_dir / f"host-{number % 2}")
            )
        run_at(due)
        assert alerted(emulator, due.add(minutes=6)) == []
    assert alerted(emulator, TUESDAY.add(minutes=64)) == []  # Tuesday's run is missed: within its grace
    assert alerted(emulator, TUESDAY.add(minutes=66)) == ["weekdays"]


def test_a_missed_friday_alerts_on_friday_not_on_monday(
    run_at: Callable[..., list[str]], weekday_heartbeat: EmulatorHandle
) -> None:
    run_at(THURSDAY)
    assert alerted(weekday_heartbeat, FRIDAY.add(minutes=66)) == ["weekdays"]


def test_a_fixed_interval_alerts_two_days_late_for_the_same_missed_run(
    run_at: Callable[..., list[str]], weekday_heartbeat: EmulatorHandle
) -> None:
    """The baseline the mode improves on: with the longest gap, a missed Tuesday waits for Thursday."""
    fixed = WEEKDAY_DAG.replace('interval="next_run"', "interval=73, interval_unit='hours'")
    for due in (THURSDAY, FRIDAY, MONDAY):
        run_at(due, fixed)
    assert alerted(weekday_heartbeat, TUESDAY.add(hours=48)) == []  # Thursday morning: still nothing
    assert alerted(weekday_heartbeat, TUESDAY.add(hours=50)) == ["weekdays"]


def test_a_failed_patch_still_pings_and_says_it_may_alert_early(
    run_at: Callable[..., list[str]], weekday_heartbeat: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = weekday_heartbeat
    run_at(THURSDAY)
    emulator.set_faults({"kind": "status", "status": 500, "endpoint": "update"})
    caplog.set_level(logging.WARNING)
    sent = run_at(FRIDAY, NEXT_RUN_DAG.format(dag_id="weekdays", schedule=WEEKDAYS, extra=", deadline=4"))
    assert sent.count("ping") == 1  # the run is reported whatever the PATCH did
    assert sent[-1] == "ping"
    assert seconds(emulator.heartbeats()["weekdays"]) == 25 * HOUR  # the PATCH failed
    warnings = [r.getMessage() for r in caplog.records if "could not be set to 73 hours" in r.getMessage()]
    assert warnings
    assert "alerts early" in warnings[0]
    emulator.clear_faults()
    # Nothing was remembered for the PATCH that failed: the next run sets its interval again.
    assert run_at(MONDAY) == ["ping", "update", "ping"]


def test_sync_hides_no_missed_run_and_lengthens_only_after_a_schedule_change(
    run_at: Callable[..., list[str]], weekday_heartbeat: EmulatorHandle, tmp_path: Any
) -> None:
    from airflow_provider_opsgenie_hb.core.sync import sync_heartbeats
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    emulator = weekday_heartbeat
    (tmp_path / "weekdays.py").write_text(WEEKDAY_DAG)
    run_at(THURSDAY)  # 25 hours
    # Thursday's run overran and reports at 07:00 on Friday; Friday's own run fails.
    run_at(THURSDAY, minutes=24 * 60 + 30)
    with time_machine.travel(FRIDAY.add(minutes=40), tick=True):  # the canary's sync
        (item,) = sync_heartbeats(str(tmp_path), OpsgenieHeartbeatHook(), dry_run=False, adopt=True).items
    assert "interval" not in item.changed  # an interval the runs set is theirs: a late run is not hidden
    assert seconds(emulator.heartbeats()["weekdays"]) == 25 * HOUR
    assert alerted(emulator, FRIDAY.add(hours=26)) == ["weekdays"]
    # A deploy makes the DAG weekly: 25 hours would run out before its first Monday run.
    (tmp_path / "weekdays.py").write_text(WEEKDAY_DAG.replace(WEEKDAYS, "30 6 * * 1"))
    with time_machine.travel(FRIDAY.add(hours=27), tick=True):
        (item,) = sync_heartbeats(str(tmp_path), OpsgenieHeartbeatHook(), dry_run=False, adopt=True).items
    assert item.action == "update"
    assert "interval" in item.changed
    assert seconds(emulator.heartbeats()["weekdays"]) == 169 * HOUR  # the longest gap, until a run sets its own


def test_runs_off_the_timetable_or_overtaken_only_ping(
    run_at: Callable[..., list[str]], weekday_heartbeat: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    """A manual run at another time, or a run that finishes after the next one: the interval stays."""
    emulator = weekday_heartbeat
    run_at(FRIDAY)  # 73 hours, until Monday
    # Thursday's run overran and reports after Friday's run: Friday's interval stands.
    assert run_at(THURSDAY, minutes=26 * 60) == ["ping"]
    assert seconds(emulator.heartbeats()["weekdays"]) == 73 * HOUR
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="airflow_provider_opsgenie_hb"):
        assert run_at(SATURDAY.add(hours=4)) == ["ping"]  # manual, Saturday 10:30
    assert "'weekdays': this run does not set the interval (only a run on the timetable" in caplog.text
    assert seconds(emulator.heartbeats()["weekdays"]) == 73 * HOUR
    assert alerted(emulator, MONDAY.add(minutes=30)) == []


def test_a_run_handled_by_another_process_makes_the_next_run_patch_again(
    run_at: Callable[..., list[str]],
    weekday_heartbeat: EmulatorHandle,
    heartbeat_record_dir: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a process remembers skips a PATCH only when it also set the interval for the run before."""
    emulator = weekday_heartbeat
    run_at(FRIDAY.subtract(weeks=1))  # 73 hours
    # Monday's run is handled by another DAG processor (its own record), which sets 25 hours.
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR", str(heartbeat_record_dir / "other"))
    for due in (MONDAY, TUESDAY, WEDNESDAY, THURSDAY.add(weeks=1)):
        run_at(due.subtract(weeks=1))
    assert seconds(emulator.heartbeats()["weekdays"]) == 25 * HOUR
    # This process set 73 hours last Friday and wants 73 hours again: it must PATCH all the same.
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR", str(heartbeat_record_dir))
    assert run_at(FRIDAY) == ["ping", "update", "ping"]
    assert seconds(emulator.heartbeats()["weekdays"]) == 73 * HOUR


def test_with_the_record_in_the_metadata_database_runs_on_any_host_follow_the_chain(
    run_at: Callable[..., list[str]],
    weekday_heartbeat: EmulatorHandle,
    heartbeat_record_dir: Any,
    metadata_record: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``record_store = metadata``: consecutive runs' callbacks on two hosts cost what one host costs."""
    from conftest import record_variables

    emulator = weekday_heartbeat
    hosts = [heartbeat_record_dir / "host-a", heartbeat_record_dir / "host-b"]
    sent = []
    for number, due in enumerate((MONDAY, TUESDAY, WEDNESDAY, THURSDAY.add(weeks=1), FRIDAY.add(weeks=1))):
        monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR", str(hosts[number % 2]))
        sent.append(run_at(due))
    assert sent == [
        ["ping", "update", "ping"],  # nothing recorded yet
        ["ping"],  # host b follows what host a set for it
        ["ping"],
        ["ping"],
        ["update", "ping"],  # Friday: longer, to Monday
    ]
    assert seconds(emulator.heartbeats()["weekdays"]) == 73 * HOUR
    assert not any(host.exists() for host in hosts)  # nothing was kept on either host
    assert any(key.startswith("opsgenie_heartbeat.record.pings.") for key in record_variables())


def test_dags_test_with_a_logical_date_on_the_timetable_sets_the_interval_as_that_run_would(
    run_dag: Callable[..., Any], weekday_heartbeat: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    """``airflow dags test weekdays <Thursday 06:30>`` runs now, as a manual run of Thursday's date: it
    stands for Thursday's scheduled run, so a user sees the interval set to Friday's run (25 hours, where
    the heartbeat had 73), as the scheduler's run would set it. A date the timetable has no run at only pings."""
    emulator = weekday_heartbeat
    with time_machine.travel(THURSDAY.add(minutes=20), tick=True), caplog.at_level(logging.INFO):
        assert run_dag(WEEKDAY_DAG, "weekdays", logical_date=THURSDAY).state == "success"  # run_after: now
    assert seconds(emulator.heartbeats()["weekdays"]) == 25 * HOUR
    assert "'weekdays': interval set to 25 hours (next run due 2027-01-08 06:30:00+00:00)" in caplog.text
    before = len(emulator.requests())
    with time_machine.travel(THURSDAY.add(hours=3), tick=True):
        assert run_dag(WEEKDAY_DAG, "weekdays", logical_date=THURSDAY.add(hours=2)).state == "success"
    assert endpoints(emulator, before) == ["ping"]
    assert seconds(emulator.heartbeats()["weekdays"]) == 25 * HOUR


@pytest.mark.parametrize(
    "entry",
    ['{"anchor": null, "next": null}', '{"anchor": 5, "next": 5, "interval": "25 hours", "seconds": null}', "[]", "{"],
)
def test_a_record_entry_of_another_shape_never_holds_back_the_ping(
    run_at: Callable[..., list[str]], weekday_heartbeat: EmulatorHandle, entry: str
) -> None:
    """A record written by another release, or damaged: the run pings, sets the interval as if nothing were
    known, and writes the entry anew, so the next run follows it."""
    from airflow_provider_opsgenie_hb.core import record
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    emulator = weekday_heartbeat
    run_at(THURSDAY)
    scope = record.scope("opsgenie_heartbeat_default", OpsgenieHeartbeatHook(), "weekdays")
    with time_machine.travel(FRIDAY, tick=True):
        record.remember(record.fact("next-run-interval", *scope), entry)
    assert run_at(FRIDAY) == ["ping", "update", "ping"]
    assert seconds(emulator.heartbeats()["weekdays"]) == 73 * HOUR
    assert run_at(MONDAY) == ["ping", "update", "ping"]  # shorter again: the chain holds


def test_a_record_that_does_not_answer_never_holds_back_the_ping(
    run_at: Callable[..., list[str]], weekday_heartbeat: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record that takes longer than RECALL_WAIT to answer (a cold Variable lookup, a slow secrets
    backend): the ping goes out without it, in the order that is safe when nothing is known."""
    from airflow_provider_opsgenie_hb.core import next_run, record

    slow_recall = record.recall

    def slow(key: str, *, ttl: float | None = None) -> str | None:
        time.sleep(3 * next_run.RECALL_WAIT)
        return slow_recall(key, ttl=ttl)

    run_at(THURSDAY)
    monkeypatch.setattr(record, "recall", slow)
    assert run_at(FRIDAY) == ["ping", "update", "ping"]
    assert seconds(weekday_heartbeat.heartbeats()["weekdays"]) == 73 * HOUR


def test_ensure_creates_the_heartbeat_with_the_interval_to_the_next_run(
    run_at: Callable[..., list[str]], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    emulator = opsgenie_heartbeat_conn
    source = NEXT_RUN_DAG.format(dag_id="weekdays", schedule=WEEKDAYS, extra=", ensure=True")
    run_at(FRIDAY, source)
    assert seconds(emulator.heartbeats()["weekdays"]) == 73 * HOUR
    # Ensure remembers it ensured the other settings; it leaves the interval to the runs.
    assert run_at(MONDAY, source) == ["ping", "update", "ping"]
    assert seconds(emulator.heartbeats()["weekdays"]) == 25 * HOUR


def test_a_heartbeat_deleted_by_hand_is_recreated_by_the_next_run_not_a_day_later(
    run_at: Callable[..., list[str]], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    from airflow_provider_opsgenie_hb.api.client import HeartbeatClient

    emulator = opsgenie_heartbeat_conn
    source = NEXT_RUN_DAG.format(dag_id="weekdays", schedule=WEEKDAYS, extra=", ensure=True")
    run_at(THURSDAY, source)
    with HeartbeatClient.opsgenie(api_key=emulator.api_key, base_url=emulator.url) as client:
        client.delete_heartbeat("weekdays")
    # The record says "ensured" for another day, but the PATCH found no heartbeat: ensure again now.
    run_at(FRIDAY, source)
    assert seconds(emulator.heartbeats()["weekdays"]) == 73 * HOUR
    assert emulator.heartbeats()["weekdays"]["lastPingTime"].startswith(FRIDAY.to_date_string())


def test_without_ensure_a_missing_heartbeat_is_named_and_the_ping_still_goes(
    run_at: Callable[..., list[str]], opsgenie_heartbeat_conn: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    sent = run_at(FRIDAY, NEXT_RUN_DAG.format(dag_id="nowhere", schedule=WEEKDAYS, extra=""), "nowhere")
    assert sent[:2] == ["ping", "update"]
    assert any("'nowhere' does not exist" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"interval": "next_run", "interval_unit": "hours"}, "interval_unit"),
        ({"interval": "weekly"}, "interval"),
    ],
)
def test_bad_next_run_arguments_are_refused_when_the_dag_is_parsed(kwargs: dict[str, Any], field: str) -> None:
    from airflow_provider_opsgenie_hb.api.errors import HeartbeatValidationError
    from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

    with pytest.raises(HeartbeatValidationError) as refused:
        send_opsgenie_heartbeat(**kwargs)
    assert field in refused.value.errors


class _Run:
    """What the scheduler hands ``on_dag_run_success``: a DAG run with its DAG, type and due time."""

    def __init__(self, dag: Any, run_after: pendulum.DateTime) -> None:
        self.dag, self.run_type, self.run_id = dag, "scheduled", f"scheduled__{run_after.isoformat()}"
        self.run_after = run_after


def test_the_listener_in_next_run_mode_orders_its_requests_like_the_callback(
    weekday_heartbeat: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.common.compat.sdk import DAG

    emulator = weekday_heartbeat
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__INTERVAL_MODE", "next_run")
    listener._pinger = None
    tagged = DAG("weekdays", schedule=WEEKDAYS, start_date=pendulum.datetime(2026, 1, 1), tags=["opsgenie-heartbeat"])
    sent = []
    for due in (THURSDAY, FRIDAY):
        before = len(emulator.requests())
        with time_machine.travel(due.add(minutes=5), tick=True):
            listener.heartbeat_listener.on_dag_run_success(_Run(tagged, due), "success")
            assert listener._pinger is not None
            assert listener._pinger.flush(5)
        sent.append((endpoints(emulator, before), seconds(emulator.heartbeats()["weekdays"])))
    assert sent == [(["ping", "update", "ping"], 25 * HOUR), (["update", "ping"], 73 * HOUR)]


def test_a_typo_in_interval_mode_falls_back_and_still_pings(
    weekday_heartbeat: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.providers.common.compat.sdk import DAG

    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__INTERVAL_MODE", "nextrun")
    caplog.set_level(logging.WARNING)
    listener._pinger = None
    tagged = DAG("weekdays", schedule=WEEKDAYS, start_date=pendulum.datetime(2026, 1, 1), tags=["opsgenie-heartbeat"])
    before = len(weekday_heartbeat.requests())
    listener.heartbeat_listener.on_dag_run_success(_Run(tagged, THURSDAY), "success")
    assert listener._pinger is not None
    assert listener._pinger.flush(5)
    assert endpoints(weekday_heartbeat, before) == ["ping"]
    assert any("interval_mode must be one of" in r.getMessage() for r in caplog.records)


def test_sync_leaves_the_interval_runs_set(opsgenie_heartbeat_conn: EmulatorHandle, tmp_path: Any) -> None:
    from airflow_provider_opsgenie_hb.api.client import HeartbeatClient
    from airflow_provider_opsgenie_hb.core.sync import sync_heartbeats
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    emulator = opsgenie_heartbeat_conn
    (tmp_path / "monthly.py").write_text(NEXT_RUN_DAG.format(dag_id="monthly", schedule="0 0 1 * *", extra=""))
    sync_heartbeats(str(tmp_path), OpsgenieHeartbeatHook(), dry_run=False)
    longest = (745, "hours")  # 31 days + 1 hour of grace: a safe start until the first run sets its own
    assert (emulator.heartbeats()["monthly"]["interval"], emulator.heartbeats()["monthly"]["intervalUnit"]) == longest
    with HeartbeatClient.opsgenie(api_key=emulator.api_key, base_url=emulator.url) as client:
        # An interval other than the longest gap, which outlasts the next run (a fixed-interval
        # sync would reset it to 745 hours).
        client.update_heartbeat("monthly", interval=32, interval_unit="days")
        client.ping_heartbeat("monthly")
    (item,) = sync_heartbeats(str(tmp_path), OpsgenieHeartbeatHook(), dry_run=False).items
    assert item.action == "unchanged"
    assert (emulator.heartbeats()["monthly"]["interval"], emulator.heartbeats()["monthly"]["intervalUnit"]) == (
        32,
        "days",
    )
