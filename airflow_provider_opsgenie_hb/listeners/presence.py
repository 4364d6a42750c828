"""Which running schedulers have the listener on, so that a component with it off still pings.

Airflow reads ``[opsgenie_heartbeat]`` in each process, so two schedulers can disagree about
``listener_enabled`` (a rolling restart, one host's own config file). A run is marked a success
by whichever scheduler handles it; without this, the runs that a scheduler with the listener
off completes would never be pinged, and their heartbeats would alert although the runs
happened.

So a scheduler with the listener on records itself in the Airflow Variable
``opsgenie_heartbeat.listener.<its job id>``: its host, its start and its listener settings,
written as soon as its job starts and again every :data:`REFRESH_SECONDS`. A component with
the listener off (a scheduler, or an API server where a run is marked a success) that sees a
tagged DAG's run succeed reads the records of the schedulers running now (a live
``SchedulerJob`` in the metadata database, of the record's host and start) and, when one has
the listener on, pings with that scheduler's settings. Once no running scheduler has it on,
nothing more is pinged: turning the listener off everywhere still turns it off.

Everything here runs in a scheduler or an API server, which reach the metadata database.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from airflow_provider_opsgenie_hb.settings import ListenerSettings, interval_mode, listener_settings, run_types
from airflow_provider_opsgenie_hb.version_compat import set_variable

log = logging.getLogger(__name__)

PREFIX = "opsgenie_heartbeat.listener."
#: a scheduler writes its record again after this long, in case it was cleared
REFRESH_SECONDS = 60.0
#: a scheduler whose record could not be written tries again after this long
RETRY_SECONDS = 15.0
#: a component with the listener off reads the records again after this long
CACHE_SECONDS = 30.0
SCHEDULER_JOB = "SchedulerJob"

#: how long a scheduler's job may take to get its id and type after ``on_starting``
IDENTITY_WAIT_SECONDS = 600.0
#: how far a record's start may be from its job's (the database may round it)
START_TOLERANCE_SECONDS = 1.0

_cached: tuple[float, ListenerSettings] | None = None
_read_lock = threading.Lock()
_stopping = threading.Event()
_recorders: list[threading.Thread] = []


def _start_afresh_in_child() -> None:
    """A forked child (LocalExecutor forks its workers from the scheduler, and they fork the tasks) keeps
    no lock a parent's thread may have held at the fork, and no recording thread of the parent's."""
    global _cached, _read_lock, _stopping
    _cached, _read_lock, _stopping = None, threading.Lock(), threading.Event()
    _recorders.clear()


os.register_at_fork(after_in_child=_start_afresh_in_child)


@dataclass(frozen=True)
class SchedulerJobIdentity:
    """Which scheduler job a record is of: a record of another host or start is not this job's."""

    job_id: int
    hostname: str
    started: datetime.datetime


def identity_of(component: Any) -> SchedulerJobIdentity | None:
    """The identity of ``component`` (the job ``on_starting`` was given) once it is a scheduler's job with
    an id; None before. Read from the object's state, never loaded from the database."""
    state = getattr(component, "__dict__", {})
    job_id, hostname, started = state.get("id"), state.get("hostname"), state.get("start_date")
    if state.get("job_type") != SCHEDULER_JOB or not isinstance(job_id, int):
        return None
    if not isinstance(hostname, str) or not isinstance(started, datetime.datetime):
        return None
    return SchedulerJobIdentity(job_id, hostname, started)


def keep_recorded(component: Any) -> threading.Thread | None:
    """From ``on_starting``: when ``component`` is a job and this process has the listener on, record it
    (once it is a scheduler's job) and again every :data:`REFRESH_SECONDS`, in a background thread."""
    if not hasattr(component, "job_type") or not listener_settings().enabled:
        return None
    thread = threading.Thread(target=_keep_recorded, args=(component,), name="opsgenie-heartbeat-presence", daemon=True)
    thread.start()
    _recorders.append(thread)
    return thread


def stop_recording(timeout: float = 5.0) -> None:
    """Stop this process's recording threads (the process's end stops them too)."""
    _stopping.set()
    for thread in _recorders:
        thread.join(timeout)
    _recorders.clear()
    _stopping.clear()


def _keep_recorded(component: Any) -> None:
    deadline = time.monotonic() + IDENTITY_WAIT_SECONDS
    identity = identity_of(component)
    while identity is None:
        job_type = getattr(component, "__dict__", {}).get("job_type")
        if (job_type is not None and job_type != SCHEDULER_JOB) or time.monotonic() > deadline:
            return  # a DAG processor's or a triggerer's job: the listener's runs are not marked there
        if _stopping.wait(0.5):
            return
        identity = identity_of(component)
    while True:
        written = False
        try:
            settings = listener_settings()
        except ValueError:
            log.warning("OpsGenie heartbeat listener settings are not valid: not recorded", exc_info=True)
        else:
            written = record(identity, settings) if settings.enabled else True
        if _stopping.wait(REFRESH_SECONDS if written else RETRY_SECONDS):
            return


def record(identity: SchedulerJobIdentity, settings: ListenerSettings) -> bool:
    """Write that the scheduler job ``identity`` has the listener on, with its settings; clear the records of
    schedulers that have stopped. Never raises (the listener's pings do not depend on it): False on failure."""
    try:
        from airflow.jobs.job import Job, JobState
        from airflow.models import Variable
        from airflow.utils.session import create_session
        from sqlalchemy import select

        value = json.dumps(
            {
                "hostname": identity.hostname,
                "started": identity.started.isoformat(),
                "conn_id": settings.conn_id,
                "name_template": settings.name_template,
                "run_types": sorted(settings.run_types),
                "interval_mode": settings.interval_mode,
            }
        )
        set_variable(
            f"{PREFIX}{identity.job_id}",
            value,
            description="A scheduler with the OpsGenie heartbeat listener on (its settings); "
            "components with it off ping with these while that scheduler runs.",
        )
        with create_session() as session:
            running = set(
                session.scalars(select(Job.id).where(Job.job_type == SCHEDULER_JOB, Job.state == JobState.RUNNING))
            )
            for variable in session.scalars(select(Variable).where(Variable.key.startswith(PREFIX, autoescape=True))):
                suffix = variable.key[len(PREFIX) :]
                if suffix.isdigit() and int(suffix) not in running:
                    session.delete(variable)
        return True
    except Exception:
        log.warning("Could not record that this scheduler has the OpsGenie heartbeat listener on", exc_info=True)
        return False


def listener_on_elsewhere() -> ListenerSettings | None:
    """The settings of a running scheduler that has the listener on, or None when none has.

    Read at most every :data:`CACHE_SECONDS`. Raises when the metadata database cannot be read
    (the caller decides: when in doubt, ping) unless an earlier read found a scheduler with it on:
    then its settings, as they were.
    """
    global _cached
    with _read_lock:
        if _cached is not None and time.monotonic() - _cached[0] < CACHE_SECONDS:
            return _cached[1]
        try:
            found = _read()
        except Exception:
            if _cached is None:
                raise
            log.warning(
                "Which schedulers have the OpsGenie heartbeat listener on could not be read: "
                "using what was read before",
                exc_info=True,
            )
            return _cached[1]
        # Only a scheduler found is kept for a while: one that starts is seen at the next run.
        _cached = (time.monotonic(), found) if found is not None else None
        return found


def forget() -> None:
    """Drop what this process remembers (the next read goes to the database)."""
    global _cached
    with _read_lock:
        _cached = None


def _read() -> ListenerSettings | None:
    from airflow.jobs.job import Job, JobState
    from airflow.models import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        jobs = session.scalars(select(Job).where(Job.job_type == SCHEDULER_JOB, Job.state == JobState.RUNNING)).all()
        live = sorted((job for job in jobs if job.is_alive()), key=lambda job: job.id, reverse=True)
        if not live:
            return None
        keys = {f"{PREFIX}{job.id}": job for job in live}
        values = {v.key: v.val for v in session.scalars(select(Variable).where(Variable.key.in_(list(keys))))}
    own = listener_settings()
    for key, job in keys.items():
        settings = _settings(values.get(key), job, own)
        if settings is not None:
            return settings
    return None


def _settings(raw: str | None, job: Any, own: ListenerSettings) -> ListenerSettings | None:
    """A record's settings, with this component's queue and time limits; None for none, a bad one, or one
    of another host or start than ``job`` (left by an earlier job of that id, or copied from elsewhere)."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
        started = datetime.datetime.fromisoformat(data["started"])
        if data["hostname"] != job.hostname or job.start_date is None:
            return None
        if abs((started - job.start_date).total_seconds()) > START_TOLERANCE_SECONDS:
            return None
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
