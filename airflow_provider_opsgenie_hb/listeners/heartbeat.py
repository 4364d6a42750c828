"""Zero-code pings: a listener that pings the heartbeat of every DAG tagged ``opsgenie-heartbeat``.

Airflow calls ``on_dag_run_success`` inside the scheduler (and the API server, when a run
is marked successful there), so the listener must never block: it only puts the ping on a
bounded queue, which one background thread drains. A full queue drops the ping with a
warning; when the component stops (or its process exits) the queue is flushed for at
most ``shutdown_flush_seconds``.

Configured in the ``[opsgenie_heartbeat]`` section: ``listener_enabled``, ``conn_id``,
``name_template``, ``run_types``, ``queue_size``, ``ping_deadline_seconds``,
``shutdown_flush_seconds``, ``interval_mode`` (``next_run``: each run sets the interval to the
time until the next run before its ping, like the callback's ``interval="next_run"``).

With ``listener_enabled = False`` here while a running scheduler has it on, a tagged DAG's
successful run is still pinged, with that scheduler's settings (see :mod:`.presence`), so that
settings that differ between components do not leave runs unpinged.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import hookimpl

from airflow_provider_opsgenie_hb.core.declaration import (
    DAG_TAG,
    NEXT_RUN,
    render_for_dag,
    run_type_of,
    tag_declaration,
)
from airflow_provider_opsgenie_hb.listeners import presence
from airflow_provider_opsgenie_hb.settings import ListenerSettings, listener_settings

if TYPE_CHECKING:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

log = logging.getLogger(__name__)

__all__ = ["DAG_TAG", "HeartbeatPinger", "heartbeat_listener", "pinged_by_listener"]


@dataclass(frozen=True)
class _Ping:
    """One successful run to report; with ``interval_mode = next_run``, its DAG and times too."""

    #: None: the listener is off here; the thread asks whether a running scheduler has it on
    name: str | None
    dag: Any = None
    #: the run itself, as it was when it succeeded (``interval_mode = next_run``: the
    #: interval is set from when it was due, its data interval and its type)
    run: Any = None


class HeartbeatPinger:
    """A bounded queue of heartbeat names and the one thread that pings them."""

    def __init__(self, conn_id: str, *, maxsize: int, ping_deadline: float) -> None:
        self.conn_id = conn_id
        self.ping_deadline = ping_deadline
        self._queue: queue.Queue[_Ping] = queue.Queue(maxsize=maxsize)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, name: str | None, *, dag: Any = None, run: Any = None) -> bool:
        """Queue a ping without waiting; False (and a warning) when the queue is full.

        Given the DAG and the run's times, the interval is set to the next run before the ping.
        Without a name (the listener is off here), the ping goes out with the settings of a running
        scheduler that has it on, if one has.
        """
        self._start()
        try:
            self._queue.put_nowait(_Ping(name, dag, run))
        except queue.Full:
            log.warning(
                "OpsGenie heartbeat %r not pinged: the listener's queue is full (%d waiting); "
                "OpsGenie may be slow or unreachable",
                name or getattr(dag, "dag_id", "?"),
                self._queue.maxsize,
            )
            return False
        return True

    def flush(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for queued pings to go out; True if all did."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._queue.unfinished_tasks:
            log.warning("%d OpsGenie heartbeat ping(s) were still queued at shutdown", self._queue.unfinished_tasks)
            return False
        return True

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="opsgenie-heartbeat-pinger", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        hook: OpsgenieHeartbeatHook | None = None
        while True:
            item = self._queue.get()
            try:
                hook = self._ping(hook, item)
            except Exception:  # one bad item (a template that fails to render) must not stop the others
                log.exception("OpsGenie heartbeat listener: a ping failed unexpectedly")
                hook = None
            finally:
                self._queue.task_done()

    def _ping(self, hook: OpsgenieHeartbeatHook | None, item: _Ping) -> OpsgenieHeartbeatHook | None:
        """(Set the interval, then) ping; returns the hook to keep for the next ping (None: build a new one)."""
        from airflow_provider_opsgenie_hb.api.errors import (
            HeartbeatError,
            HeartbeatForbiddenError,
            HeartbeatUnauthorizedError,
        )
        from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

        name, settings = item.name, None
        if name is None:  # the listener is off here: is it on in a running scheduler?
            settings = _settings_of_a_scheduler_with_it_on(item.dag)
            name = pinged_by_listener(item.dag, item.run.run_type, settings) if settings is not None else None
            if settings is None or name is None:
                return hook
            log.info(
                "OpsGenie heartbeat %r: the listener is off here, and pinged all the same "
                "(it is on in a running scheduler, or that could not be read)",
                name,
            )
            if settings.conn_id != self.conn_id:  # that scheduler's connection, for this ping only
                one_off = OpsgenieHeartbeatHook(settings.conn_id, time_budget=self.ping_deadline)
                self._deliver(one_off, settings.conn_id, item, name, settings)
                return hook
        hook = hook or OpsgenieHeartbeatHook(self.conn_id, time_budget=self.ping_deadline)
        error = self._deliver(hook, self.conn_id, item, name, settings)
        if error is None:
            return hook
        # A rejected key may have been rotated, and an unexpected error may be the connection's:
        # read the connection again for the next ping.
        rejected = isinstance(error, (HeartbeatUnauthorizedError, HeartbeatForbiddenError))
        return None if rejected or not isinstance(error, HeartbeatError) else hook

    def _deliver(
        self, hook: OpsgenieHeartbeatHook, conn_id: str, item: _Ping, name: str, settings: ListenerSettings | None
    ) -> BaseException | None:
        """(Set the interval, then) ping ``name``; the error, logged, or None."""
        from airflow_provider_opsgenie_hb.api.errors import HeartbeatError
        from airflow_provider_opsgenie_hb.core.delivery import Delivery, DeliveryOutcome, deliver, run_delivery

        declaration = tag_declaration(item.dag, settings) if item.dag is not None else None
        # OpsGenie answers PONG for a heartbeat that does not exist: checked once per record TTL, and
        # said on every run while it is missing (sync creates the listener's heartbeats).
        delivery = Delivery(conn_id, name, "listener", check_exists=True)
        if declaration is not None and declaration.follows_next_run:  # the interval is set from the run
            delivery = run_delivery(declaration, name, "listener", item.dag, item.run, check_exists=True)
        outcome = DeliveryOutcome(name)
        deliver(hook, delivery, outcome, budget=self.ping_deadline)
        if outcome.interval_error is not None:
            log.warning("%s", outcome.interval_error)
        error = outcome.error
        if error is None:
            return None
        if isinstance(error, HeartbeatError):
            log.warning("OpsGenie heartbeat %r was not pinged by the listener: %s", name, error)
        else:
            log.error("OpsGenie heartbeat %r: the listener's ping failed unexpectedly", name, exc_info=error)
        return error


_pinger: HeartbeatPinger | None = None
_pinger_lock = threading.Lock()


def _start_afresh_in_child() -> None:
    """A forked child (LocalExecutor forks its workers from the scheduler, and they fork the tasks) starts
    without the parent's pinger: its queue is the parent's to send (and to flush at exit), its thread
    does not exist in the child, and a lock a parent's thread held at the fork would never be released."""
    global _pinger, _pinger_lock
    _pinger, _pinger_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_start_afresh_in_child)


def pinger() -> HeartbeatPinger:
    """The process's pinger, created on first use (and flushed when the process exits)."""
    global _pinger
    with _pinger_lock:
        if _pinger is None:
            settings = listener_settings()
            _pinger = HeartbeatPinger(
                settings.conn_id, maxsize=settings.queue_size, ping_deadline=settings.ping_deadline
            )
            atexit.register(_flush_at_exit)
        return _pinger


def _flush_at_exit() -> None:
    # The API server calls no ``before_stopping``; a run marked successful there is
    # pinged before its process goes.
    if _pinger is not None:
        _pinger.flush(listener_settings().flush_seconds)


def pinged_by_listener(dag: Any, run_type: str | None = None, settings: ListenerSettings | None = None) -> str | None:
    """The heartbeat name the listener pings for a successful run of ``dag``, or None when it does not."""
    declaration = tag_declaration(dag, settings)
    if declaration is None or not declaration.pings(run_type):
        return None
    return str(render_for_dag(declaration.name, dag))


@dataclass(frozen=True)
class _RunTimes:
    """What the interval is set from, read off the run in the scheduler's thread (the worker
    must not touch a database-bound object)."""

    run_after: Any
    data_interval_start: Any
    data_interval_end: Any
    run_type: str | None

    @classmethod
    def of(cls, dag_run: Any) -> _RunTimes:
        return cls(
            getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None),
            getattr(dag_run, "data_interval_start", None),
            getattr(dag_run, "data_interval_end", None),
            run_type_of(dag_run),
        )


def _settings_of_a_scheduler_with_it_on(dag: Any) -> ListenerSettings | None:
    """The listener settings to ping ``dag``'s run with where the listener is off: a running
    scheduler's that has it on; this component's own when that cannot be read (when in doubt, ping)."""
    try:
        return presence.listener_on_elsewhere()
    except Exception:
        log.warning(
            "OpsGenie heartbeat listener: it is off here, and whether a running scheduler has it on could "
            "not be read from the metadata database; pinging DAG %r's run with this component's settings",
            getattr(dag, "dag_id", "?"),
            exc_info=True,
        )
        return replace(listener_settings(), enabled=True)


class _Listener:
    """The listener object Airflow's plugin manager registers."""

    @hookimpl
    def on_starting(self, component: Any) -> None:
        try:  # a scheduler with the listener on records so, for the components that have it off
            presence.keep_recorded(component)
        except Exception:  # a listener must never disturb the component
            log.warning("OpsGenie heartbeat listener: could not record this scheduler", exc_info=True)

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        try:
            settings = listener_settings()
            dag = getattr(dag_run, "dag", None)
            if dag is None:
                return
            if not settings.enabled:  # pinged if a running scheduler has it on, decided in the thread
                if DAG_TAG in (getattr(dag, "tags", None) or ()):
                    pinger().submit(None, dag=dag, run=_RunTimes.of(dag_run))
                return
            name = pinged_by_listener(dag, run_type_of(dag_run), settings)
            if name and settings.interval_mode == NEXT_RUN:
                pinger().submit(name, dag=dag, run=_RunTimes.of(dag_run))
            elif name:
                pinger().submit(name)
        except Exception:  # a listener must never disturb the scheduler
            log.exception("OpsGenie heartbeat listener failed for DAG run %s", getattr(dag_run, "run_id", "?"))

    @hookimpl
    def before_stopping(self, component: Any) -> None:
        if _pinger is not None:
            _pinger.flush(listener_settings().flush_seconds)


heartbeat_listener = _Listener()
