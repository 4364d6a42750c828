"""The success callback: ping a DAG's OpsGenie heartbeat when the DAG succeeds.

    from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

    with DAG("nightly_export", schedule="0 3 * * *", on_success_callback=send_opsgenie_heartbeat()):
        ...

A run that never happens sends no ping, and OpsGenie raises the heartbeat's alert once
the interval passes. The callback never fails the run it reports on (unless
``raise_on_error=True``), and returns within ``deadline`` seconds whatever OpsGenie does.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Collection, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseNotifier

from airflow_provider_opsgenie_hb.errors import (
    HeartbeatError,
    HeartbeatForbiddenError,
    HeartbeatNotFoundError,
    HeartbeatValidationError,
)
from airflow_provider_opsgenie_hb.models import check_fields
from airflow_provider_opsgenie_hb.schedule import ScheduleIntervalError, interval_for_dag

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

log = logging.getLogger(__name__)

RUN_TYPES = ("scheduled", "manual", "asset_triggered", "operator_triggered", "asset_materialization", "backfill")
#: Backfills are left out: an old date succeeding says nothing about whether today's runs happen.
DEFAULT_RUN_TYPES = tuple(t for t in RUN_TYPES if t != "backfill")
DEFAULT_DEADLINE = 10.0

# Per process: heartbeats already ensured, and names already checked for existence.
_seen_lock = threading.Lock()
_ensured: set[tuple[str, str]] = set()
_checked: set[tuple[str, str]] = set()

_ADVICE: dict[str, str] = {
    "HeartbeatUnauthorizedError": "check the API key in the connection",
    "HeartbeatForbiddenError": "this key may only ping: use ensure=False, or a key with configuration access",
    "HeartbeatValidationError": "fix the field named above in the notifier's arguments",
    "HeartbeatRateLimitedError": "OpsGenie is throttling this account; the next run will ping again",
    "HeartbeatNotFoundError": "create the heartbeat, or pass ensure=True",
}
_DEFAULT_ADVICE = "OpsGenie could not be reached in time; if this keeps happening the heartbeat will expire and alert"


def _is_template(value: Any) -> bool:
    return (isinstance(value, str) and "{{" in value) or (
        isinstance(value, (list, tuple)) and any(_is_template(v) for v in value)
    )


class OpsgenieHeartbeatNotifier(BaseNotifier):
    """Ping an OpsGenie heartbeat from ``on_success_callback`` (DAG or task level).

    :param name: the heartbeat's name (templated); defaults to the DAG id.
    :param opsgenie_heartbeat_conn_id: the ``opsgenie_heartbeat`` connection.
    :param ensure: make sure the heartbeat exists and matches the settings below, once per
        process, before the first ping (needs a key with configuration access).
    :param interval: the heartbeat's interval when ensuring; by default derived from the
        DAG's schedule (longest gap between runs plus ``grace``).
    :param interval_unit: ``minutes``, ``hours`` or ``days``, with ``interval``.
    :param grace: extra time allowed on top of the derived interval (default: one more
        interval, at most an hour).
    :param description: the heartbeat's description, when ensuring (templated).
    :param alert_message: the message of the alert a missed ping raises (templated).
    :param alert_tags: the tags of that alert (templated).
    :param alert_priority: ``P1``..``P5``, the priority of that alert.
    :param owner_team: the owning team (name, or ``{"id": ...}``), when ensuring.
    :param deadline: seconds the whole callback may take, retries included (default 10).
    :param raise_on_error: raise instead of logging a warning when the ping fails.
    :param run_types: the kinds of DAG run that ping (default: all but backfill).
    """

    template_fields: Sequence[str] = ("name", "description", "alert_message", "alert_tags")

    def __init__(
        self,
        *,
        name: str | None = None,
        opsgenie_heartbeat_conn_id: str = "opsgenie_heartbeat_default",
        ensure: bool = False,
        interval: int | None = None,
        interval_unit: str | None = None,
        grace: datetime.timedelta | None = None,
        description: str | None = None,
        alert_message: str | None = None,
        alert_tags: list[str] | None = None,
        alert_priority: str | None = None,
        owner_team: str | dict[str, str] | None = None,
        deadline: float = DEFAULT_DEADLINE,
        raise_on_error: bool = False,
        run_types: Collection[str] = DEFAULT_RUN_TYPES,
    ) -> None:
        super().__init__()
        self.name = name
        self.opsgenie_heartbeat_conn_id = opsgenie_heartbeat_conn_id
        self.ensure = ensure
        self.interval = interval
        self.interval_unit = interval_unit
        self.grace = grace
        self.description = description
        self.alert_message = alert_message
        self.alert_tags = alert_tags
        self.alert_priority = alert_priority
        self.owner_team = owner_team
        self.deadline = deadline
        self.raise_on_error = raise_on_error
        self.run_types = frozenset(run_types)
        self._check_arguments()

    def _check_arguments(self) -> None:
        """Refuse bad arguments when the DAG file is parsed, not at the end of a run."""
        problems: dict[str, str] = {}
        if isinstance(self.deadline, bool) or not isinstance(self.deadline, (int, float)) or self.deadline <= 0:
            problems["deadline"] = f"must be a positive number of seconds, got {self.deadline!r}"
        if (self.interval is None) != (self.interval_unit is None):
            problems["interval"] = "give interval and interval_unit together (or neither, to derive them)"
        unknown_runs = self.run_types - set(RUN_TYPES)
        if unknown_runs:
            problems["run_types"] = f"unknown {sorted(unknown_runs)}; known are {', '.join(RUN_TYPES)}"
        if self.grace is not None and (
            not isinstance(self.grace, datetime.timedelta) or self.grace < datetime.timedelta(0)
        ):
            problems["grace"] = f"must be a timedelta >= 0, got {self.grace!r}"
        fields = {
            "name": self.name,
            "interval": self.interval,
            "interval_unit": self.interval_unit,
            "description": self.description,
            "alert_message": self.alert_message,
            "alert_tags": self.alert_tags,
            "alert_priority": self.alert_priority,
            "owner_team": self.owner_team,
        }
        check_fields(type(self).__name__, fields, extra_problems=problems, skip_templates=True)

    @cached_property
    def hook(self) -> OpsgenieHeartbeatHook:
        from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

        return OpsgenieHeartbeatHook(self.opsgenie_heartbeat_conn_id, time_budget=float(self.deadline))

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        # ``dag.test()`` hands DAG-level callbacks the scheduler's serialized DAG, which
        # has no template environment: render with Airflow's default one instead.
        dag = context.get("dag")
        if jinja_env is None and dag is not None and not hasattr(dag, "get_template_env"):
            jinja_env = self.get_template_env(dag=None)
        super().render_template_fields(context, jinja_env)

    def __call__(self, *args: Any) -> None:
        # Rendering happens in BaseNotifier.__call__, before notify(): a broken template
        # must not break the run either.
        try:
            super().__call__(*args)
        except Exception as exc:
            if self.raise_on_error:
                raise
            log.warning("OpsGenie heartbeat callback failed and was skipped: %s", exc)

    def notify(self, context: Context) -> None:
        started = time.monotonic()
        try:
            self._notify(context, started)
        except Exception as exc:
            if self.raise_on_error:
                raise
            advice = _ADVICE.get(type(exc).__name__, _DEFAULT_ADVICE if isinstance(exc, HeartbeatError) else "")
            log.warning(
                "OpsGenie heartbeat %r was not pinged after %.1fs: %s%s",
                self.name,
                time.monotonic() - started,
                exc,
                f". What to do: {advice}" if advice else "",
            )

    def _notify(self, context: Context, started: float) -> None:
        dag = context.get("dag")
        run_type = _run_type(context)
        if run_type is not None and run_type not in self.run_types:
            log.info("Not pinging OpsGenie heartbeat for a %s run (run_types=%s)", run_type, sorted(self.run_types))
            return
        if not self.name:
            if dag is None:
                raise HeartbeatValidationError("no heartbeat name given and no DAG in the context to name it after")
            self.name = dag.dag_id
        name = self.name
        key = (self.opsgenie_heartbeat_conn_id, name)
        remaining = self.deadline - (time.monotonic() - started)
        with self.hook.deadline(remaining):
            if self.ensure and key not in _ensured:
                try:
                    self._ensure(name, dag)
                except (HeartbeatError, ScheduleIntervalError) as exc:
                    if self.raise_on_error:
                        raise
                    log.warning("Could not ensure OpsGenie heartbeat %r (%s); pinging it anyway", name, exc)
                else:
                    with _seen_lock:
                        _ensured.add(key)
                        _checked.add(key)
            if self._listener_pings(dag, name):
                log.info("OpsGenie heartbeat %r is pinged by the opsgenie-heartbeat listener: not twice", name)
                return
            ack = self.hook.ping_heartbeat(name)
            log.info("Pinged OpsGenie heartbeat %r (requestId %s)", name, ack.request_id)
            if key not in _checked:
                self._warn_if_missing(name)
                with _seen_lock:
                    _checked.add(key)

    def _listener_pings(self, dag: Any, name: str) -> bool:
        """A DAG both tagged and given this callback is pinged once per run: by the listener."""
        if dag is None or "opsgenie-heartbeat" not in (getattr(dag, "tags", None) or ()):
            return False
        from airflow_provider_opsgenie_hb.plugins.listener import listener_settings, pinged_by_listener

        return pinged_by_listener(dag) == name and listener_settings()["conn_id"] == self.opsgenie_heartbeat_conn_id

    def _ensure(self, name: str, dag: Any) -> None:
        interval, unit = self.interval, self.interval_unit
        if interval is None or unit is None:
            derived = interval_for_dag(dag, grace=self.grace)
            interval, unit = derived.interval, derived.interval_unit
        result = self.hook.ensure_heartbeat(
            name=name,
            interval=interval,
            interval_unit=unit,
            enabled=True,
            description=self.description,
            owner_team=self.owner_team,
            alert_message=self.alert_message,
            alert_tags=self.alert_tags,
            alert_priority=self.alert_priority,
        )
        log.info("OpsGenie heartbeat %r %s (interval %s %s)", name, result.action, interval, unit)

    def _warn_if_missing(self, name: str) -> None:
        """OpsGenie answers PONG for any name; one GET per process tells a typo apart."""
        try:
            self.hook.get_heartbeat(name)
        except HeartbeatNotFoundError:
            log.warning(
                "OpsGenie heartbeat %r does not exist: OpsGenie accepts pings to it but monitors "
                "nothing. Create it (in OpsGenie, or with OpsgenieEnsureHeartbeatOperator) or pass "
                "ensure=True to this notifier (connection %r).",
                name,
                self.opsgenie_heartbeat_conn_id,
            )
        except HeartbeatForbiddenError:
            log.debug("Cannot check that heartbeat %r exists: the key may only ping", name)


def _run_type(context: Context) -> str | None:
    """The run's type from the DAG run, or from the prefix of a generated run id."""
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    if run_type is not None:
        return str(getattr(run_type, "value", run_type))
    run_id = str(context.get("run_id") or "")
    prefix = run_id.split("__", 1)[0]
    return prefix if "__" in run_id and prefix in RUN_TYPES else None


send_opsgenie_heartbeat = OpsgenieHeartbeatNotifier
