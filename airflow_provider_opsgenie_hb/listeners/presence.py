"""Which running schedulers have the listener on, so that a component with it off still pings.

Airflow reads ``[opsgenie_heartbeat]`` in each process, so two schedulers can disagree about
``listener_enabled`` (a rolling restart, one host's own config file). A run is marked a success
by whichever scheduler handles it; without this, the runs that a scheduler with the listener
off completes would never be pinged, and their heartbeats would alert although the runs
happened.

So a scheduler with the listener on records itself in the Airflow Variable
``opsgenie_heartbeat.listener.<its job id>``: its listener settings. It writes that from its
first DAG run event, and again every :data:`REFRESH_SECONDS`. A component with the listener
off (a scheduler, or an API server where a run is marked a success) that sees a tagged DAG's
run succeed reads the records of the schedulers that are running now (a live ``SchedulerJob``
in the metadata database) and, when one has the listener on, pings with that scheduler's
settings. Once no running scheduler has it on, nothing more is pinged: turning the listener
off everywhere still turns it off.

Everything here runs in a scheduler or an API server, which reach the metadata database.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from airflow_provider_opsgenie_hb.settings import ListenerSettings, interval_mode, run_types

log = logging.getLogger(__name__)

PREFIX = "opsgenie_heartbeat.listener."
#: a scheduler writes its record again after this long, in case it was cleared
REFRESH_SECONDS = 600.0
#: a component with the listener off reads the records again after this long
CACHE_SECONDS = 30.0
SCHEDULER_JOB = "SchedulerJob"

_written: dict[int, float] = {}
_write_lock = threading.Lock()
_cached: tuple[float, ListenerSettings | None] | None = None
_read_lock = threading.Lock()


def scheduler_job_id(component: Any) -> int | None:
    """The job id of ``component`` (what ``on_starting`` was given) when it is a scheduler's job."""
    try:
        if getattr(component, "job_type", None) == SCHEDULER_JOB:
            job_id = getattr(component, "id", None)
            return job_id if isinstance(job_id, int) else None
    except Exception:  # an expired or detached ORM object: not ours to load
        log.debug("the component's job could not be read", exc_info=True)
    return None


def record_due(job_id: int) -> bool:
    """True (once per :data:`REFRESH_SECONDS`) when this scheduler should write its record."""
    now = time.monotonic()
    with _write_lock:
        if now - _written.get(job_id, -REFRESH_SECONDS) < REFRESH_SECONDS:
            return False
        _written[job_id] = now
        return True


def record(job_id: int, settings: ListenerSettings) -> None:
    """Write that scheduler ``job_id`` has the listener on, with its settings; clear the records of
    schedulers that have stopped. Never raises (the listener's pings do not depend on it)."""
    try:
        from airflow.jobs.job import Job, JobState
        from airflow.models import Variable
        from airflow.utils.session import create_session
        from sqlalchemy import select

        value = json.dumps(
            {
                "conn_id": settings.conn_id,
                "name_template": settings.name_template,
                "run_types": sorted(settings.run_types),
                "interval_mode": settings.interval_mode,
            }
        )
        Variable.set(
            f"{PREFIX}{job_id}",
            value,
            description="A scheduler with the OpsGenie heartbeat listener on (its settings); "
            "components with it off ping with these while that scheduler runs.",
        )
        with create_session() as session:
            running = set(
                session.scalars(select(Job.id).where(Job.job_type == SCHEDULER_JOB, Job.state == JobState.RUNNING))
            )
            for variable in session.scalars(select(Variable).where(Variable.key.like(f"{PREFIX}%"))):
                suffix = variable.key[len(PREFIX) :]
                if suffix.isdigit() and int(suffix) not in running:
                    session.delete(variable)
    except Exception:
        log.warning("Could not record that this scheduler has the OpsGenie heartbeat listener on", exc_info=True)
        with _write_lock:
            _written.pop(job_id, None)


def listener_on_elsewhere() -> ListenerSettings | None:
    """The settings of a running scheduler that has the listener on, or None when none has.

    Read at most every :data:`CACHE_SECONDS`. Raises when the metadata database cannot be read
    (the caller decides: when in doubt, ping).
    """
    global _cached
    with _read_lock:
        if _cached is not None and time.monotonic() - _cached[0] < CACHE_SECONDS:
            return _cached[1]
        found = _read()
        _cached = (time.monotonic(), found)
        return found


def forget() -> None:
    """Drop what this process remembers (the next read and write go to the database)."""
    global _cached
    with _read_lock:
        _cached = None
    with _write_lock:
        _written.clear()


def _read() -> ListenerSettings | None:
    from airflow.jobs.job import Job, JobState
    from airflow.models import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_opsgenie_hb.settings import listener_settings

    with create_session() as session:
        jobs = session.scalars(select(Job).where(Job.job_type == SCHEDULER_JOB, Job.state == JobState.RUNNING)).all()
        live = sorted((job for job in jobs if job.is_alive()), key=lambda job: job.id, reverse=True)
        if not live:
            return None
        keys = [f"{PREFIX}{job.id}" for job in live]
        values = {v.key: v.val for v in session.scalars(select(Variable).where(Variable.key.in_(keys)))}
    own = listener_settings()
    for key in keys:
        settings = _settings(values.get(key), own)
        if settings is not None:
            return settings
    return None


def _settings(raw: str | None, own: ListenerSettings) -> ListenerSettings | None:
    """A record's settings, with this component's queue and time limits; None for none or a bad one."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return ListenerSettings(
            enabled=True,
            conn_id=str(data["conn_id"]),
            name_template=str(data["name_template"]),
            run_types=run_types(",".join(data["run_types"])),
            queue_size=own.queue_size,
            ping_deadline=own.ping_deadline,
            flush_seconds=own.flush_seconds,
            interval_mode=interval_mode(str(data["interval_mode"])),
        )
    except (ValueError, KeyError, TypeError):
        log.warning("A scheduler's OpsGenie heartbeat listener record is not readable: ignored")
        return None
