"""Heartbeat intervals derived from DAG schedules."""

from __future__ import annotations

import datetime

import pytest
from airflow.sdk import DAG, Asset
from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable
from airflow.sdk.definitions.timetables.trigger import CronTriggerTimetable, MultipleCronTriggerTimetable
from dateutil.relativedelta import relativedelta

from airflow_provider_opsgenie_hb.schedule import (
    HeartbeatInterval,
    ScheduleIntervalError,
    interval_for_dag,
    longest_gap,
)

NOW = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.timezone.utc)


def interval(schedule: object, **kwargs: object) -> str:
    return str(interval_for_dag(DAG("d", schedule=schedule), now=NOW, **kwargs))  # type: ignore[arg-type]


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
    assert str(interval_for_dag(DAG("d", schedule=berlin), now=NOW)) == "26 hours"
    # A wall-clock time skipped in spring (02:30) still gives a whole gap.
    skipped = CronTriggerTimetable("30 2 * * *", timezone="Europe/Berlin")
    assert longest_gap(skipped, now=NOW) == datetime.timedelta(hours=25)


def test_data_interval_cron_and_multiple_crons() -> None:
    assert longest_gap(CronDataIntervalTimetable("0 * * * *", timezone="UTC"), now=NOW) == datetime.timedelta(hours=1)
    both = MultipleCronTriggerTimetable("0 3 * * *", "0 */6 * * *", timezone="UTC")
    assert longest_gap(both, now=NOW) == datetime.timedelta(hours=6)
    twice_a_day = MultipleCronTriggerTimetable("0 3 * * *", "0 15 * * *", timezone="UTC")
    assert longest_gap(twice_a_day, now=NOW) == datetime.timedelta(hours=12)


def test_relativedelta_uses_the_longest_step() -> None:
    assert interval(relativedelta(months=1)) == "745 hours"


def test_grace_can_be_set() -> None:
    assert interval("0 3 * * *", grace=datetime.timedelta(0)) == "1 days"
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


def test_presets_are_read_whatever_resolved_them() -> None:
    class Timetable:  # a timetable that kept the preset, as older Airflow versions do
        expression = "@hourly"
        timezone = "UTC"

    assert longest_gap(Timetable(), now=NOW) == datetime.timedelta(hours=1)


def test_other_timetables() -> None:
    from airflow.sdk.definitions.timetables.assets import AssetOrTimeSchedule
    from airflow.sdk.definitions.timetables.events import EventsTimetable

    either = AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 * * * *", timezone="UTC"), assets=Asset("s3://x"))
    assert longest_gap(either, now=NOW) == datetime.timedelta(hours=1)  # the time part bounds the silence
    events = EventsTimetable(event_dates=[NOW, NOW + datetime.timedelta(days=3)])
    with pytest.raises(ScheduleIntervalError, match="list of events"):
        longest_gap(events, now=NOW)
    with pytest.raises(ScheduleIntervalError, match="continuously"):
        interval_for_dag(DAG("c", schedule="@continuous", max_active_runs=1), now=NOW)
