"""The success callback: ping a DAG's OpsGenie heartbeat when the DAG succeeds.

    from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

    with DAG("nightly_export", schedule="0 3 * * *", on_success_callback=send_opsgenie_heartbeat()):
        ...

A run that never happens sends no ping, and OpsGenie raises the heartbeat's alert once the
interval passes. The callback never fails the run it reports on (unless ``raise_on_error=True``)
and returns within ``deadline`` seconds whatever OpsGenie does; the work itself is the one
delivery every face shares (:mod:`airflow_provider_opsgenie_hb.core.delivery`).
"""

from __future__ import annotations

import datetime
import logging
import math
import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseNotifier

from airflow_provider_opsgenie_hb.api.errors import HeartbeatValidationError
from airflow_provider_opsgenie_hb.api.schema import TEMPLATED_FIELDS, check_fields
from airflow_provider_opsgenie_hb.core.declaration import (
    DECLARED_FIELDS,
    HeartbeatDeclaration,
    declaration_problems,
    interval_policy,
    run_type_of,
    run_types_of,
    task_level_holds_ping,
)
from airflow_provider_opsgenie_hb.core.delivery import DeliveryOutcome, deliver_within, run_delivery
from airflow_provider_opsgenie_hb.settings import DEFAULT_CONN_ID, DEFAULT_NAME_TEMPLATE, DEFAULT_RUN_TYPES, RUN_TYPES
from airflow_provider_opsgenie_hb.version_compat import template_env_dag

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from typing_extensions import Unpack

    from airflow_provider_opsgenie_hb.api.schema import HeartbeatSettingFields

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_RUN_TYPES", "RUN_TYPES", "OpsgenieHeartbeatNotifier", "send_opsgenie_heartbeat"]

DEFAULT_DEADLINE = 10.0


class OpsgenieHeartbeatNotifier(BaseNotifier):
    """Ping an OpsGenie heartbeat from ``on_success_callback`` (DAG or task level).

    One instance may be shared by many DAGs: every call resolves the name and the templated
    fields for its own DAG and run, and nothing learned in one call is written onto the instance.

    :param name: the heartbeat's name (templated); defaults to the DAG id.
    :param opsgenie_heartbeat_conn_id: the ``opsgenie_heartbeat`` connection.
    :param ensure: after the ping, make sure the heartbeat exists and matches the fields below
        (remembered between runs); one this deployment did not create is left alone.
    :param interval: with ``interval_unit``, the interval when ensuring; by default derived from
        the schedule (longest gap plus ``grace``). ``"next_run"``: every run sets the interval to
        the time until the next run plus ``grace`` (see :mod:`~airflow_provider_opsgenie_hb.core.next_run`).
    :param grace: extra time on top of a derived interval (default: one more interval, at most an hour).
    :param deadline: seconds the whole callback may take, connection lookup and retries included.
    :param raise_on_error: raise instead of logging a warning when the ping fails.
    :param run_types: the kinds of DAG run that ping (default: all but backfill).
    :param fields: the heartbeat's other fields when ensuring (:class:`~airflow_provider_opsgenie_hb.api.schema.
        HeartbeatSettingFields`); ``enabled`` left out keeps the heartbeat's enabled state.
    """

    template_fields: Sequence[str] = ("name", *TEMPLATED_FIELDS)

    def __init__(
        self,
        *,
        name: str | None = None,
        opsgenie_heartbeat_conn_id: str = DEFAULT_CONN_ID,
        ensure: bool = False,
        interval: int | str | None = None,
        interval_unit: str | None = None,
        grace: datetime.timedelta | None = None,
        deadline: float = DEFAULT_DEADLINE,
        raise_on_error: bool = False,
        run_types: Collection[str] = DEFAULT_RUN_TYPES,
        **fields: Unpack[HeartbeatSettingFields],
    ) -> None:
        if unknown := sorted(set(fields) - set(DECLARED_FIELDS)):
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {unknown}")
        super().__init__()
        self.name = name
        self.opsgenie_heartbeat_conn_id = opsgenie_heartbeat_conn_id
        self.ensure = ensure
        self.interval = interval
        self.interval_unit = interval_unit
        self.grace = grace
        self.deadline = deadline
        self.raise_on_error = raise_on_error
        self.run_types = run_types_of(run_types)
        for key in DECLARED_FIELDS:
            setattr(self, key, fields.get(key))
        problems = declaration_problems(
            name=name,
            conn_id=opsgenie_heartbeat_conn_id,
            run_types=run_types,
            interval=interval,
            interval_unit=interval_unit,
            grace=grace,
            fields=self._fields(),
            marked=ensure is True,
        )
        if isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not 0 < deadline < math.inf:
            problems["deadline"] = f"must be a positive, finite number of seconds, got {deadline!r}"
        for flag in ("ensure", "raise_on_error"):
            if not isinstance(getattr(self, flag), bool):
                problems[flag] = f"must be True or False, got {getattr(self, flag)!r}"
        check_fields(type(self).__name__, {}, extra_problems=problems)

    def _fields(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in DECLARED_FIELDS}

    @property
    def heartbeat_declaration(self) -> HeartbeatDeclaration:
        """What this notifier declares (read by sync and the page as well)."""
        return HeartbeatDeclaration(
            name=self.name or DEFAULT_NAME_TEMPLATE,
            conn_id=self.opsgenie_heartbeat_conn_id,
            run_types=self.run_types,
            interval=interval_policy(self.interval, self.interval_unit, self.grace),
            fields=self._fields(),
        )

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Not used by the callback (it renders per call, without writing onto the instance)."""
        super().render_template_fields(
            context, jinja_env or self.get_template_env(dag=template_env_dag(context.get("dag")))
        )

    def __call__(self, *args: Any) -> None:
        """Airflow calls this with the context (or, for SLA-style calls, the DAG and lists)."""
        keys = ("dag", "task_list", "blocking_task_list", "blocking_tis")
        context: Any = args[0] if len(args) == 1 else dict(zip(keys, args, strict=False))
        self.notify(context)

    def notify(self, context: Context) -> None:
        started = time.monotonic()
        name = self.name
        try:
            dag, dag_run = context.get("dag"), context.get("dag_run")
            run_type = run_type_of(dag_run, context.get("run_id"))
            if run_type is not None and run_type not in self.run_types:
                log.info("Not pinging OpsGenie heartbeat for a %s run (run_types=%s)", run_type, sorted(self.run_types))
                return
            if task_level_holds_ping(context, log):
                return
            if not self.name and dag is None:
                raise HeartbeatValidationError("no heartbeat name given and no DAG in the context to name it after")
            env = self.get_template_env(dag=template_env_dag(dag))
            # ``dag_id`` is a shorthand here as for sync and the listener, so all three render one name.
            values: Any = {**context, "dag_id": getattr(dag, "dag_id", None)}

            def render(value: Any) -> Any:
                return self.render_template(value, values, env)

            name = str(render(self.name)) if self.name else str(getattr(dag, "dag_id", ""))
            check_fields(type(self).__name__, {"name": name}, required=("name",))
            delivery = run_delivery(
                self.heartbeat_declaration,
                name,
                "callback",
                dag,
                dag_run,
                render=render,
                ensure=self.ensure,
                check_exists=not self.ensure,
            )
            outcome = deliver_within(self.deadline, self._hook, delivery, started=started)
        except Exception as exc:
            outcome = DeliveryOutcome(str(name), error=exc)
        self._report(outcome, started)

    def _hook(self) -> Any:
        from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

        return OpsgenieHeartbeatHook(self.opsgenie_heartbeat_conn_id, time_budget=float(self.deadline))

    def _report(self, outcome: DeliveryOutcome, started: float) -> None:
        """Warn (or with ``raise_on_error``, raise) about what did not happen; never fail the run otherwise."""
        for error in (outcome.error, outcome.interval_error, outcome.after_ping_error):
            if error is not None and self.raise_on_error:
                raise error
        outcome.warn(started, after="ensure" if self.ensure else "check")


send_opsgenie_heartbeat = OpsgenieHeartbeatNotifier
