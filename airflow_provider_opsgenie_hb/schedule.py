"""A heartbeat interval derived from a DAG's schedule.

The interval must cover the longest silence a healthy DAG can have: for a cron
schedule, the longest gap between two consecutive runs over the next year (weekends,
month ends and daylight-saving shifts included), plus a grace period.
"""

from __future__ import annotations

import datetime
import itertools
import math
from dataclasses import dataclass
from typing import Any

import pendulum

DEFAULT_MAX_GRACE = datetime.timedelta(hours=1)
_YEAR = datetime.timedelta(days=366)


class ScheduleIntervalError(ValueError):
    """The schedule gives no regular rhythm to derive a heartbeat interval from."""


@dataclass(frozen=True)
class HeartbeatInterval:
    """An interval in OpsGenie's terms: ``interval`` ``interval_unit``."""

    interval: int
    interval_unit: str

    @classmethod
    def from_timedelta(cls, span: datetime.timedelta) -> HeartbeatInterval:
        """In the largest unit that states it exactly (rounded up to whole minutes)."""
        minutes = max(1, math.ceil(span.total_seconds() / 60))
        if minutes % 1440 == 0:
            return cls(minutes // 1440, "days")
        if minutes % 60 == 0:
            return cls(minutes // 60, "hours")
        return cls(minutes, "minutes")

    def __str__(self) -> str:
        return f"{self.interval} {self.interval_unit}"


def default_grace(gap: datetime.timedelta) -> datetime.timedelta:
    """One more interval, or an hour, whichever is shorter: alert when a run is that late."""
    return min(gap, DEFAULT_MAX_GRACE)


def interval_for_dag(
    dag: Any, *, grace: datetime.timedelta | None = None, now: datetime.datetime | None = None
) -> HeartbeatInterval:
    """The heartbeat interval for ``dag`` (anything with a ``timetable`` and a ``dag_id``)."""
    try:
        gap = longest_gap(dag.timetable, now=now)
    except ScheduleIntervalError as exc:
        raise ScheduleIntervalError(f"DAG {dag.dag_id!r}: {exc}") from None
    return HeartbeatInterval.from_timedelta(gap + (default_grace(gap) if grace is None else grace))


def longest_gap(timetable: Any, *, now: datetime.datetime | None = None) -> datetime.timedelta:
    """The longest time between two consecutive scheduled runs, over the next year."""
    start = pendulum.instance(now) if now is not None else pendulum.now("UTC")
    kind = type(timetable).__name__
    if hasattr(timetable, "timetables"):  # MultipleCronTriggerTimetable
        return _union_longest_gap(timetable.timetables, start)
    if kind == "AssetOrTimeSchedule" and getattr(timetable, "timetable", None) is not None:
        return longest_gap(timetable.timetable, now=start)
    expression = _attr(timetable, "expression")
    if expression is not None:
        return _cron_longest_gap(str(expression), _attr(timetable, "timezone") or "UTC", start)
    delta = _attr(timetable, "delta")
    if delta is not None:
        return _delta_longest_gap(delta, start)
    reasons = {
        "NullTimetable": "it has no schedule (schedule=None), so it runs only when triggered",
        "OnceTimetable": "it runs once (@once)",
        "ContinuousTimetable": "it runs continuously (@continuous)",
        "EventsTimetable": "it runs on a list of events, not a rhythm",
    }
    reason = reasons.get(kind, f"its schedule ({kind}) has no fixed rhythm, e.g. it is triggered by assets")
    raise ScheduleIntervalError(
        f"cannot derive a heartbeat interval: {reason}. Give one explicitly, e.g. interval=25, interval_unit='hours'"
    )


def _union_longest_gap(timetables: list[Any], start: pendulum.DateTime, max_runs: int = 20_000) -> datetime.timedelta:
    """Several crons together: walk their merged run times over the next year. A union
    too dense to walk is never silent longer than its most regular member, so that
    member's longest gap is a safe (never too short) answer."""
    import heapq

    from croniter import croniter

    def runs(timetable: Any) -> Any:
        tz = _attr(timetable, "timezone") or "UTC"
        zone = pendulum.timezone(tz) if isinstance(tz, str) else tz
        return croniter(str(_attr(timetable, "expression")), start.in_timezone(zone)).all_next(datetime.datetime)

    end = start + _YEAR
    longest = datetime.timedelta(0)
    previous: datetime.datetime | None = None
    for count, moment in enumerate(heapq.merge(*(runs(t) for t in timetables))):
        if count >= max_runs:
            return min(longest_gap(t, now=start) for t in timetables)
        if previous is not None:
            longest = max(longest, moment - previous)
        if moment > end:
            return longest
        previous = moment
    return longest


def _attr(timetable: Any, name: str) -> Any:
    """Task-SDK timetables expose ``expression``; scheduler-side ones ``_expression``."""
    value = getattr(timetable, name, None)
    return value if value is not None else getattr(timetable, f"_{name}", None)


def _delta_longest_gap(delta: Any, start: pendulum.DateTime) -> datetime.timedelta:
    if isinstance(delta, datetime.timedelta):
        if delta <= datetime.timedelta(0):
            raise ScheduleIntervalError(f"the schedule's delta must be positive, got {delta}")
        return delta
    # relativedelta (e.g. months=1): the longest step over the next year.
    longest = datetime.timedelta(0)
    moment: datetime.datetime = start
    while moment < start + _YEAR:
        following = moment + delta
        longest = max(longest, following - moment)
        moment = following
    return longest


def _cron_longest_gap(expression: str, timezone: Any, start: pendulum.DateTime) -> datetime.timedelta:
    from croniter import croniter

    tz = pendulum.timezone(timezone) if isinstance(timezone, str) else timezone
    try:
        # croniter resolves presets such as @hourly into their five fields.
        parts = [str(part) for part in croniter(expression).expressions]
        fields, _ = croniter.expand(" ".join(parts))
    except Exception as exc:  # croniter raises several error types
        raise ScheduleIntervalError(f"cannot read cron expression {expression!r}: {exc}") from None
    if len(fields) != 5:
        raise ScheduleIntervalError(f"cron expression {expression!r} does not have five fields")
    times = sorted(h * 60 + m for h in _values(fields[1], 24) for m in _values(fields[0], 60))
    # The days the schedule fires on, from croniter itself (day-of-month, month, weekday, L, #...).
    day_expression = "0 0 " + " ".join(parts[2:])
    local_start = start.in_timezone(tz).naive()
    days_iter = croniter(day_expression, local_start - datetime.timedelta(days=1))
    days: list[datetime.date] = []
    while not days or days[-1] <= (local_start + _YEAR).date():
        days.append(days_iter.get_next(datetime.datetime).date())
    # Away from daylight-saving shifts a day's own gaps are the same every day.
    longest = datetime.timedelta(minutes=max((b - a for a, b in itertools.pairwise(times)), default=0))
    for day, next_day in itertools.pairwise(days):
        if _midnight(tz, day).utcoffset() != _midnight(tz, next_day).utcoffset():
            fires = [_local(tz, day, minute) for minute in times]
            longest = max(longest, *(b - a for a, b in itertools.pairwise(fires)), datetime.timedelta(0))
        longest = max(longest, _local(tz, next_day, times[0]) - _local(tz, day, times[-1]))
    return datetime.timedelta(seconds=longest.total_seconds())


def _midnight(tz: Any, day: datetime.date) -> pendulum.DateTime:
    return _local(tz, day, 0)


def _local(tz: Any, day: datetime.date, minute: int) -> pendulum.DateTime:
    hour, minute = divmod(minute, 60)
    return pendulum.datetime(day.year, day.month, day.day, hour, minute, tz=tz)


def _values(field: list[Any], size: int) -> list[int]:
    return list(range(size)) if field == ["*"] else [int(v) for v in field]
