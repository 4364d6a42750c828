"""Heartbeat intervals derived from DAG schedules, compared with Airflow's own timetable walk."""

from __future__ import annotations

import datetime
import itertools
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG, Asset
from airflow_timetables import (
    HAS_PARTITIONS,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    MultipleCronTriggerTimetable,
)
from conftest import AIRFLOW_VERSION
from dateutil.relativedelta import relativedelta
from packaging.version import Version
from schedule_corpus import Entry, corpus

from airflow_provider_opsgenie_hb.core import cron_gaps, schedule
from airflow_provider_opsgenie_hb.core.schedule import (
    HeartbeatInterval,
    ScheduleIntervalError,
    interval_for_dag,
    longest_gap,
)

# Airflow 2 asks a scheduled DAG for a start date.
DAG_START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)

NOW = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.timezone.utc)


def interval(schedule: object, **kwargs: object) -> str:
    return str(interval_for_dag(DAG("d", start_date=DAG_START, schedule=schedule), now=NOW, **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("@hourly", "2 hours"),
        ("*/5 * * * *", "10 minutes"),
        ("0 3 * * *", "25 hours"),
        ("@daily", "25 hours"),
        ("0 3 * * 1-5", "73 hours"),  # Friday 03:00 to Monday 03:00, plus an hour
        ("* * * * 1-5", "2941 minutes"),  # Friday 23:59 to Monday 00:00, plus an hour
        ("@weekly", "169 hours"),
        ("@monthly", "745 hours"),  # the longest month (31 days) plus an hour
        (datetime.timedelta(minutes=90), "150 minutes"),
        (datetime.timedelta(days=1), "25 hours"),
    ],
)
def test_intervals(schedule: object, expected: str) -> None:
    assert interval(schedule) == expected


def test_daylight_saving_time_is_covered() -> None:
    berlin = CronTriggerTimetable("0 3 * * *", timezone="Europe/Berlin")
    # The autumn change makes one day 25 hours long.
    assert longest_gap(berlin, now=NOW) == datetime.timedelta(hours=25)
    assert str(interval_for_dag(DAG("d", start_date=DAG_START, schedule=berlin), now=NOW)) == "26 hours"
    # A wall-clock time skipped in spring (02:30) still gives a whole gap.
    skipped = CronTriggerTimetable("30 2 * * *", timezone="Europe/Berlin")
    assert longest_gap(skipped, now=NOW) == datetime.timedelta(hours=25)


NO_MULTIPLE_CRONS = pytest.mark.skipif(
    MultipleCronTriggerTimetable is None, reason="Airflow 2 has no MultipleCronTriggerTimetable"
)


@NO_MULTIPLE_CRONS
def test_data_interval_cron_and_multiple_crons() -> None:
    assert longest_gap(CronDataIntervalTimetable("0 * * * *", timezone="UTC"), now=NOW) == datetime.timedelta(hours=1)
    both = MultipleCronTriggerTimetable("0 3 * * *", "0 */6 * * *", timezone="UTC")
    assert longest_gap(both, now=NOW) == datetime.timedelta(hours=6)
    twice_a_day = MultipleCronTriggerTimetable("0 3 * * *", "0 15 * * *", timezone="UTC")
    assert longest_gap(twice_a_day, now=NOW) == datetime.timedelta(hours=12)


def test_relativedelta_uses_the_longest_step() -> None:
    assert interval(relativedelta(months=1)) == "745 hours"


def test_grace_can_be_set() -> None:
    assert interval("0 3 * * *", grace=datetime.timedelta(0)) == "1 day"
    assert interval("0 3 * * *", grace=datetime.timedelta(minutes=30)) == "1470 minutes"


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ("@once", "runs once"),
        (None, "no schedule"),
        ([Asset("s3://bucket/file")], "triggered by assets"),
    ],
)
def test_schedules_without_a_rhythm_ask_for_an_explicit_interval(schedule: object, reason: str) -> None:
    with pytest.raises(ScheduleIntervalError) as err:
        interval(schedule)
    assert reason in str(err.value)
    assert "DAG 'd'" in str(err.value)
    assert "interval=" in str(err.value)


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (datetime.timedelta(hours=25), (25, "hours")),
        (datetime.timedelta(minutes=90), (90, "minutes")),
        (datetime.timedelta(days=2), (2, "days")),
        (datetime.timedelta(seconds=61), (2, "minutes")),
        (datetime.timedelta(seconds=1), (1, "minutes")),
    ],
)
def test_largest_exact_unit(span: datetime.timedelta, expected: tuple[int, str]) -> None:
    result = HeartbeatInterval.from_timedelta(span)
    assert (result.interval, result.interval_unit) == expected


def test_scheduler_side_timetables_and_serialized_dags() -> None:
    from airflow.timetables.trigger import CronTriggerTimetable as CoreCronTriggerTimetable

    try:
        from airflow.serialization.serialized_objects import DagSerialization
    except ImportError:  # Airflow < 3.2
        from airflow.serialization.serialized_objects import SerializedDAG as DagSerialization

    assert longest_gap(CoreCronTriggerTimetable("@hourly", timezone="UTC"), now=NOW) == datetime.timedelta(hours=1)
    dag = DAG("serialized", start_date=DAG_START, schedule=CronTriggerTimetable("0 3 * * *", timezone="Europe/Berlin"))
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert str(interval_for_dag(serialized, now=NOW)) == "26 hours"


def test_other_timetables() -> None:
    from airflow_timetables import EventsTimetable, asset_or_time

    either = asset_or_time(CronTriggerTimetable("0 * * * *", timezone="UTC"))
    assert longest_gap(either, now=NOW) == datetime.timedelta(hours=1)  # the time part bounds the silence
    events = EventsTimetable(event_dates=[NOW, NOW + datetime.timedelta(days=3)])
    with pytest.raises(ScheduleIntervalError, match="list of events"):
        longest_gap(events, now=NOW)
    with pytest.raises(ScheduleIntervalError, match="continuously"):
        interval_for_dag(DAG("c", start_date=DAG_START, schedule="@continuous", max_active_runs=1), now=NOW)


# ---------------------------------------------------------------------------- against Airflow's walk


def reference_gap(timetable: Any, now: datetime.datetime, lookahead: datetime.timedelta) -> datetime.timedelta | None:
    """Brute force: every run Airflow's scheduler-side timetable schedules from ``now`` until the
    first one after ``now + lookahead`` (two runs at least); the longest gap, or None when the
    runs stop before."""
    from airflow.timetables.base import TimeRestriction

    # The conversion the scheduler makes (Airflow 3.2+ serializes Task-SDK timetables into its own).
    core = schedule.scheduler_timetable(timetable)
    start = pendulum.instance(now)
    restriction = TimeRestriction(earliest=start, latest=None, catchup=True)
    info = core.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    runs = []
    while info is not None:
        runs.append(info.run_after)
        if info.run_after > start + lookahead and len(runs) > 1:
            return max(datetime.timedelta(seconds=(b - a).total_seconds()) for a, b in itertools.pairwise(runs))
        info = core.next_dagrun_info(last_automated_data_interval=info.data_interval, restriction=restriction)
    return None


def test_the_corpus_covers_what_it_should() -> None:
    entries = corpus()
    assert len(entries) >= 60
    crons = " ".join(
        e.schedule if isinstance(e.schedule, str) else " ".join(e.schedule)
        for e in entries
        if isinstance(e.schedule, (str, tuple))
    )
    for feature in ("L", "W", "#", "-", "/", ",", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"):
        assert feature in crons, feature
    zones = {e.zone for e in entries}
    assert {"Australia/Lord_Howe", "America/Santiago", "Asia/Beirut", "Australia/Sydney", "Asia/Tokyo"} <= zones
    partition = {"partition"} if HAS_PARTITIONS else set()  # partitioned timetables came with Airflow 3.2
    assert {e.variant for e in entries} == {"trigger", "interval", "asset-or-time", *partition}


@pytest.mark.parametrize("entry", corpus(), ids=lambda e: e.label)
def test_longest_gap_equals_airflows_walk(entry: Entry) -> None:
    now, lookahead = entry.span()
    expected = reference_gap(entry.timetable(), now, lookahead)
    assert expected is not None
    assert expected > datetime.timedelta(0)
    assert longest_gap(entry.timetable(), now=now, lookahead=lookahead) == expected


@pytest.mark.parametrize(
    ("schedule", "lookahead", "expected"),
    [
        ("0 0 29 2 *", schedule.LOOKAHEAD, datetime.timedelta(days=1461)),
        ("@yearly", schedule.LOOKAHEAD, datetime.timedelta(days=366)),
        ("0 3 * * *", datetime.timedelta(days=366), datetime.timedelta(hours=25)),
    ],
)
def test_the_default_lookahead_holds_leap_years(schedule: str, lookahead: datetime.timedelta, expected: object) -> None:
    berlin = CronTriggerTimetable(schedule, timezone="Europe/Berlin")
    assert longest_gap(berlin, now=NOW) == expected
    assert reference_gap(berlin, NOW, lookahead) == expected


def test_dense_crons_are_not_walked_run_by_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.timetables.trigger import CronTriggerTimetable as CoreCronTriggerTimetable

    calls = []
    original = CoreCronTriggerTimetable.next_dagrun_info

    def counting(self: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(self, **kwargs)

    monkeypatch.setattr(CoreCronTriggerTimetable, "next_dagrun_info", counting)
    gap = longest_gap(CronTriggerTimetable("* * * * 1-5", timezone="Europe/Berlin"), now=NOW)
    assert gap == datetime.timedelta(days=2, minutes=1)  # Friday 23:59 to Monday 00:00
    assert 0 < len(calls) < 200  # four years hold over a million runs


@NO_MULTIPLE_CRONS
def test_the_issue_examples_differ_from_a_naive_walk() -> None:
    berlin_twice = MultipleCronTriggerTimetable("0 3 * * *", "0 15 * * *", timezone="Europe/Berlin")
    assert longest_gap(berlin_twice, now=NOW) == datetime.timedelta(hours=13)
    assert str(interval_for_dag(DAG("d", start_date=DAG_START, schedule=berlin_twice), now=NOW)) == "14 hours"
    every_five = CronTriggerTimetable("*/5 * * * *", timezone="Europe/Berlin")
    assert str(interval_for_dag(DAG("d", start_date=DAG_START, schedule=every_five), now=NOW)) == "10 minutes"
    new_york = CronTriggerTimetable("0 * * * *", timezone="America/New_York")
    assert str(interval_for_dag(DAG("d", start_date=DAG_START, schedule=new_york), now=NOW)) == "2 hours"
    leap_days = MultipleCronTriggerTimetable("0 0 29 2 *", "0 12 29 2 *", timezone="UTC")
    assert longest_gap(leap_days, now=NOW) == datetime.timedelta(days=1461) - datetime.timedelta(hours=12)


def test_interval_is_gap_plus_grace_rounded_up_never_below_the_gap() -> None:
    gap = datetime.timedelta(minutes=90, seconds=1)
    assert str(schedule.interval_for_gap(gap)) == "151 minutes"
    assert str(schedule.interval_for_gap(gap, datetime.timedelta(seconds=-5))) == "91 minutes"
    assert str(schedule.interval_for_gap(datetime.timedelta(days=1461))) == "35065 hours"


class EveryOtherDay:
    """A plugin timetable: runs at noon every other day (from 2026-01-01)."""

    def __init__(self, step: datetime.timedelta = datetime.timedelta(days=2)) -> None:
        self.step = step

    def next_dagrun_info(self, *, last_automated_data_interval: Any, restriction: Any) -> Any:
        from airflow.timetables.base import DagRunInfo

        base = pendulum.datetime(2026, 1, 1, 12, tz="UTC")
        if last_automated_data_interval is not None:
            return DagRunInfo.exact(last_automated_data_interval.end + self.step)
        steps = -(-(restriction.earliest - base).total_seconds() // self.step.total_seconds())
        return DagRunInfo.exact(base + self.step * int(steps))


def test_custom_timetables_are_walked() -> None:
    assert longest_gap(EveryOtherDay(), now=NOW) == datetime.timedelta(days=2)
    with pytest.raises(ScheduleIntervalError, match="more than 5000 runs"):
        longest_gap(EveryOtherDay(datetime.timedelta(minutes=5)), now=NOW)


def test_events_that_end_ask_for_an_explicit_interval() -> None:
    from airflow_timetables import EventsTimetable

    weekly = [NOW + datetime.timedelta(weeks=n) for n in range(300)]
    assert longest_gap(EventsTimetable(event_dates=weekly), now=NOW) == datetime.timedelta(weeks=1)
    with pytest.raises(ScheduleIntervalError, match="list of events"):
        longest_gap(EventsTimetable(event_dates=weekly[:10]), now=NOW)


@pytest.mark.skipif(Version("3") > AIRFLOW_VERSION, reason="the README's table is made on Airflow 3")
def test_readme_table_is_generated_from_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[2]
    monkeypatch.syspath_prepend(str(root / "scripts"))
    import interval_table

    readme = (root / "README.md").read_text()
    begin, end = readme.index(interval_table.README_START), readme.index(interval_table.README_END)
    assert readme[begin : end + len(interval_table.README_END)] == interval_table.readme_table()


def test_without_now_the_walk_starts_today_and_answers_are_shared() -> None:
    today = pendulum.now("UTC").start_of("day")
    weekly = CronTriggerTimetable("0 3 * * 1", timezone="Europe/Berlin")
    assert longest_gap(weekly) == longest_gap(weekly, now=today)
    assert longest_gap(CronTriggerTimetable("0 3 * * 1", timezone="Europe/Berlin")) == longest_gap(weekly)
    with pytest.raises(ScheduleIntervalError, match="runs once"):
        interval_for_dag(DAG("once", start_date=DAG_START, schedule="@once"))
    with pytest.raises(ScheduleIntervalError, match="runs once"):  # the cached answer is the error too
        interval_for_dag(DAG("again", start_date=DAG_START, schedule="@once"))


# ---------------------------------------------------------------- interval="next_run"


def airflow_next_run_after(timetable: Any, after: pendulum.DateTime) -> pendulum.DateTime:
    """The first run Airflow's own walk schedules after ``after`` (the ground truth)."""
    from airflow.timetables.base import TimeRestriction

    core = schedule.scheduler_timetable(timetable)
    info = core.next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(earliest=after, latest=None, catchup=True)
    )
    assert info is not None
    return pendulum.instance(info.run_after)


@pytest.mark.parametrize(
    ("cron", "zone", "due", "hours"),
    [
        # Berlin, 02:30 daily: the spring day has no 02:30 (Airflow runs at 03:30 CEST, the same UTC
        # time as the day before); the autumn night has an hour more.
        ("30 2 * * *", "Europe/Berlin", pendulum.datetime(2025, 3, 29, 1, 30, tz="UTC"), 24),
        ("30 2 * * *", "Europe/Berlin", pendulum.datetime(2025, 10, 25, 0, 30, tz="UTC"), 25),
        ("0 8 * * 1-5", "America/New_York", pendulum.datetime(2025, 3, 7, 13, 0, tz="UTC"), 71),  # DST weekend
        ("0 0 1 * *", "UTC", pendulum.datetime(2025, 2, 1, tz="UTC"), 28 * 24),
    ],
)
def test_next_run_interval_is_airflows_gap_plus_grace(cron: str, zone: str, due: pendulum.DateTime, hours: int) -> None:
    timetable = CronTriggerTimetable(cron, timezone=zone)
    dag = DAG("d", schedule=timetable, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"))
    found = schedule.interval_until_next_run(dag, run_after=due, now=due.add(minutes=3))
    expected_next = airflow_next_run_after(timetable, due.add(seconds=1))
    assert found.next_run_after == expected_next
    assert expected_next - due == datetime.timedelta(hours=hours)
    assert found.interval.seconds == hours * 3600 + 3600  # plus an hour of grace, exactly


def test_next_run_counts_from_when_the_run_was_due_so_late_runs_alert_later_not_earlier() -> None:
    dag = DAG("d", schedule="0 3 * * *", start_date=pendulum.datetime(2025, 1, 1, tz="UTC"))
    due = pendulum.datetime(2025, 6, 1, 3, tz="UTC")
    on_time = schedule.interval_until_next_run(dag, run_after=due, now=due.add(minutes=1))
    finished_late = schedule.interval_until_next_run(dag, run_after=due, now=due.add(hours=20))
    assert on_time.interval == finished_late.interval == HeartbeatInterval(25, "hours")
    # A catch-up run from long ago: the next catch-up run is due at once; one gap plus grace, not months.
    caught_up = schedule.interval_until_next_run(dag, run_after=due, now=due.add(days=90))
    assert caught_up.interval == HeartbeatInterval(25, "hours")


def test_next_run_on_data_interval_timetables_follows_the_interval_end() -> None:
    dag = DAG(
        "d",
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    )
    end = pendulum.datetime(2025, 6, 2, tz="UTC")
    found = schedule.interval_until_next_run(
        dag, run_after=end, data_interval=(end.subtract(days=1), end), run_type="scheduled", now=end.add(minutes=5)
    )
    assert found.next_run_after == end.add(days=1)  # the run whose interval ends next
    assert found.interval == HeartbeatInterval(25, "hours")
    assert found.sets_interval
    # A manual run at another time only pings: the scheduled runs set the interval.
    manual = schedule.interval_until_next_run(dag, run_after=end.add(hours=5), now=end.add(hours=6))
    assert not manual.sets_interval


def test_no_next_run_is_a_clear_error() -> None:
    dag = DAG(
        "ends",
        schedule=CronTriggerTimetable("0 3 * * *", timezone="UTC"),  # what "0 3 * * *" means from Airflow 3 on
        start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
        end_date=pendulum.datetime(2025, 1, 10, tz="UTC"),
    )
    with pytest.raises(ScheduleIntervalError, match="schedules no run after"):
        schedule.interval_until_next_run(dag, run_after=pendulum.datetime(2025, 1, 9, 3, tz="UTC"))
    with pytest.raises(ScheduleIntervalError, match="no run after"):
        schedule.interval_until_next_run(
            DAG("manual", schedule=None), run_after=pendulum.datetime(2025, 1, 9, tz="UTC")
        )


@pytest.mark.parametrize(
    ("every", "due", "expected_next"),
    [
        (
            datetime.timedelta(hours=6),
            pendulum.datetime(2026, 3, 1, 3, 17, tz="UTC"),
            pendulum.datetime(2026, 3, 1, 9, 17, tz="UTC"),
        ),
        (relativedelta(months=1), pendulum.datetime(2026, 1, 31, tz="UTC"), pendulum.datetime(2026, 2, 28, tz="UTC")),
        (relativedelta(months=1), pendulum.datetime(2026, 2, 1, tz="UTC"), pendulum.datetime(2026, 3, 1, tz="UTC")),
    ],
)
def test_next_run_on_delta_schedules_follows_the_run_as_the_scheduler_does(
    every: Any, due: pendulum.DateTime, expected_next: pendulum.DateTime
) -> None:
    """A delta timetable counts from the last scheduled run (its phase is the DAG's history, not the clock)."""
    from airflow.timetables.base import DataInterval, TimeRestriction

    dag = DAG("d", schedule=every, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"))
    core = schedule.scheduler_timetable(dag.timetable)
    # The run as the scheduler made it: its data interval is the one its timetable gives.
    info = core.next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(earliest=due, latest=None, catchup=True)
    )
    assert info is not None
    interval = info.data_interval or DataInterval.exact(info.run_after)
    found = schedule.interval_until_next_run(
        dag,
        run_after=info.run_after,
        data_interval=(interval.start, interval.end),
        run_type="scheduled",
        now=pendulum.instance(info.run_after).add(minutes=2),
    )
    after = core.next_dagrun_info(
        last_automated_data_interval=interval, restriction=TimeRestriction(earliest=None, latest=None, catchup=True)
    )
    assert after is not None
    assert found.next_run_after == after.run_after
    assert found.sets_interval
    assert found.interval.seconds == int((after.run_after - info.run_after).total_seconds()) + 3600


def test_the_shortest_interval_of_a_schedule_is_walked_once_for_many_dags(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sync and the Heartbeats page read whole folders: DAGs on one schedule share its walk."""
    walks: list[object] = []
    probe = cron_gaps.Walk.probe
    monkeypatch.setattr(cron_gaps.Walk, "probe", lambda self, *a, **k: walks.append(self) or probe(self, *a, **k))
    monkeypatch.setattr(schedule, "_SHORTEST_GAPS", {})
    start = pendulum.datetime(2026, 1, 1, tz="UTC")
    weekdays = [DAG(f"d{i}", schedule="30 6 * * 1-5", start_date=start) for i in range(50)]
    shown = {str(schedule.shortest_interval(dag)) for dag in weekdays}
    assert (shown, len(walks)) == ({"25 hours"}, 1)
    berlin = DAG("berlin", schedule="30 6 * * 1-5", start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Berlin"))
    assert str(schedule.shortest_interval(berlin)) == "25 hours"
    assert len(walks) == 2  # another time zone is another schedule
