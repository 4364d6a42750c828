"""A heartbeat interval derived from a DAG's schedule.

The interval must cover the longest silence a healthy DAG can have: the longest gap
between two consecutive scheduled runs, plus a grace period. The gap is what Airflow's own
scheduler-side timetable produces: the ``run_after`` of each ``next_dagrun_info`` over a
look-ahead of four years (a whole leap-year cycle, and every daylight-saving transition of
the zone four times over).

Walking every run of a dense cron for four years would be slow, so cron schedules are read
for their structure first: a cron fires at the same times on every day it fires, so its
wall-clock gaps change only with the days it skips (weekends, month lengths, leap years)
and around the zone's offset changes. croniter finds those places, and Airflow's timetable
is asked for the runs around each of them; every gap measured is a gap of Airflow's walk.
"""

from __future__ import annotations

import bisect
import datetime
import importlib
import itertools
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pendulum

from airflow_provider_opsgenie_hb.api.schema import UNIT_SECONDS

DEFAULT_MAX_GRACE = datetime.timedelta(hours=1)
#: How far ahead the runs are walked: four years hold a leap day and every transition.
LOOKAHEAD = datetime.timedelta(days=4 * 365 + 1)
#: A timetable with more runs than this in the look-ahead (and no cron to read) is too dense to walk.
MAX_WALKED_RUNS = 5000
_EXPLICIT = "Give one explicitly, e.g. interval=25, interval_unit='hours'"
_DAY = 1440  # minutes
_NO_RHYTHM = {
    # Checked along the class's MRO, most specific first.
    "PartitionedAtRuntime": "its runs are triggered with partition keys, not by the clock",
    "NullTimetable": "it has no schedule (schedule=None), so it runs only when triggered",
    "OnceTimetable": "it runs once (@once)",
    "ContinuousTimetable": "it runs continuously (@continuous)",
    "AssetTriggeredTimetable": "it is triggered by assets, not by the clock",
}


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

    @property
    def seconds(self) -> int:
        return self.interval * UNIT_SECONDS[self.interval_unit]

    def __str__(self) -> str:
        unit = self.interval_unit[:-1] if self.interval == 1 else self.interval_unit
        return f"{self.interval} {unit}"


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
    return interval_for_gap(gap, grace)


def interval_for_gap(gap: datetime.timedelta, grace: datetime.timedelta | None = None) -> HeartbeatInterval:
    """``gap`` plus ``grace`` (default :func:`default_grace`), rounded up: never below the gap."""
    extra = default_grace(gap) if grace is None else max(grace, datetime.timedelta(0))
    return HeartbeatInterval.from_timedelta(gap + extra)


def longest_gap(
    timetable: Any, *, now: datetime.datetime | None = None, lookahead: datetime.timedelta = LOOKAHEAD
) -> datetime.timedelta:
    """The longest time between two consecutive runs that Airflow schedules from ``now``.

    ``timetable`` is a DAG's timetable (Task SDK or scheduler side). ``now`` defaults to the
    start of the current UTC day, so that DAGs with the same schedule share one answer.
    """
    start = pendulum.now("UTC").start_of("day") if now is None else pendulum.instance(now).in_timezone("UTC")
    key = _cache_key(timetable)
    if key is None:
        return _longest_gap(scheduler_timetable(timetable), start, lookahead)
    return _cached_gap(key, timetable, start, lookahead)


@dataclass(frozen=True)
class NextRun:
    """The interval that lasts from this run until the next one Airflow schedules, plus grace."""

    interval: HeartbeatInterval
    #: when this run was due (its ``run_after``; the time of the ping when that is later)
    anchor: pendulum.DateTime
    #: when Airflow's timetable schedules the next run after this one
    next_run_after: pendulum.DateTime
    #: this run is one the timetable schedules (not a manual run at another time) and the next
    #: one is still ahead: only such a run sets the interval; the others only ping
    sets_interval: bool = True


def next_run_after(dag: Any, moment: datetime.datetime) -> pendulum.DateTime | None:
    """The first run Airflow's timetable schedules strictly after ``moment`` (None: there is none).

    Walked as the scheduler walks it (catch-up on, within the DAG's start and end dates), from
    one longest gap before ``moment``, so data-interval timetables give the run whose interval
    ends next, not the one that starts next.
    """
    from airflow.timetables.base import DataInterval, TimeRestriction

    at = pendulum.instance(moment).in_timezone("UTC")
    timetable = scheduler_timetable(dag.timetable)
    try:
        lookback = longest_gap(dag.timetable)
    except ScheduleIntervalError:
        return None
    start, end = getattr(dag, "start_date", None), getattr(dag, "end_date", None)
    earliest = at - lookback - datetime.timedelta(minutes=1)
    if start is not None:
        earliest = max(earliest, pendulum.instance(start))
    restriction = TimeRestriction(
        earliest=earliest, latest=pendulum.instance(end) if end is not None else None, catchup=True
    )
    last: Any = None
    for _ in range(MAX_WALKED_RUNS):
        try:
            info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        except Exception as exc:
            raise ScheduleIntervalError(f"DAG {dag.dag_id!r}: Airflow cannot schedule its next run: {exc}") from None
        if info is None:
            return None
        run_after: pendulum.DateTime = pendulum.instance(info.run_after).in_timezone("UTC")
        if run_after > at:
            return run_after
        last = info.data_interval or DataInterval.exact(info.run_after)
    return None


def interval_until_next_run(
    dag: Any,
    *,
    run_after: datetime.datetime | None,
    data_interval: tuple[datetime.datetime, datetime.datetime] | None = None,
    run_type: str | None = None,
    grace: datetime.timedelta | None = None,
    now: datetime.datetime | None = None,
) -> NextRun:
    """The heartbeat interval from this run to the next scheduled one (``interval="next_run"``).

    The next run is what Airflow's timetable schedules after this run's data interval, as
    the scheduler asks it (for a timetable without data intervals, after ``run_after``). The
    interval is counted from when this run was due, not from when it finished, so a fixed
    rhythm keeps one interval whatever each run takes. Raises ``ScheduleIntervalError`` when
    Airflow schedules no next run.
    """
    from airflow.timetables.base import DataInterval, TimeRestriction

    moment = pendulum.now("UTC") if now is None else pendulum.instance(now).in_timezone("UTC")
    due = moment if run_after is None else min(pendulum.instance(run_after).in_timezone("UTC"), moment)
    last = DataInterval.exact(due)
    if data_interval is not None and data_interval[0] is not None and data_interval[1] is not None:
        last = DataInterval(pendulum.instance(data_interval[0]), pendulum.instance(data_interval[1]))
    start, end = getattr(dag, "start_date", None), getattr(dag, "end_date", None)
    restriction = TimeRestriction(
        earliest=pendulum.instance(start) if start else None,
        latest=pendulum.instance(end) if end else None,
        catchup=True,
    )
    try:
        info = scheduler_timetable(dag.timetable).next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction
        )
    except Exception as exc:
        raise ScheduleIntervalError(f"DAG {dag.dag_id!r}: Airflow cannot schedule its next run: {exc}") from None
    if info is None:
        raise ScheduleIntervalError(f"DAG {dag.dag_id!r}: Airflow schedules no run after {due.isoformat()}")
    following = pendulum.instance(info.run_after).in_timezone("UTC")
    if following <= due:
        raise ScheduleIntervalError(f"DAG {dag.dag_id!r}: its timetable does not move past {due.isoformat()}")
    # A scheduled run is on the timetable; another (a manual run) is when the timetable has a
    # run at that very time (a cron; delta timetables count from their last scheduled run).
    on_the_timetable = run_type == "scheduled" or (
        run_type in (None, "manual") and next_run_after(dag, due - datetime.timedelta(seconds=1)) == due
    )
    gap = following - due
    extra = default_grace(gap) if grace is None else max(grace, datetime.timedelta(0))
    interval = HeartbeatInterval.from_timedelta(gap + extra)
    return NextRun(interval, due, following, sets_interval=on_the_timetable and following > moment)


def shortest_interval(dag: Any, *, grace: datetime.timedelta | None = None, runs: int = 400) -> HeartbeatInterval:
    """The shortest interval ``interval="next_run"`` sets for ``dag``: its shortest gap plus grace,
    over the next ``runs`` runs Airflow schedules (sync's test for a schedule that changed)."""
    timetable = scheduler_timetable(dag.timetable)
    key = _timetable_key(timetable, runs)
    known = _SHORTEST_GAPS.get(key) if key else None
    if known is not None and time.monotonic() - known[0] < _SHORTEST_GAP_REUSE:
        gap = known[1]
    else:
        walk = _Walk(timetable, pendulum.now("UTC"), pendulum.now("UTC") + LOOKAHEAD)
        walk.probe(walk.start, runs=runs)
        gap = min(walk.gaps) if walk.gaps else None
        if key:
            _SHORTEST_GAPS[key] = (time.monotonic(), gap)
    if gap is None:
        raise ScheduleIntervalError(f"DAG {dag.dag_id!r}: fewer than two runs ahead")
    return interval_for_gap(gap, grace)


#: timetable key -> (when measured, its shortest gap): a folder of DAGs on a few schedules
#: (sync, the Heartbeats page) walks each schedule once
_SHORTEST_GAPS: dict[str, tuple[float, datetime.timedelta | None]] = {}
_SHORTEST_GAP_REUSE = 600.0  # seconds


def _timetable_key(timetable: Any, runs: int) -> str | None:
    """What Airflow itself stores to rebuild the timetable (its class and ``serialize()``); None
    when that cannot be had."""
    try:
        return json.dumps(
            [type(timetable).__module__, type(timetable).__qualname__, timetable.serialize(), runs],
            sort_keys=True,
            default=str,
        )
    except Exception:
        return None


def scheduler_timetable(timetable: Any) -> Any:
    """The scheduler-side (``airflow.timetables``) timetable Airflow uses for ``timetable``."""
    try:
        # Airflow 3.2+: DAG files hold Task-SDK timetables, which the scheduler converts by
        # serializing them. Before 3.2 DAGs hold scheduler-side timetables already.
        from airflow.serialization.encoders import coerce_to_core_timetable
    except ImportError:
        return timetable
    try:
        return coerce_to_core_timetable(timetable)
    except Exception as exc:  # an unregistered custom timetable, for one
        if type(timetable).__name__ == "EventsTimetable" and hasattr(timetable, "event_dates"):
            # Airflow 3.3's decoder reads a ``_summary`` that its encoder for the Task-SDK
            # EventsTimetable does not write: build the scheduler-side one from its fields.
            from airflow.timetables.events import EventsTimetable

            return EventsTimetable(
                event_dates=list(timetable.event_dates),
                restrict_to_events=timetable.restrict_to_events,
                description=timetable.description,
            )
        raise ScheduleIntervalError(f"Airflow cannot read its timetable ({type(timetable).__name__}): {exc}") from None


def _cache_key(timetable: Any) -> str | None:
    """How Airflow serializes one of its own timetables (None for a plugin's): equal keys, equal runs."""
    encode: Any = None
    # Airflow 3.2+ has the encoder in ``encoders``; before, in ``serialized_objects``.
    for module in ("airflow.serialization.encoders", "airflow.serialization.serialized_objects"):
        try:
            encode = getattr(importlib.import_module(module), "encode_timetable", None)
        except ImportError:
            continue
        if encode is not None:
            break
    if encode is None:
        return None
    try:
        encoded = encode(timetable)
    except Exception:
        return None
    if not str(encoded.get("__type", "")).startswith("airflow.timetables."):
        return None
    return json.dumps(encoded, sort_keys=True, default=str)


_GAPS: dict[tuple[str, pendulum.DateTime, datetime.timedelta], datetime.timedelta | str] = {}


def _cached_gap(
    key: str, timetable: Any, start: pendulum.DateTime, lookahead: datetime.timedelta
) -> datetime.timedelta:
    """Same schedule, same start: same answer (errors included)."""
    slot = (key, start, lookahead)
    if slot not in _GAPS:
        if len(_GAPS) > 4096:
            _GAPS.clear()
        try:
            _GAPS[slot] = _longest_gap(scheduler_timetable(timetable), start, lookahead)
        except ScheduleIntervalError as exc:
            _GAPS[slot] = str(exc)
    found = _GAPS[slot]
    if isinstance(found, str):
        raise ScheduleIntervalError(found)
    return found


def _is_shipped(core: Any) -> bool:
    """One of Airflow's own timetables (a plugin's subclass may schedule differently)."""
    return type(core).__module__.startswith("airflow.timetables.")


def _longest_gap(core: Any, start: pendulum.DateTime, lookahead: datetime.timedelta) -> datetime.timedelta:
    inner = getattr(core, "timetable", None)
    if _is_shipped(core) and type(core).__name__ == "AssetOrTimeSchedule" and inner is not None:
        return _longest_gap(inner, start, lookahead)  # the clock part bounds the silence
    for cls in type(core).__mro__ if _is_shipped(core) else ():
        if cls.__name__ in _NO_RHYTHM:
            raise ScheduleIntervalError(f"cannot derive a heartbeat interval: {_NO_RHYTHM[cls.__name__]}. {_EXPLICIT}")
    walk = _Walk(core, start, start + lookahead)
    if _is_shipped(core):
        crons = _crons(core)
        if crons is not None:
            return _CronGaps(walk, crons).longest()
        if _fixed_delta(core):
            # A fixed span added to UTC times: every step is the same; three runs show it.
            walk.probe(start, runs=3)
            return walk.longest()
    walk.probe(start, runs=MAX_WALKED_RUNS + 1)
    if walk.walked > MAX_WALKED_RUNS:
        raise ScheduleIntervalError(
            f"cannot derive a heartbeat interval: its timetable ({type(core).__name__}) has more than "
            f"{MAX_WALKED_RUNS} runs in {lookahead.days} days to walk. {_EXPLICIT}"
        )
    return walk.longest()


def _crons(core: Any) -> list[tuple[str, Any]] | None:
    """(expression, timezone) of each cron of a cron timetable, or None for other kinds."""
    from airflow.timetables._cron import CronMixin

    # The scheduler-side MultipleCronTriggerTimetable keeps its crons in ``_timetables``
    # (up to 3.3 at least); accept a public ``timetables`` too, should it be renamed.
    members = getattr(core, "_timetables", None) or getattr(core, "timetables", None)
    parts = list(members) if members is not None else [core]
    if not parts or not all(isinstance(p, CronMixin) for p in parts):
        return None
    crons = [(str(p._expression), p._timezone) for p in parts]
    return crons if all(_read_cron(expression) is not None for expression, _ in crons) else None


def _fixed_delta(core: Any) -> bool:
    from airflow.timetables._delta import DeltaMixin

    if not isinstance(core, DeltaMixin):
        return False
    delta: Any = core._delta
    if isinstance(delta, datetime.timedelta):
        if delta <= datetime.timedelta(0):
            raise ScheduleIntervalError(f"the schedule's delta must be positive, got {delta}. {_EXPLICIT}")
        return True
    # A relativedelta of days, hours... only (no months, years or absolute fields) is a fixed span.
    relative_only = not (delta.years or delta.months or delta.leapdays or delta.weekday is not None)
    absolute = (delta.year, delta.month, delta.day, delta.hour, delta.minute, delta.second, delta.microsecond)
    return relative_only and all(v is None for v in absolute)


class _Walk:
    """Stretches of Airflow's own walk of a timetable, and the gaps between their runs.

    Every stretch starts with ``earliest`` at or after the walk's start, so its runs are
    runs of the full walk from the start; gaps past the first run after ``end`` are not
    part of the look-ahead and are not measured.
    """

    def __init__(self, timetable: Any, start: pendulum.DateTime, end: pendulum.DateTime) -> None:
        self.timetable = timetable
        self.start = start
        self.end = end
        self.gaps: list[datetime.timedelta] = []
        self.walked = 0
        self.last_run: pendulum.DateTime | None = None
        self.ended = False

    def probe(self, earliest: datetime.datetime, until: datetime.datetime | None = None, runs: int = 2000) -> None:
        """Walk from ``earliest`` until a run at or after ``until`` (default: past the end), or ``runs`` runs."""
        from airflow.timetables.base import DataInterval, TimeRestriction

        earliest = max(pendulum.instance(earliest), self.start)
        if earliest > self.end:
            return
        restriction = TimeRestriction(earliest=earliest, latest=None, catchup=True)
        last: Any = None
        previous: pendulum.DateTime | None = None
        for _ in range(runs):
            try:
                info = self.timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
            except Exception as exc:  # e.g. croniter finding no date for a cron that never fires
                raise ScheduleIntervalError(f"Airflow cannot schedule its next run: {exc}. {_EXPLICIT}") from None
            if info is None:
                self.ended = True
                return
            run_after = pendulum.instance(info.run_after)
            if self.last_run is None:
                # The look-ahead holds one gap at least, even when the first run is past it.
                self.end = max(self.end, run_after)
            self.walked += 1
            self.last_run = run_after
            if previous is not None:
                if run_after <= previous:
                    raise ScheduleIntervalError(f"its timetable does not move past {previous}. {_EXPLICIT}")
                self.gaps.append(datetime.timedelta(seconds=run_after.timestamp() - previous.timestamp()))
            if run_after > self.end or (until is not None and run_after >= until):
                return
            previous = run_after
            last = info.data_interval or DataInterval.exact(run_after)

    def longest_yet(self) -> datetime.timedelta:
        return max(self.gaps, default=datetime.timedelta(0))

    def longest(self) -> datetime.timedelta:
        if self.ended and (self.last_run is None or self.last_run <= self.end):
            after = f"after {self.last_run.isoformat()}" if self.last_run is not None else "at all"
            kind = type(self.timetable).__name__
            reason = "it runs on a list of events, not a rhythm" if kind == "EventsTimetable" else f"{kind} stops"
            raise ScheduleIntervalError(
                f"cannot derive a heartbeat interval: {reason}: Airflow schedules no run {after}. {_EXPLICIT}"
            )
        if not self.gaps:
            raise ScheduleIntervalError(f"cannot derive a heartbeat interval: fewer than two runs. {_EXPLICIT}")
        return max(self.gaps)


@dataclass
class _Cron:
    times: list[int]  # minutes of the day it fires at, sorted
    fires_on: Callable[[int], bool] | None  # by date ordinal; None: ask croniter day by day
    day_fields: str
    every_hour: bool


def _read_cron(expression: str) -> _Cron | None:
    from croniter import croniter

    try:
        cron = croniter(expression)
    except Exception as exc:  # croniter raises several error types
        raise ScheduleIntervalError(f"cannot read cron expression {expression!r}: {exc}. {_EXPLICIT}") from None
    fields = cron.expanded
    if len(fields) != 5:
        return None  # seconds: walked run by run
    minutes = range(60) if fields[0] == ["*"] else [int(v) for v in fields[0]]
    hours = range(24) if fields[1] == ["*"] else [int(v) for v in fields[1]]
    times = sorted(h * 60 + m for h in hours for m in minutes)
    day_fields = " ".join(cron.expressions[2:5])
    # Airflow runs a cron that fires every hour on elapsed time across DST changes, the
    # others on wall-clock time (``airflow.timetables._cron._covers_every_hour``).
    return _Cron(times, _day_predicate(fields, cron), day_fields, every_hour=fields[1] == ["*"])


def _day_predicate(fields: list[list[Any]], cron: Any) -> Callable[[int], bool] | None:
    """Whether a cron fires on a date, from croniter's expanded fields; None (ask croniter) for W."""
    nth: dict[int, set[Any]] = cron.nth_weekday_of_month or {}
    if "w" in cron.expressions[2] or (nth and fields[2] != ["*"]):
        return None
    dom, months, dow = fields[2], fields[3], fields[4]
    days = {v for v in dom if v != "l"}
    month_set = None if months == ["*"] else {int(v) for v in months}
    weekdays = None if dow == ["*"] else {int(v) for v in dow}  # cron: 0 is Sunday

    def last_in_month(ordinal: int, span: int) -> bool:
        return datetime.date.fromordinal(ordinal).month != datetime.date.fromordinal(ordinal + span).month

    def by_weekday(ordinal: int, date: datetime.date) -> bool:
        weekday = date.isoweekday() % 7
        if weekdays is None or weekday not in weekdays:
            return False
        wanted = nth.get(weekday)  # 2#3: the third Monday; L5: the last Friday
        return not wanted or (date.day + 6) // 7 in wanted or ("l" in wanted and last_in_month(ordinal, 7))

    def fires(ordinal: int) -> bool:
        date = datetime.date.fromordinal(ordinal)
        if month_set is not None and date.month not in month_set:
            return False
        if dom == ["*"]:
            return weekdays is None or by_weekday(ordinal, date)
        by_day = date.day in days or ("l" in dom and last_in_month(ordinal, 1))
        # croniter (and so Airflow): with both day fields set, either one fires.
        return by_day or by_weekday(ordinal, date)

    return fires


class _CronGaps:
    """The longest gap of one or more crons in one zone, probed where it can be."""

    def __init__(self, walk: _Walk, crons: list[tuple[str, Any]]) -> None:
        self.walk = walk
        self.tz: Any = crons[0][1]
        self.crons = [c for c in (_read_cron(expression) for expression, _ in crons) if c is not None]
        # An interval timetable's first run is the end of its first interval: start one cron tick earlier.
        self.lead = 2 if type(walk.timetable).__name__ == "CronDataIntervalTimetable" else 1

    def longest(self) -> datetime.timedelta:
        walk = self.walk
        end = walk.end
        walk.probe(walk.start, walk.start, runs=1)  # the first run
        if walk.last_run is None or walk.last_run > end:
            walk.probe(walk.start, runs=2)  # past the look-ahead already: its gap to the next
            return walk.longest()
        # Only gaps between the first run and the first one after the look-ahead count.
        self.low, self.high = self._naive(walk.last_run), self._naive(walk.end)
        self._fire_days(self.low // _DAY - 2, self._naive(walk.end) // _DAY + 1)
        self.known = self.days[0] * _DAY  # wall-clock ticks before are not known
        transitions = _transitions(self.tz, walk.start.timestamp() - 86400, self._last_tick_ts() + 86400)
        self._probe_longest_naive_gap(transitions)
        if not all(c.every_hour for c in self.crons):
            self._probe_transitions(transitions)
        # On elapsed time, a step is the wall-clock gap from where the run is: never longer
        # than the longest wall-clock gap, which is probed above.
        return walk.longest()

    # -- wall-clock ticks, as minutes since 0001-01-01 00:00 local time

    def _naive(self, moment: datetime.datetime) -> int:
        local = pendulum.instance(moment).in_timezone(self.tz)
        return local.date().toordinal() * _DAY + local.hour * 60 + local.minute

    def _utc(self, naive: int, offset: int | None = None) -> pendulum.DateTime:
        day, minute = divmod(naive, _DAY)
        date = datetime.date.fromordinal(day)
        if offset is None:
            local = pendulum.datetime(date.year, date.month, date.day, minute // 60, minute % 60, tz=self.tz)
            return local.in_timezone("UTC")
        moment = datetime.datetime(date.year, date.month, date.day, minute // 60, minute % 60)
        return pendulum.instance(moment - datetime.timedelta(seconds=offset), tz="UTC")

    def _fire_days(self, first: int, last: int) -> None:
        """Firing days from ``first`` until the first one after ``last`` (ordinals), with their times."""
        fired: dict[int, int] = {}  # day: which crons fire on it, as bits
        limit = last + 12 * 366  # a cron that fires once in years still shows within 12
        for bit, cron in enumerate(self.crons):
            for day in self._days_of(cron, first, last, limit):
                fired[day] = fired.get(day, 0) | 1 << bit
        after = [d for d in fired if d > last]
        if not after:
            raise ScheduleIntervalError(f"cannot derive a heartbeat interval: the cron never fires. {_EXPLICIT}")
        self.days = sorted(d for d in fired if d <= min(after))
        merged: dict[int, list[int]] = {}
        for crons in set(fired.values()):
            merged[crons] = sorted({t for bit, c in enumerate(self.crons) if crons >> bit & 1 for t in c.times})
        self.times = {d: merged[fired[d]] for d in self.days}

    @staticmethod
    def _days_of(cron: _Cron, first: int, last: int, limit: int) -> Iterable[int]:
        if cron.fires_on is not None:
            day = first
            while day <= limit:
                if cron.fires_on(day):
                    yield day
                    if day > last:
                        return
                day += 1
            return
        from croniter import croniter

        begin = datetime.datetime.combine(datetime.date.fromordinal(first - 1), datetime.time())
        days = croniter(f"0 0 {cron.day_fields}", begin)
        while True:
            day = days.get_next(datetime.datetime).date().toordinal()
            if day > limit:
                return
            yield day
            if day > last:
                return

    def _last_tick_ts(self) -> float:
        return self._utc(self.days[-1] * _DAY + self.times[self.days[-1]][-1]).timestamp()

    def _ticks_before(self, naive: int, count: int) -> int | None:
        """The ``count``-th wall-clock tick before ``naive``, None if it is before the first day known."""
        index = bisect.bisect_right(self.days, naive // _DAY) - 1
        while index >= 0:
            day = self.days[index]
            for minute in reversed(self.times[day]):
                tick = day * _DAY + minute
                if tick < naive:
                    count -= 1
                    if count == 0:
                        return tick
            index -= 1
        return None

    def _probe_from(self, tick: int, until: pendulum.DateTime, offset: int | None = None) -> None:
        """Walk Airflow's runs from the one at wall-clock ``tick`` until one at or after ``until``.

        The walk starts a second after the tick before (two before, for an interval timetable,
        whose first run is the end of its first interval): Airflow aligns an ``earliest`` that
        falls on a run differently near DST changes, so the walk never starts on one.
        """
        begin = self._ticks_before(tick, self.lead)
        if begin is None or begin < self.known:
            self.walk.probe(self.walk.start, until)
        else:
            self.walk.probe(self._utc(begin, offset) + datetime.timedelta(seconds=1), until)

    def _ticks_between(self, low: int, high: int) -> tuple[int, ...]:
        """The wall-clock ticks from ``low`` to ``high``, and the first one after."""
        ticks: list[int] = []
        index = bisect.bisect_left(self.days, low // _DAY)
        while index < len(self.days):
            base = self.days[index] * _DAY
            times = self.times[self.days[index]]
            begin = bisect.bisect_left(times, low - base)
            end = bisect.bisect_right(times, high - base)
            ticks += [base + m for m in times[begin:end]]
            if end < len(times):
                return (*ticks, base + times[end])
            index += 1
        return tuple(ticks)

    def _next_ticks(self, naive: int, count: int) -> list[int]:
        """The ``count`` wall-clock ticks after ``naive`` (fewer past the last day known)."""
        found: list[int] = []
        while len(found) < count:
            following = self._ticks_between(naive + 1, naive)  # nothing between: the first after
            if not following:
                break
            naive = following[0]
            found.append(naive)
        return found

    def _probe_longest_naive_gap(self, transitions: list[tuple[float, int, int]]) -> None:
        """Find the longest wall-clock gap, preferably away from offset changes, and walk it."""
        near = {_local_day(self.tz, ts) + shift for ts, _, _ in transitions for shift in (-1, 0, 1)}
        best: tuple[int, bool, int] | None = None  # gap, far from transitions, the tick it starts at
        within: dict[int, tuple[int, int]] = {}  # per list of times: longest gap in a day, where
        for previous, day in itertools.pairwise(self.days):
            times = self.times[day]
            if id(times) not in within:
                steps = [b - a for a, b in itertools.pairwise(times)] or [0]
                within[id(times)] = (max(steps), times[steps.index(max(steps))])
            gap_in, at = within[id(times)]
            candidates = [(gap_in, day not in near, day * _DAY + at)] if gap_in else []
            tick = previous * _DAY + self.times[previous][-1]
            candidates.append((day * _DAY + times[0] - tick, previous not in near and day not in near, tick))
            for candidate in candidates:
                if self.low <= candidate[2] <= self.high and (best is None or candidate[:2] > best[:2]):
                    best = candidate
        if best is not None:
            gap, _, tick = best
            self._probe_from(tick, self._utc(tick + gap))

    def _probe_transitions(self, transitions: list[tuple[float, int, int]]) -> None:
        """Walk the runs around each offset change (one of each kind: the rest repeat it)."""
        seen: set[tuple[Any, ...]] = set()
        for moment, before, after in transitions:
            shift = abs(after - before) // 60
            local = self._naive(pendulum.from_timestamp(moment - 1)) + 1  # wall clock just before it
            # Clocks going forward skip the wall-clock times [local, local + shift); going back
            # they repeat [local - shift, local). Runs there land in the next ``shift`` after it.
            region = local if after > before else local - shift
            first = self._ticks_before(region, 1)
            if first is None or first < self.low:
                first = self.low
            ticks = self._ticks_between(first, local + shift)  # and the first tick after
            if self.lead > 1 and ticks:
                # An interval timetable may skip the first ticks after a change: keep them in view.
                ticks = (*ticks, *self._next_ticks(ticks[-1], 3))
            signature = (before, after, tuple(t - local for t in ticks))
            # A trigger timetable runs every tick after the change: no gap here is longer than
            # the wall-clock span from the tick before to the first tick after, plus the shift.
            bound = datetime.timedelta(minutes=ticks[-1] - first + shift) if ticks and self.lead == 1 else None
            if first > self.low and (signature in seen or (bound is not None and bound <= self.walk.longest_yet())):
                continue
            seen.add(signature)
            until = pendulum.from_timestamp(moment) + datetime.timedelta(seconds=abs(after - before))
            self._probe_from(first, until, before)


def _local_day(tz: Any, ts: float) -> int:
    return datetime.datetime.fromtimestamp(ts, tz).date().toordinal()


def _offset(tz: Any, ts: float) -> int:
    offset = datetime.datetime.fromtimestamp(ts, tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _transitions(tz: Any, begin: float, end: float) -> list[tuple[float, int, int]]:
    """The zone's offset changes between two timestamps: (moment, offset before, offset after)."""
    found: list[tuple[float, int, int]] = []
    previous_ts, previous = begin, _offset(tz, begin)
    ts = begin
    while ts < end:
        ts = min(ts + 86400, end)
        current = _offset(tz, ts)
        if current != previous:
            low, high = previous_ts, ts  # offset(low) == previous, offset(high) == current
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if _offset(tz, middle) == previous else (low, middle)
            found.append((high, previous, current))
        previous_ts, previous = ts, current
    return found


# ---------------------------------------------------------------------------- README table

#: The README's "Choosing the interval" rows: (schedule as written in a DAG, time zone, note).
README_EXAMPLES: list[tuple[str, str, str]] = [
    ("@hourly", "UTC", ""),
    ("*/5 * * * *", "UTC", ""),
    ("*/5 * * * *", "Europe/Berlin", "every hour: Airflow runs it on elapsed time across DST"),
    ("0 * * * *", "America/New_York", "every hour: elapsed time"),
    ("0 3 * * *", "UTC", ""),
    ("0 3 * * *", "Europe/Berlin", "the autumn DST night is 25 hours long"),
    ("0 3 * * 1-5", "UTC", "the weekend"),
    ("@weekly", "UTC", ""),
    ("@monthly", "UTC", "the longest month"),
    ("@yearly", "UTC", "a leap year"),
    ("0 0 29 2 *", "UTC", "leap day to leap day"),
    ("MultipleCronTriggerTimetable('0 3 * * *', '0 15 * * *')", "Europe/Berlin", "15:00 to 03:00, autumn DST night"),
    ("timedelta(minutes=90)", "UTC", ""),
    ("relativedelta(months=1)", "UTC", "the longest month"),
]

README_START = "<!-- interval-table:start (generated: python -m airflow_provider_opsgenie_hb.core.schedule) -->"
README_END = "<!-- interval-table:end -->"
#: The table's look-ahead starts here, so that it does not change from day to day.
README_NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def _trigger_timetable(name: str) -> Any:
    try:  # Airflow 3.2+: DAG files use the Task-SDK timetables
        module = importlib.import_module("airflow.sdk.definitions.timetables.trigger")
    except ImportError:  # before 3.2 they use the scheduler-side ones
        module = importlib.import_module("airflow.timetables.trigger")
    return getattr(module, name)


def _example_timetable(schedule: str, zone: str) -> Any:
    from airflow.sdk import DAG

    if schedule.startswith("MultipleCronTriggerTimetable("):
        crons = [part.strip(" '") for part in schedule[len("MultipleCronTriggerTimetable(") : -1].split(",")]
        return _trigger_timetable("MultipleCronTriggerTimetable")(*crons, timezone=zone)
    if schedule.startswith(("timedelta(", "relativedelta(")):
        name, _, args = schedule[:-1].partition("(")
        unit, _, amount = args.partition("=")
        factory: Any = (
            datetime.timedelta
            if name == "timedelta"
            else importlib.import_module("dateutil.relativedelta").relativedelta
        )
        return DAG("example", schedule=factory(**{unit: int(amount)})).timetable
    return _trigger_timetable("CronTriggerTimetable")(schedule, timezone=zone)


def _describe(span: datetime.timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    for size, unit in ((1440, "day"), (60, "hour"), (1, "minute")):
        if minutes % size == 0:
            count = minutes // size
            return f"{count:,} {unit}{'s' if count != 1 else ''}"
    return str(span)  # pragma: no cover


def readme_table() -> str:
    """The README's interval table, computed from :data:`README_EXAMPLES`."""
    rows = ["| schedule | time zone | longest gap | + grace | interval |", "|---|---|---|---|---|"]
    for schedule, zone, note in README_EXAMPLES:
        gap = longest_gap(_example_timetable(schedule, zone), now=README_NOW)
        interval = interval_for_gap(gap)
        grace = _describe(default_grace(gap))
        shown = f"{_describe(gap)} ({note})" if note else _describe(gap)
        rows.append(f"| `{schedule}` | {zone} | {shown} | {grace} | `{interval}` |")
    rows.append(
        "| `@once`, `None`, `@continuous`, assets, events | - | - | - | error: give `interval`, `interval_unit` |"
    )
    return "\n".join([README_START, *rows, README_END])


if __name__ == "__main__":
    print(readme_table())
