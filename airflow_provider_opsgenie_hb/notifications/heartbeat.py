"""The success callback: ping a DAG's OpsGenie heartbeat when the DAG succeeds.

    from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

    with DAG("nightly_export", schedule="0 3 * * *", on_success_callback=send_opsgenie_heartbeat()):
        ...

A run that never happens sends no ping, and OpsGenie raises the heartbeat's alert once
the interval passes. The ping goes first; ensuring the heartbeat's settings (or checking
that it exists) comes after it, with what is left of the time. The callback never fails
the run it reports on (unless ``raise_on_error=True``), and returns within ``deadline``
seconds whatever OpsGenie does: the work runs in a worker thread that the callback stops
waiting for when the deadline passes.
"""

from __future__ import annotations

import datetime
import logging
import math
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseNotifier

from airflow_provider_opsgenie_hb.api.errors import (
    HeartbeatError,
    HeartbeatForbiddenError,
    HeartbeatNotFoundError,
    HeartbeatTimeoutError,
    HeartbeatValidationError,
)
from airflow_provider_opsgenie_hb.api.schema import check_fields, is_template
from airflow_provider_opsgenie_hb.core import record
from airflow_provider_opsgenie_hb.core.declaration import (
    DEFAULT_CONN_ID,
    DEFAULT_NAME_TEMPLATE,
    DEFAULT_RUN_TYPES,
    NEXT_RUN,
    RUN_TYPES,
    HeartbeatDeclaration,
    HeartbeatSettings,
    check_run_types,
    owner_marker,
)
from airflow_provider_opsgenie_hb.core.schedule import ScheduleIntervalError

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_opsgenie_hb.core.schedule import NextRun
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_RUN_TYPES", "RUN_TYPES", "OpsgenieHeartbeatNotifier", "send_opsgenie_heartbeat"]

DEFAULT_DEADLINE = 10.0
_REPORT_MARGIN = 0.03

_ADVICE: dict[str, str] = {
    "HeartbeatUnauthorizedError": "check the API key in the connection",
    "HeartbeatForbiddenError": "this key may only ping: use ensure=False, or a key with configuration access",
    "HeartbeatValidationError": "fix the field named above in the notifier's arguments",
    "HeartbeatRateLimitedError": "OpsGenie is throttling this account; the next run will ping again",
    "HeartbeatNotFoundError": "create the heartbeat, or pass ensure=True",
    "HeartbeatResponseError": "the answer was not OpsGenie's: check the host in the connection",
    "HeartbeatRequestError": "OpsGenie refused the request: see its message above",
    "AirflowNotFoundException": "create the connection, or name an existing one in opsgenie_heartbeat_conn_id",
}
_DEFAULT_ADVICE = "OpsGenie could not be reached in time; if this keeps happening the heartbeat will expire and alert"


@dataclass
class _Delivery:
    """What one call's worker thread did, read by the calling thread."""

    name: str
    pinged: bool = False
    error: BaseException | None = None  # before or instead of the ping
    after_ping_error: BaseException | None = None  # ensure or check, after a ping that went out
    interval_error: BaseException | None = None  # interval="next_run": the interval was not set


class OpsgenieHeartbeatNotifier(BaseNotifier):
    """Ping an OpsGenie heartbeat from ``on_success_callback`` (DAG or task level).

    One instance may be shared by many DAGs: every call resolves the name and the templated
    fields for its own DAG and run, and nothing learned in one call is written onto the instance.

    :param name: the heartbeat's name (templated); defaults to the DAG id.
    :param opsgenie_heartbeat_conn_id: the ``opsgenie_heartbeat`` connection.
    :param ensure: after the ping, make sure the heartbeat exists and matches the settings
        below (needs a key with configuration access); remembered between runs.
    :param interval: the heartbeat's interval when ensuring; by default derived from the
        DAG's schedule (longest gap between runs plus ``grace``). ``"next_run"``: every run
        sets the interval to the time until the next scheduled run plus ``grace`` (a PATCH
        before the ping, only when it changes), so a missed run alerts within the grace
        whatever the gap before it; see :mod:`airflow_provider_opsgenie_hb.core.next_run`.
    :param interval_unit: ``minutes``, ``hours`` or ``days``, with a numeric ``interval``.
    :param grace: extra time allowed on top of the derived interval (default: one more
        interval, at most an hour).
    :param enabled: when ensuring, enable or disable the heartbeat; by default its enabled
        state is left alone (one created here starts enabled).
    :param description: the heartbeat's description, when ensuring (templated).
    :param alert_message: the message of the alert a missed ping raises (templated).
    :param alert_tags: the tags of that alert (templated).
    :param alert_priority: ``P1``..``P5``, the priority of that alert.
    :param owner_team: the owning team (name, or ``{"id": ...}``), when ensuring.
    :param deadline: seconds the whole callback may take, connection lookup and retries included (default 10).
    :param raise_on_error: raise instead of logging a warning when the ping fails.
    :param run_types: the kinds of DAG run that ping (default: all but backfill).
    """

    template_fields: Sequence[str] = ("name", "description", "alert_message", "alert_tags")

    def __init__(
        self,
        *,
        name: str | None = None,
        opsgenie_heartbeat_conn_id: str = DEFAULT_CONN_ID,
        ensure: bool = False,
        interval: int | str | None = None,
        interval_unit: str | None = None,
        grace: datetime.timedelta | None = None,
        enabled: bool | None = None,
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
        self.enabled = enabled
        self.description = description
        self.alert_message = alert_message
        self.alert_tags = alert_tags
        self.alert_priority = alert_priority
        self.owner_team = owner_team
        self.deadline = deadline
        self.raise_on_error = raise_on_error
        self.run_types = frozenset(run_types)
        self._check_arguments(run_types)

    def _check_arguments(self, run_types: Collection[str]) -> None:
        """Refuse bad arguments when the DAG file is parsed, not at the end of a run."""
        problems: dict[str, str] = {}
        deadline = self.deadline
        if isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not 0 < deadline < math.inf:
            problems["deadline"] = f"must be a positive, finite number of seconds, got {deadline!r}"
        problems |= _interval_problems(self.interval, self.interval_unit)
        for flag in ("ensure", "raise_on_error"):
            if not isinstance(getattr(self, flag), bool):
                problems[flag] = f"must be True or False, got {getattr(self, flag)!r}"
        conn_id = self.opsgenie_heartbeat_conn_id
        if not isinstance(conn_id, str) or not conn_id.strip():
            problems["opsgenie_heartbeat_conn_id"] = f"must name a connection, got {conn_id!r}"
        if isinstance(run_types, str):
            problems["run_types"] = f"must be a list of run types such as ['scheduled'], not the string {run_types!r}"
        elif not self.run_types:
            problems["run_types"] = "must name at least one run type (an empty list would never ping)"
        elif run_types_problem := check_run_types(self.run_types):
            problems["run_types"] = run_types_problem
        problems |= _template_syntax_problems({f: getattr(self, f) for f in self.template_fields})
        if self.grace is not None and (
            not isinstance(self.grace, datetime.timedelta) or self.grace < datetime.timedelta(0)
        ):
            problems["grace"] = f"must be a timedelta >= 0, got {self.grace!r}"
        fields = {
            "name": self.name,
            "interval": None if isinstance(self.interval, str) else self.interval,
            "interval_unit": self.interval_unit,
            "enabled": self.enabled,
            "description": self.description,
            "alert_message": self.alert_message,
            "alert_tags": self.alert_tags,
            "alert_priority": self.alert_priority,
            "owner_team": self.owner_team,
        }
        check_fields(type(self).__name__, fields, extra_problems=problems, skip_templates=True)

    @property
    def heartbeat_declaration(self) -> HeartbeatDeclaration:
        """What this notifier declares (read by sync as well)."""
        return HeartbeatDeclaration(
            name=self.name or DEFAULT_NAME_TEMPLATE,
            conn_id=self.opsgenie_heartbeat_conn_id,
            run_types=self.run_types,
            settings=HeartbeatSettings(
                interval=self.interval,
                interval_unit=self.interval_unit,
                grace=self.grace,
                enabled=self.enabled,
                description=self.description,
                alert_message=self.alert_message,
                alert_tags=tuple(self.alert_tags) if self.alert_tags is not None else None,
                alert_priority=self.alert_priority,
                owner_team=self.owner_team,
            ),
        )

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Not used by the callback (it renders per call, without writing onto the instance)."""
        super().render_template_fields(context, jinja_env or self._template_env(context.get("dag")))

    def _template_env(self, dag: Any) -> Any:
        # ``dag.test()`` hands DAG-level callbacks the scheduler's serialized DAG, which has
        # no template environment: render with Airflow's default one then.
        return self.get_template_env(dag=dag if hasattr(dag, "get_template_env") else None)

    def __call__(self, *args: Any) -> None:
        """Airflow calls this with the context (or, for SLA-style calls, the DAG and lists)."""
        if len(args) == 1:
            context = args[0]
        else:
            context = {"dag": args[0], "task_list": args[1], "blocking_task_list": args[2], "blocking_tis": args[3]}
        self.notify(context)

    def notify(self, context: Context) -> None:
        started = time.monotonic()
        name = self.name
        try:
            run_type = _run_type(context)
            if run_type is not None and run_type not in self.run_types:
                log.info("Not pinging OpsGenie heartbeat for a %s run (run_types=%s)", run_type, sorted(self.run_types))
                return
            if _mid_run_task(context):
                log.warning(
                    "Not pinging OpsGenie heartbeat on the success of task %r: tasks downstream of it still "
                    "have to run, so it does not mean the DAG run succeeded. Give the notifier to the DAG's "
                    "on_success_callback (or to its last task), not to every task through default_args.",
                    getattr(context.get("task"), "task_id", "?"),
                )
                return
            dag = context.get("dag")
            env = self._template_env(dag)

            def render(value: Any) -> Any:
                return self.render_template(value, context, env)

            name = self._resolve_name(render, dag)
            delivery = self._deliver_within_deadline(name, dag, render, started, context.get("dag_run"))
        except Exception as exc:
            if self.raise_on_error:
                raise
            self._warn_not_pinged(name, exc, started)
            return
        if delivery.error is not None:
            if self.raise_on_error:
                raise delivery.error
            self._warn_not_pinged(name, delivery.error, started)
            return
        if delivery.interval_error is not None:
            if self.raise_on_error:
                raise delivery.interval_error
            log.warning("%s", delivery.interval_error)
        if delivery.after_ping_error is not None:
            if self.raise_on_error:
                raise delivery.after_ping_error
            action = "ensure" if self.ensure else "check"
            log.warning(
                "OpsGenie heartbeat %r was pinged, but the %s after the ping did not complete: %s",
                name,
                action,
                delivery.after_ping_error,
            )

    def _resolve_name(self, render: Any, dag: Any) -> str:
        if self.name:
            name = render(self.name)
            check_fields(type(self).__name__, {"name": name}, required=("name",))
            return str(name)
        if dag is None:
            raise HeartbeatValidationError("no heartbeat name given and no DAG in the context to name it after")
        return str(dag.dag_id)

    def _deliver_within_deadline(self, name: str, dag: Any, render: Any, started: float, dag_run: Any) -> _Delivery:
        """Run the delivery in a worker thread and wait for it no longer than the deadline."""
        delivery = _Delivery(name)
        worker = threading.Thread(
            target=self._deliver,
            args=(delivery, dag, render, started, dag_run),
            name=f"opsgenie-heartbeat-{name[:40]}",
            daemon=True,
        )
        worker.start()
        worker.join(max(0.0, self.deadline - (time.monotonic() - started)))
        if worker.is_alive():
            timeout = HeartbeatTimeoutError(
                f"the callback's deadline of {self.deadline:g}s passed "
                + ("after the ping (it was sent)" if delivery.pinged else "before OpsGenie confirmed the ping")
            )
            if delivery.pinged:
                delivery.after_ping_error = timeout
            else:
                delivery.error = timeout
        return delivery

    def _deliver(self, delivery: _Delivery, dag: Any, render: Any, started: float, dag_run: Any) -> None:
        """(Set the interval,) ping, then ensure or check (each skipped while its record is fresh)."""
        from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

        name = delivery.name
        try:
            hook = OpsgenieHeartbeatHook(self.opsgenie_heartbeat_conn_id, time_budget=float(self.deadline))
            client = hook.client  # the connection lookup counts against the deadline too
            scope = record.scope(self.opsgenie_heartbeat_conn_id, client, name)
            # A little short of the callback's deadline, so that the client's own error (with
            # its status and requestId) reaches the calling thread before it stops waiting.
            with hook.deadline(self.deadline * (1 - _REPORT_MARGIN) - (time.monotonic() - started)):
                wanted, delivery.interval_error = self._wanted_interval(dag, dag_run)

                def ping() -> None:
                    self._ping(hook, name)
                    delivery.pinged = True

                outcome = None
                try:
                    if wanted is None:
                        ping()
                    else:
                        from airflow_provider_opsgenie_hb.core.next_run import ping_and_set_interval

                        left = self.deadline * (1 - _REPORT_MARGIN) - (time.monotonic() - started)
                        outcome = ping_and_set_interval(hook, scope, wanted, ping, patch_seconds=left / 2)
                except HeartbeatNotFoundError:
                    if not self.ensure:  # JSM Operations refuses pings to a missing heartbeat
                        raise
                # The PATCH found no heartbeat: the ping reached nothing, whatever the record says.
                missing = outcome is not None and outcome.missing
                if outcome is not None and outcome.error is not None and not (missing and self.ensure):
                    delivery.interval_error = outcome.error
                try:
                    if self.ensure:
                        reached = delivery.pinged and not missing
                        self._ensure(hook, scope, dag, render, pinged=reached, exact=wanted)
                        delivery.pinged = True
                    else:
                        self._check_exists(hook, scope)
                except (HeartbeatError, ScheduleIntervalError) as exc:
                    if not delivery.pinged:
                        raise
                    delivery.after_ping_error = exc
        except BaseException as exc:  # handed to the calling thread
            if delivery.pinged:
                delivery.after_ping_error = exc
            else:
                delivery.error = exc

    def _ping(self, hook: OpsgenieHeartbeatHook, name: str) -> None:
        ack = hook.ping_heartbeat(name)
        log.info("Pinged OpsGenie heartbeat %r (requestId %s)", name, ack.request_id)
        record.record_ping(self.opsgenie_heartbeat_conn_id, name, ack.request_id, "callback")

    def _wanted_interval(self, dag: Any, dag_run: Any) -> tuple[NextRun | None, Exception | None]:
        """``interval="next_run"``: the interval from this run to the next (or why there is none)."""
        if self.interval != NEXT_RUN or dag is None:
            return None, None
        from airflow_provider_opsgenie_hb.core.next_run import next_run_of

        try:
            return next_run_of(dag, dag_run, grace=self.grace), None
        except Exception as exc:  # never in the way of the ping
            return None, HeartbeatValidationError(f"interval='next_run' cannot set the interval: {exc}")

    def _ensure(
        self,
        hook: OpsgenieHeartbeatHook,
        scope: tuple[str, ...],
        dag: Any,
        render: Any,
        *,
        pinged: bool,
        exact: NextRun | None = None,
    ) -> None:
        """Create the heartbeat or bring it in line (once per record TTL); ping again if it was missing."""
        name = scope[-1]
        fields = self.heartbeat_declaration.desired_fields(dag, name=name, render=render)
        key = record.fact("ensured", *scope, fields)
        if pinged and record.is_recorded(key):
            return
        if exact is not None:  # created with the interval until the next run; an existing one keeps its own
            fields["interval"], fields["interval_unit"] = exact.interval.interval, exact.interval.interval_unit
        marker = owner_marker()
        follows = self.interval == NEXT_RUN  # the runs set the interval: ensure only creates with one
        result = hook.ensure_heartbeat(**fields, marker=marker, compare_interval=not follows)
        if result.action == "conflict":
            log.warning(
                "OpsGenie heartbeat %r exists without this deployment's marker %r (made by hand, or another "
                "deployment's): ensure left it unchanged (it differs in %s). Adopt it with "
                "`opsgenie-heartbeat sync --adopt`, or drop ensure=True.",
                name,
                marker,
                ", ".join(sorted(result.changed)),
            )
        else:
            interval = f"{fields['interval']} {fields['interval_unit']}"
            log.info("OpsGenie heartbeat %r %s (interval %s)", name, result.action, interval)
        if result.action == "created" and exact is not None:
            from airflow_provider_opsgenie_hb.core.next_run import remember_interval

            remember_interval(scope, exact)
        if result.action == "created" or not pinged:  # the first ping reached no heartbeat
            self._ping(hook, name)
        record.record(key)

    def _check_exists(self, hook: OpsgenieHeartbeatHook, scope: tuple[str, ...]) -> None:
        """OpsGenie answers PONG for any name; a GET (once a day) tells a typo apart."""
        name = scope[-1]
        key = record.fact("exists", *scope)
        if record.is_recorded(key):
            return
        try:
            hook.get_heartbeat(name)
        except HeartbeatNotFoundError:
            log.warning(
                "OpsGenie heartbeat %r does not exist: OpsGenie accepts pings to it but monitors "
                "nothing. Create it (in OpsGenie, or with OpsgenieEnsureHeartbeatOperator) or pass "
                "ensure=True to this notifier (connection %r).",
                name,
                self.opsgenie_heartbeat_conn_id,
            )
            return
        except HeartbeatForbiddenError:
            log.debug("Cannot check that heartbeat %r exists: the key may only ping", name)
        record.record(key)

    def _warn_not_pinged(self, name: str | None, exc: BaseException, started: float) -> None:
        advice = _ADVICE.get(type(exc).__name__, _DEFAULT_ADVICE if isinstance(exc, HeartbeatError) else "")
        log.warning(
            "OpsGenie heartbeat %r was not pinged after %.1fs: %s%s",
            name,
            time.monotonic() - started,
            exc,
            f". What to do: {advice}" if advice else "",
        )


def _interval_problems(interval: Any, interval_unit: Any) -> dict[str, str]:
    """``interval`` and ``interval_unit`` together, neither (derived), or ``interval="next_run"`` alone."""
    if interval == NEXT_RUN:
        if interval_unit is not None:
            return {"interval_unit": "must not be given with interval='next_run' (each run sets the interval)"}
        return {}
    if isinstance(interval, str):
        return {"interval": f"must be a whole number (with interval_unit) or 'next_run', got {interval!r}"}
    if (interval is None) != (interval_unit is None):
        return {"interval": "give interval and interval_unit together (or neither, to derive them)"}
    return {}


def _template_syntax_problems(fields: dict[str, Any]) -> dict[str, str]:
    """Templated fields that Jinja cannot even parse: refused at parse time, not on every run."""
    problems: dict[str, str] = {}
    for key, value in fields.items():
        for text in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(text, str) and is_template(text):
                import jinja2

                try:
                    jinja2.Environment().parse(text)
                except jinja2.TemplateSyntaxError as exc:
                    problems[key] = f"is not a valid template ({exc.message}): {text!r}"
    return problems


def _mid_run_task(context: Context) -> bool:
    """A task-level call for a task with downstream tasks, while the DAG run is still running."""
    task, dag_run = context.get("task"), context.get("dag_run")
    state = getattr(dag_run, "state", None)
    state = str(getattr(state, "value", state) or "")
    return task is not None and state == "running" and bool(getattr(task, "downstream_task_ids", None))


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
