"""(schedule, time zone) pairs whose derived gap is compared with Airflow's own timetable walk.

Shared by ``test_schedule.py`` (the comparison) and ``benchmarks/run.py`` (derivation time).

Each entry has a look-ahead window. The derivation is asked for the same window as the
reference walk, which steps through every run with ``next_dagrun_info``:

* ``4y``: the full four-year look-ahead, for schedules that fire less than daily (leap years
  and month lengths change their gaps);
* ``1y``: one year, for daily schedules: both DST transitions of the zone, and every other day;
* ``spring`` / ``autumn``: two days around the zone's next DST transition that way (five days
  for weekday schedules), for schedules that fire many times a day. Away from transitions a
  dense cron repeats the same day, so the transitions are where the two could disagree; a
  brute-force walk of every minute over years would take hours here.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from airflow_timetables import HAS_PARTITIONS, MultipleCronTriggerTimetable

NOW = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.timezone.utc)
FOUR_YEARS = datetime.timedelta(days=4 * 365 + 1)


@dataclass(frozen=True)
class Entry:
    schedule: Any  # a cron string, a tuple of crons (multiple), a timedelta/relativedelta, or a name
    zone: str = "UTC"
    window: str = "4y"
    variant: str = "trigger"  # trigger, interval (data interval), partition, asset-or-time

    @property
    def label(self) -> str:
        crons = " | ".join(self.schedule) if isinstance(self.schedule, tuple) else str(self.schedule)
        return f"{crons} [{self.zone}, {self.window}, {self.variant}]"

    def timetable(self) -> Any:
        return build(self)

    def span(self) -> tuple[datetime.datetime, datetime.timedelta]:
        """(now, look-ahead) of the window."""
        if self.window == "4y":
            return NOW, FOUR_YEARS
        if self.window == "1y":
            return NOW, datetime.timedelta(days=366)
        if self.window == "2d":
            return NOW, datetime.timedelta(days=2)
        moment = next_transition(self.zone, forward=self.window.startswith("spring"))
        days = 3 if self.window.endswith("-week") else 1
        return moment - datetime.timedelta(days=days), datetime.timedelta(days=days + 2)


def next_transition(zone: str, *, forward: bool) -> datetime.datetime:
    """The zone's next offset change after NOW that moves the clock forward (or back), to the hour."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    moment = NOW.replace(minute=0)
    offset = moment.astimezone(tz).utcoffset()
    for _ in range(2 * 366 * 24):
        moment += datetime.timedelta(hours=1)
        current = moment.astimezone(tz).utcoffset()
        assert current is not None
        assert offset is not None
        if current != offset and (current > offset) == forward:
            return moment
        offset = current
    raise AssertionError(f"{zone} has no such transition")


def build(entry: Entry) -> Any:
    from airflow_timetables import (
        CronDataIntervalTimetable,
        CronTriggerTimetable,
        DeltaDataIntervalTimetable,
        DeltaTriggerTimetable,
        MultipleCronTriggerTimetable,
        asset_or_time,
    )

    schedule, zone, variant = entry.schedule, entry.zone, entry.variant
    if isinstance(schedule, tuple):
        return MultipleCronTriggerTimetable(*schedule, timezone=zone)
    if not isinstance(schedule, str):  # a timedelta or relativedelta
        return DeltaTriggerTimetable(schedule) if variant == "trigger" else DeltaDataIntervalTimetable(schedule)
    if variant == "interval":
        return CronDataIntervalTimetable(schedule, timezone=zone)
    if variant == "partition":
        from airflow.sdk import CronPartitionTimetable  # Airflow 3.2+; the corpus leaves it out before

        return CronPartitionTimetable(schedule, timezone=zone)
    if variant == "asset-or-time":
        return asset_or_time(CronTriggerTimetable(schedule, timezone=zone))
    return CronTriggerTimetable(schedule, timezone=zone)


def _corpus() -> list[Entry]:
    from dateutil.relativedelta import MO, relativedelta

    td = datetime.timedelta
    return [
        # The cases the derivation used to get wrong.
        Entry("0 0 29 2 *"),
        Entry(("0 0 29 2 *", "0 12 29 2 *")),
        Entry("@yearly"),
        Entry(("0 3 * * *", "0 15 * * *"), "Europe/Berlin", "1y"),
        Entry("*/5 * * * *", "Europe/Berlin", "autumn"),
        Entry("*/5 * * * *", "Europe/Berlin", "spring"),
        Entry("0 * * * *", "America/New_York", "autumn"),
        Entry("0 * * * *", "America/New_York", "spring"),
        # Cron features: L, W, #, ranges, steps, lists, names, both day fields, presets.
        Entry("0 0 L * *"),
        Entry("0 9 15W * *"),
        Entry("0 9 1W * *", "Europe/Paris"),
        Entry("0 9 * * 1#1", "Europe/Berlin"),
        Entry("0 9 * * 1#1,3#2", "America/Chicago"),
        Entry("0 9 * * L5", "Europe/London"),
        Entry("0 6 1-7 * 1"),
        Entry("0 0 1,15 * 5", "America/Chicago"),
        Entry("30 8-17/3 * * 1-5", "Asia/Kolkata", "1y"),
        Entry("15,45 */2 * * *", "Europe/Berlin", "autumn"),
        Entry("15,45 */2 * * *", "Europe/Berlin", "spring"),
        Entry("0 0 * JAN-MAR MON-FRI"),
        Entry("0 12 */10 * *"),
        Entry("0 4 31 * *", "Europe/Madrid"),
        Entry("0 0 1 */3 *", "America/Denver"),
        Entry("@hourly", "UTC", "2d"),
        Entry("@daily", "Europe/Berlin", "1y"),
        Entry("@weekly", "America/Santiago"),
        Entry("@monthly", "Asia/Beirut"),
        Entry("@quarterly", "Australia/Lord_Howe"),
        Entry("@yearly", "Australia/Sydney"),
        # DST at midnight, 30-minute DST, 2-hour DST, the southern hemisphere, no DST.
        Entry("0 0 * * *", "America/Santiago", "1y"),
        Entry("0 0 * * *", "Asia/Beirut", "1y"),
        Entry("30 23 * * *", "America/Santiago", "1y"),
        Entry("30 1 * * *", "Australia/Lord_Howe", "1y"),
        Entry("0 2 * * *", "Australia/Lord_Howe", "1y"),
        Entry("*/15 * * * *", "Australia/Lord_Howe", "spring"),
        Entry("*/15 * * * *", "Australia/Lord_Howe", "autumn"),
        Entry("0 */2 * * *", "Australia/Lord_Howe", "spring"),
        Entry("*/10 0-22 * * *", "Australia/Lord_Howe", "autumn"),
        Entry("*/30 0-6 * * *", "America/Santiago", "autumn"),
        Entry("*/30 0-6 * * *", "America/Santiago", "spring"),
        Entry("0 1 * * *", "Antarctica/Troll", "1y"),
        Entry("0 3 * * *", "Australia/Sydney", "1y"),
        Entry("30 2 * * *", "Australia/Adelaide", "1y"),
        Entry("45 2 * * *", "Pacific/Chatham", "1y"),
        Entry("0 0 1 * *", "Pacific/Auckland"),
        Entry("0 2 * * 0", "America/Sao_Paulo"),
        Entry("0 3 * * *", "Asia/Tokyo", "1y"),
        Entry("0 3 * * 1-5", "Asia/Kolkata", "1y"),
        Entry("0 3 * * 1-5", "Europe/Berlin", "1y"),
        Entry("0 1 * * *", "Europe/London", "1y"),
        Entry("0 2 * * 0", "America/New_York"),
        Entry("0 * * * 1-5", "America/New_York", "spring-week"),
        Entry("* * * * *", "Europe/Berlin", "autumn"),
        Entry("* * * * *", "Europe/Berlin", "spring"),
        Entry(("0 9 * * 1-5", "0 12 * * 6"), "Europe/Berlin", "1y"),
        Entry(("*/20 * * * *", "5 2 * * *"), "Europe/Berlin", "autumn"),
        Entry(("*/20 * * * *", "5 2 * * *"), "Europe/Berlin", "spring"),
        Entry(("0 0 1 1 *", "0 0 1 7 *"), "America/Santiago"),
        Entry("*/7 */3 15W * *", "Europe/Berlin", "spring-week", "interval"),  # no run in the window
        Entry("0,30 * * * 5#1", "Asia/Beirut", "spring-week"),
        # Data-interval, partition and asset-or-time variants of cron schedules.
        Entry("0 3 * * *", "Europe/Berlin", "1y", "interval"),
        Entry("30 2 * * *", "Europe/Berlin", "spring", "interval"),
        Entry("30 2 * * *", "Europe/Berlin", "autumn", "interval"),
        Entry("*/5 * * * *", "Europe/Berlin", "autumn", "interval"),
        Entry("@monthly", "UTC", "4y", "interval"),
        Entry("0 0 29 2 *", "UTC", "4y", "interval"),
        Entry("0 0 * * 1#2", "Australia/Lord_Howe", "4y", "interval"),
        Entry("15,45 0-3 * * 0", "Europe/Berlin", "4y", "interval"),  # Airflow skips a run on spring nights
        *([Entry("0 6 * * *", "America/New_York", "1y", "partition")] if HAS_PARTITIONS else []),
        Entry("0 * * * *", "UTC", "2d", "asset-or-time"),
        # Delta schedules, trigger and data-interval.
        Entry(td(minutes=90)),
        Entry(td(minutes=90), variant="interval"),
        Entry(td(days=1), variant="interval"),
        Entry(relativedelta(months=1)),
        Entry(relativedelta(months=1), variant="interval"),
        Entry(relativedelta(days=1), variant="interval"),
        Entry(relativedelta(years=1)),
        Entry(relativedelta(weeks=1, weekday=MO)),
    ]


CORPUS: list[Entry] = []


def corpus() -> list[Entry]:
    if not CORPUS:
        # Airflow 2 has no timetable of several crons: its entries are left out there.
        CORPUS.extend(e for e in _corpus() if MultipleCronTriggerTimetable or not isinstance(e.schedule, tuple))
    return CORPUS
