"""Airflow's own walk of a timetable, and where a cron's longest gap can be: the engine behind
:func:`airflow_provider_opsgenie_hb.core.schedule.longest_gap`.

:class:`Walk` runs stretches of Airflow's ``next_dagrun_info`` walk and keeps the gaps between
their runs. Walking every run of a dense cron for four years would be slow, so
:class:`CronGaps` reads a cron for its structure first: a cron fires at the same times on every
day it fires, so its wall-clock gaps change only with the days it skips (weekends, month
lengths, leap years) and around the zone's offset changes. croniter finds those places, and
Airflow's timetable is asked for the runs around each of them; every gap measured is a gap of
Airflow's walk.
"""

from __future__ import annotations

import bisect
import datetime
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pendulum

if TYPE_CHECKING:
    from airflow_provider_opsgenie_hb.core.schedule import ScheduleIntervalError

_DAY = 1440  # minutes


def _no_interval(reason: str) -> ScheduleIntervalError:
    """``ScheduleIntervalError`` for ``reason``, asking for an explicit interval (imported here, when
    raised: the schedule module, which defines it, imports this one)."""
    from airflow_provider_opsgenie_hb.core.schedule import EXPLICIT_HINT, ScheduleIntervalError

    return ScheduleIntervalError(f"{reason}. {EXPLICIT_HINT}")


class Walk:
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
                raise _no_interval(f"Airflow cannot schedule its next run: {exc}") from None
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
                    raise _no_interval(f"its timetable does not move past {previous}")
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
            raise _no_interval(f"cannot derive a heartbeat interval: {reason}: Airflow schedules no run {after}")
        if not self.gaps:
            raise _no_interval("cannot derive a heartbeat interval: fewer than two runs")
        return max(self.gaps)


@dataclass
class _Cron:
    times: list[int]  # minutes of the day it fires at, sorted
    fires_on: Callable[[int], bool] | None  # by date ordinal; None: ask croniter day by day
    day_fields: str
    every_hour: bool


def read_cron(expression: str) -> _Cron | None:
    from croniter import croniter

    try:
        cron = croniter(expression)
    except Exception as exc:  # croniter raises several error types
        raise _no_interval(f"cannot read cron expression {expression!r}: {exc}") from None
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


class CronGaps:
    """The longest gap of one or more crons in one zone, probed where it can be."""

    def __init__(self, walk: Walk, crons: list[tuple[str, Any]]) -> None:
        self.walk = walk
        self.tz: Any = crons[0][1]
        self.crons = [c for c in (read_cron(expression) for expression, _ in crons) if c is not None]
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
            raise _no_interval("cannot derive a heartbeat interval: the cron never fires")
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
