"""A heartbeat interval derived from a DAG's schedule.

The interval must cover the longest silence a healthy DAG can have: the longest gap
between two consecutive scheduled runs, plus a grace period. The gap is what Airflow's own
scheduler-side timetable produces: the ``run_after`` of each ``next_dagrun_info`` over a
look-ahead of four years (a whole leap-year cycle, and every daylight-saving transition of
the zone four times over).

Walking every run of a dense cron for four years would be slow, so cron schedules are read
for their structure first, and Airflow's timetable is asked only for the runs where the
longest gap can be (:mod:`airflow_provider_opsgenie_hb.core.cron_gaps`, which also holds
the walk itself); every gap measured is a gap of Airflow's walk.
"""

from __future__ import annotations

import datetime
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import pendulum

from airflow_provider_opsgenie_hb.api.schema import UNIT_SECONDS
from airflow_provider_opsgenie_hb.core.cron_gaps import CronGaps, Walk, read_cron
from airflow_provider_opsgenie_hb.version_compat import (
    core_timetable,
    cron_timetable_parts,
    events_timetable_from_fields,
    timetable_encoder,
)

DEFAULT_MAX_GRACE = datetime.timedelta(hours=1)
#: How far ahead the runs are walked: four years hold a leap day and every transition.
LOOKAHEAD = datetime.timedelta(days=4 * 365 + 1)
#: A timetable with more runs than this in the look-ahead (and no cron to read) is too dense to walk.
MAX_WALKED_RUNS = 5000
#: What a ``ScheduleIntervalError`` asks for when the schedule gives no interval.
EXPLICIT_HINT = "Give one explicitly, e.g. interval=25, interval_unit='hours'"
_NO_RHYTHM = {
    # Checked along the class's MRO, most specific first.
    "PartitionedAtRuntime": "its runs are triggered with partition keys, not by the clock",
    "NullTimetable": "it has no schedule (schedule=None), so it runs only when triggered",
    "OnceTimetable": "it runs once (@once)",
    "ContinuousTimetable": "it runs continuously (@continuous)",
    "AssetTriggeredTimetable": "it is triggered by assets, not by the clock",
    "DatasetTriggeredTimetable": "it is triggered by assets, not by the clock",  # Airflow 2's name
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
        walk = Walk(timetable, pendulum.now("UTC"), pendulum.now("UTC") + LOOKAHEAD)
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
        return core_timetable(timetable)
    except Exception as exc:  # an unregistered custom timetable, for one
        events = events_timetable_from_fields(timetable)
        if events is not None:
            return events
        raise ScheduleIntervalError(f"Airflow cannot read its timetable ({type(timetable).__name__}): {exc}") from None


def _cache_key(timetable: Any) -> str | None:
    """How Airflow serializes one of its own timetables (None for a plugin's): equal keys, equal runs."""
    encode = timetable_encoder()
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
    either = ("AssetOrTimeSchedule", "DatasetOrTimeSchedule")  # Airflow 2 says datasets
    if _is_shipped(core) and type(core).__name__ in either and inner is not None:
        return _longest_gap(inner, start, lookahead)  # the clock part bounds the silence
    for cls in type(core).__mro__ if _is_shipped(core) else ():
        if cls.__name__ in _NO_RHYTHM:
            reason = _NO_RHYTHM[cls.__name__]
            raise ScheduleIntervalError(f"cannot derive a heartbeat interval: {reason}. {EXPLICIT_HINT}")
    walk = Walk(core, start, start + lookahead)
    if _is_shipped(core):
        crons = _crons(core)
        if crons is not None:
            return CronGaps(walk, crons).longest()
        if _fixed_delta(core):
            # A fixed span added to UTC times: every step is the same; three runs show it.
            walk.probe(start, runs=3)
            return walk.longest()
    walk.probe(start, runs=MAX_WALKED_RUNS + 1)
    if walk.walked > MAX_WALKED_RUNS:
        raise ScheduleIntervalError(
            f"cannot derive a heartbeat interval: its timetable ({type(core).__name__}) has more than "
            f"{MAX_WALKED_RUNS} runs in {lookahead.days} days to walk. {EXPLICIT_HINT}"
        )
    return walk.longest()


def _crons(core: Any) -> list[tuple[str, Any]] | None:
    """(expression, timezone) of each cron of a cron timetable, or None for other kinds."""
    from airflow.timetables._cron import CronMixin

    members = cron_timetable_parts(core)
    parts = list(members) if members is not None else [core]
    if not parts or not all(isinstance(p, CronMixin) for p in parts):
        return None
    crons = [(str(p._expression), p._timezone) for p in parts]
    return crons if all(read_cron(expression) is not None for expression, _ in crons) else None


def _fixed_delta(core: Any) -> bool:
    from airflow.timetables._delta import DeltaMixin

    if not isinstance(core, DeltaMixin):
        return False
    delta: Any = core._delta
    if isinstance(delta, datetime.timedelta):
        if delta <= datetime.timedelta(0):
            raise ScheduleIntervalError(f"the schedule's delta must be positive, got {delta}. {EXPLICIT_HINT}")
        return True
    # A relativedelta of days, hours... only (no months, years or absolute fields) is a fixed span.
    relative_only = not (delta.years or delta.months or delta.leapdays or delta.weekday is not None)
    absolute = (delta.year, delta.month, delta.day, delta.hour, delta.minute, delta.second, delta.microsecond)
    return relative_only and all(v is None for v in absolute)
