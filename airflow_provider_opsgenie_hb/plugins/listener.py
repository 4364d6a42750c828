"""Zero-code pings: a listener that pings the heartbeat of every DAG tagged ``opsgenie-heartbeat``.

Airflow calls ``on_dag_run_success`` inside the scheduler (and the API server, when a run
is marked successful there), so the listener must never block: it only puts the ping on a
bounded queue, which one background thread drains. A full queue drops the ping with a
warning; on shutdown the queue is flushed for at most ``shutdown_flush_seconds``.

Configured in the ``[opsgenie_heartbeat]`` section: ``listener_enabled``, ``conn_id``,
``name_template``, ``queue_size``, ``ping_deadline_seconds``, ``shutdown_flush_seconds``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from airflow.providers.common.compat.sdk import AirflowPlugin, hookimpl

log = logging.getLogger(__name__)

HEARTBEAT_TAG = "opsgenie-heartbeat"
SECTION = "opsgenie_heartbeat"


def _conf(key: str, fallback: str) -> str:
    from airflow.providers.common.compat.sdk import conf

    return str(conf.get(SECTION, key, fallback=fallback))


def listener_settings() -> dict[str, Any]:
    """The listener's options, read from Airflow's configuration."""
    return {
        "enabled": _conf("listener_enabled", "True").strip().lower() in ("true", "1", "yes", "on"),
        "conn_id": _conf("conn_id", "opsgenie_heartbeat_default"),
        "name_template": _conf("name_template", "") or "{{ dag_id }}",
        "queue_size": int(_conf("queue_size", "1000")),
        "ping_deadline": float(_conf("ping_deadline_seconds", "10")),
        "flush_seconds": float(_conf("shutdown_flush_seconds", "5")),
    }


class HeartbeatPinger:
    """A bounded queue of heartbeat names and the one thread that pings them."""

    def __init__(self, conn_id: str, *, maxsize: int, ping_deadline: float) -> None:
        self.conn_id = conn_id
        self.ping_deadline = ping_deadline
        self._queue: queue.Queue[str] = queue.Queue(maxsize=maxsize)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, name: str) -> bool:
        """Queue a ping without waiting; False (and a warning) when the queue is full."""
        self._start()
        try:
            self._queue.put_nowait(name)
        except queue.Full:
            log.warning(
                "OpsGenie heartbeat %r not pinged: the listener's queue is full (%d waiting); "
                "OpsGenie may be slow or unreachable",
                name,
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
        from airflow_provider_opsgenie_hb.errors import HeartbeatError
        from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

        hook: OpsgenieHeartbeatHook | None = None
        while True:
            name = self._queue.get()
            try:
                hook = hook or OpsgenieHeartbeatHook(self.conn_id, time_budget=self.ping_deadline)
                with hook.deadline(self.ping_deadline):
                    ack = hook.ping_heartbeat(name)
                log.info("Pinged OpsGenie heartbeat %r from the listener (requestId %s)", name, ack.request_id)
            except HeartbeatError as exc:
                log.warning("OpsGenie heartbeat %r was not pinged by the listener: %s", name, exc)
            except Exception:
                log.exception("OpsGenie heartbeat %r: the listener's ping failed unexpectedly", name)
                hook = None
            finally:
                self._queue.task_done()


_pinger: HeartbeatPinger | None = None
_pinger_lock = threading.Lock()


def pinger() -> HeartbeatPinger:
    global _pinger
    with _pinger_lock:
        if _pinger is None:
            settings = listener_settings()
            _pinger = HeartbeatPinger(
                settings["conn_id"], maxsize=settings["queue_size"], ping_deadline=settings["ping_deadline"]
            )
        return _pinger


def pinged_by_listener(dag: Any) -> str | None:
    """The heartbeat name the listener pings for this DAG, or None when it does not."""
    settings = listener_settings()
    if not settings["enabled"] or HEARTBEAT_TAG not in (getattr(dag, "tags", None) or ()):
        return None
    from airflow_provider_opsgenie_hb.sync import render_for_dag

    return str(render_for_dag(settings["name_template"], dag))


class _Listener:
    """The listener object Airflow's plugin manager registers."""

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        try:
            dag = getattr(dag_run, "dag", None)
            name = pinged_by_listener(dag) if dag is not None else None
            if name:
                pinger().submit(name)
        except Exception:  # a listener must never disturb the scheduler
            log.exception("OpsGenie heartbeat listener failed for DAG run %s", getattr(dag_run, "run_id", "?"))

    @hookimpl
    def before_stopping(self, component: Any) -> None:
        if _pinger is not None:
            _pinger.flush(listener_settings()["flush_seconds"])


heartbeat_listener = _Listener()


class OpsgenieHeartbeatPlugin(AirflowPlugin):
    """Registers :data:`heartbeat_listener` with Airflow (through the provider's ``plugins``)."""

    name = "opsgenie_heartbeat"
    listeners = [heartbeat_listener]
