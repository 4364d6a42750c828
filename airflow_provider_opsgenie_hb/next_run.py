"""``interval="next_run"``: every successful run sets its heartbeat's interval to the time
until the next run Airflow schedules, plus the grace, so a missed run alerts within the
grace whatever the gap before it (a weekend, a short month).

The order of one run, shared by the success callback and the listener:

1. the PATCH of the interval, only when it differs from the one the previous run set (this
   process remembers what it set, see :mod:`record`); it may take at most half of the time
   left, so that the ping still has the other half;
2. the ping, whatever the PATCH did (when in doubt, ping).

The ping comes after the PATCH because OpsGenie does not document whether a changed interval
applies to the countdown already running or only from the next ping: a ping right after the
PATCH starts a countdown with the new interval under both readings. A fixed rhythm keeps one
interval, so its steady state is one request per run.

A PATCH that fails leaves the interval the previous run set. When that one is shorter than
the coming gap, OpsGenie may alert before the next run although nothing is wrong: the
warning names the time, and the next run sets the interval again. A heartbeat created by
ensure or sync starts with the longest gap of the schedule, so a key that may only ping
(every PATCH refused) never shortens it.
"""

from __future__ import annotations

import datetime
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_opsgenie_hb import record
from airflow_provider_opsgenie_hb.errors import HeartbeatNotFoundError
from airflow_provider_opsgenie_hb.schedule import NextRun, interval_until_next_run

if TYPE_CHECKING:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

log = logging.getLogger(__name__)

__all__ = ["NextRun", "RunTimes", "describe_failure", "next_run_of", "remember_interval", "set_interval"]


@dataclass(frozen=True)
class RunTimes:
    """When a DAG run was due, and its data interval: read off the run where it is at hand."""

    run_after: datetime.datetime | None
    data_interval: tuple[datetime.datetime, datetime.datetime] | None = None

    @classmethod
    def of(cls, dag_run: Any) -> RunTimes:
        run_after = getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None)
        start = getattr(dag_run, "data_interval_start", None)
        end = getattr(dag_run, "data_interval_end", None)
        return cls(run_after, (start, end) if start is not None and end is not None else None)


def next_run_of(dag: Any, run: RunTimes, *, grace: datetime.timedelta | None) -> NextRun:
    """The interval from ``run`` to the next run of ``dag`` that Airflow schedules."""
    return interval_until_next_run(dag, run_after=run.run_after, data_interval=run.data_interval, grace=grace)


def set_interval(hook: OpsgenieHeartbeatHook, scope: tuple[str, ...], name: str, next_run: NextRun) -> bool:
    """PATCH the interval of ``name`` to ``next_run``'s unless this process set it already; True if it did.

    The PATCH is skipped only when the interval remembered for ``scope`` is the same and was
    set by this run or by the run just before it (so a run handled by another process, or a
    manual run in between, makes this one PATCH again). Errors are the hook's.
    """
    key = record.fact("next-run-interval", *scope)
    wanted = str(next_run.interval)
    remembered = _recall(key, ttl=2 * next_run.interval.seconds)
    anchor = next_run.anchor.isoformat()
    if remembered.get("interval") == wanted and anchor in (remembered.get("anchor"), remembered.get("next")):
        remember_interval(scope, next_run)  # this run holds the chain now: the next one may skip too
        return False
    hook.update_heartbeat(name, interval=next_run.interval.interval, interval_unit=next_run.interval.interval_unit)
    log.info(
        "OpsGenie heartbeat %r: interval set to %s (the next run is due %s)",
        name,
        wanted,
        next_run.next_run_after.isoformat(),
    )
    remember_interval(scope, next_run)
    return True


def remember_interval(scope: tuple[str, ...], next_run: NextRun) -> None:
    """Remember that ``scope``'s heartbeat holds ``next_run``'s interval (set, or created with it)."""
    remembered = {
        "interval": str(next_run.interval),
        "anchor": next_run.anchor.isoformat(),
        "next": next_run.next_run_after.isoformat(),
    }
    record.remember(record.fact("next-run-interval", *scope), json.dumps(remembered, sort_keys=True))


def describe_failure(name: str, next_run: NextRun, exc: BaseException) -> str:
    """The warning for a PATCH that failed: what the heartbeat keeps, and when it may alert early."""
    if isinstance(exc, HeartbeatNotFoundError):
        return (
            f"OpsGenie heartbeat {name!r} does not exist, so its interval could not be set to {next_run.interval}: "
            "OpsGenie accepts pings to it but monitors nothing. Create it (sync, or ensure=True)"
        )
    return (
        f"OpsGenie heartbeat {name!r} was pinged, but its interval could not be set to {next_run.interval} "
        f"(the next run is due {next_run.next_run_after.isoformat()}): {exc}. It keeps the interval the "
        "previous run set; if that is shorter than the time to the next run, OpsGenie alerts early. "
        "The next run sets the interval again"
    )


def _recall(key: str, *, ttl: float) -> dict[str, Any]:
    text = record.recall(key, ttl=ttl)
    if not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
