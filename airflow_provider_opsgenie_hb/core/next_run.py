"""``interval="next_run"``: every successful run sets its heartbeat's interval to the time
until the next run Airflow schedules, plus the grace, so a missed run alerts within the
grace whatever the gap before it (a weekend, a short month).

The order of one run's requests, shared by the success callback and the listener.
OpsGenie does not document whether a changed interval applies to the countdown already
running (deadline = last ping + new interval) or only from the next ping, so each order is
chosen to be right under both readings:

- the interval stays (this process set it for the run before): **ping** - one request;
- it grows (from one this process set for the run before): **PATCH, ping** - the PATCH only
  moves a deadline later, and the ping starts a countdown with the new interval;
- it shrinks, or what it was is not known here: **ping, PATCH, ping** - the first ping
  restarts the countdown, so the shorter interval cannot put the deadline in the past; the
  second arms it where the new interval only counts from the next ping.

A run that is not on the timetable (a manual run at another time) or whose next run is
already due (a run that overran, a catch-up run) only pings: a newer run sets the interval.
When the PATCH fails the run has been pinged (or still is), and the heartbeat keeps the
interval the previous run set: if that is shorter than the coming gap OpsGenie alerts
early, which the warning says. ``sync`` lengthens such an interval (see :mod:`sync`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_opsgenie_hb.api.errors import HeartbeatError, HeartbeatNotFoundError
from airflow_provider_opsgenie_hb.core import record
from airflow_provider_opsgenie_hb.core.schedule import NextRun, interval_until_next_run
from airflow_provider_opsgenie_hb.core.waiting import Call

if TYPE_CHECKING:
    import datetime

    from airflow_provider_opsgenie_hb.core.service import HeartbeatService

log = logging.getLogger(__name__)

__all__ = ["IntervalOutcome", "NextRun", "next_run_of", "ping_and_set_interval", "remember_interval"]


def next_run_of(dag: Any, dag_run: Any, *, grace: datetime.timedelta | None) -> NextRun:
    """The interval from ``dag_run`` (when it was due) to the next run of ``dag``.

    A manual run given a logical date (``airflow dags test DAG 2026-12-04T03:00:00+00:00``, or a
    trigger with a logical date) is due at that date: when the timetable schedules a run then, it
    stands for that scheduled run and sets the interval as it would.
    """
    start, end = getattr(dag_run, "data_interval_start", None), getattr(dag_run, "data_interval_end", None)
    # Airflow 2's runs have no run_after: the scheduler starts a run once its data interval ends.
    run_after = getattr(dag_run, "run_after", None) or end or getattr(dag_run, "logical_date", None)
    run_type = getattr(dag_run, "run_type", None)
    run_type = None if run_type is None else str(getattr(run_type, "value", run_type))
    logical_date = getattr(dag_run, "logical_date", None)
    if run_type == "manual" and logical_date is not None:
        run_after = logical_date
    return interval_until_next_run(
        dag,
        run_after=run_after,
        data_interval=(start, end) if start is not None and end is not None else None,
        run_type=run_type,
        grace=grace,
    )


@dataclass
class IntervalOutcome:
    """What became of the interval: ``error`` (the warning to log) when it was not set."""

    error: BaseException | None = None
    #: the PATCH found no heartbeat (so the pings reached nothing either)
    missing: bool = False


def ping_and_set_interval(
    hook: HeartbeatService,
    scope: tuple[str, ...],
    wanted: NextRun,
    ping: Callable[[], None],
    *,
    patch_seconds: float,
) -> IntervalOutcome:
    """Ping, and set the interval to ``wanted`` in the order that is safe (see the module).

    ``ping`` sends one ping and raises when it fails (that error is the caller's); the PATCH
    may take at most ``patch_seconds`` and never stops a ping.
    """
    name = scope[-1]
    key = record.fact("next-run-interval", *scope)
    remembered = _recall_before_ping(key, ttl=2 * wanted.interval.seconds)
    anchor = wanted.anchor.isoformat()
    follows = anchor in (remembered.get("anchor"), remembered.get("next"))  # this process set it for the run before
    outcome = IntervalOutcome()
    if not wanted.sets_interval or remembered.get("anchor", "") > anchor:
        # A manual run, or one that a newer run overtook: the scheduled runs' interval stands.
        log.info(
            "OpsGenie heartbeat %r: this run does not set the interval (only a run on the timetable whose next run "
            "is still ahead does: a manual run at another time, or one a newer run overtook, only pings)",
            name,
        )
        ping()
        return outcome
    if follows and remembered.get("interval") == str(wanted.interval):
        ping()
        remember_interval(scope, wanted)  # this run holds the chain now: the next one may skip too
        return outcome
    grows = follows and wanted.interval.seconds > int(remembered.get("seconds", 0))
    if not grows:
        ping()
    try:
        with hook.deadline(patch_seconds):
            hook.update_heartbeat(name, interval=wanted.interval.interval, interval_unit=wanted.interval.interval_unit)
    except Exception as exc:  # never in the way of the ping
        outcome.missing = isinstance(exc, HeartbeatNotFoundError)
        outcome.error = _failure(name, wanted, exc)
        if grows:
            ping()
        return outcome
    log.info(
        "OpsGenie heartbeat %r: interval set to %s (next run due %s)", name, wanted.interval, wanted.next_run_after
    )
    ping()
    remember_interval(scope, wanted)
    return outcome


def remember_interval(scope: tuple[str, ...], next_run: NextRun) -> None:
    """Remember that ``scope``'s heartbeat holds ``next_run``'s interval (set, or created with it)."""
    remembered = {
        "interval": str(next_run.interval),
        "seconds": next_run.interval.seconds,
        "anchor": next_run.anchor.isoformat(),
        "next": next_run.next_run_after.isoformat(),
    }
    record.remember(record.fact("next-run-interval", *scope), json.dumps(remembered, sort_keys=True))


def _failure(name: str, next_run: NextRun, exc: BaseException) -> Exception:
    """The warning for a PATCH that failed: what the heartbeat keeps, and when it may alert early."""
    if isinstance(exc, HeartbeatNotFoundError):
        return HeartbeatNotFoundError(
            f"OpsGenie heartbeat {name!r} does not exist, so its interval could not be set to {next_run.interval}: "
            "OpsGenie accepts pings to it but monitors nothing. Create it (sync, or ensure=True)"
        )
    return HeartbeatError(
        f"OpsGenie heartbeat {name!r}: its interval could not be set to {next_run.interval} (the next run is "
        f"due {next_run.next_run_after.isoformat()}): {exc}. It keeps the interval the previous run set; if "
        "that is shorter than the time to the next run, OpsGenie alerts early. The next run (or sync) sets "
        "it again"
    )


#: seconds the record may take to say what the run before set; after that the ping goes out without it
#: (in the order that is safe when it is not known): a slow record never holds back a ping
RECALL_WAIT = 1.0


def _recall_before_ping(key: str, *, ttl: float) -> dict[str, Any]:
    """What the record says the run before set, or nothing when it does not say so within :data:`RECALL_WAIT`."""
    call = Call(lambda: _recall(key, ttl=ttl), "record")
    if not call.wait(RECALL_WAIT):
        log.info("The record did not answer within %gs: the interval is set as if nothing were known", RECALL_WAIT)
        return {}
    try:
        return call.result(0, TimeoutError)
    except Exception:  # never in the way of the ping
        return {}


def _recall(key: str, *, ttl: float) -> dict[str, Any]:
    """The interval remembered for ``key``; nothing when the entry is missing, old, or not in this shape."""
    text = record.recall(key, ttl=ttl)
    if not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    shaped = isinstance(found, dict) and all(isinstance(found.get(k), str) for k in ("anchor", "next", "interval"))
    return found if shaped and type(found.get("seconds")) is int else {}
