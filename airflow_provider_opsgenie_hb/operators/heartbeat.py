"""One operator per heartbeat operation, plus an idempotent ensure (create or update).

Each operator is thin: check its arguments when the DAG is parsed (templated values after
rendering), call :class:`OpsgenieHeartbeatHook`, return a JSON-serialisable dict for XCom.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_opsgenie_hb.api.errors import HeartbeatForbiddenError, HeartbeatNotFoundError
from airflow_provider_opsgenie_hb.api.schema import CONFIG_FIELDS, REQUIRED_ON_CREATE, check_fields
from airflow_provider_opsgenie_hb.core.declaration import (
    DECLARED_FIELDS,
    HeartbeatDeclaration,
    declaration_problems,
    interval_policy,
)
from airflow_provider_opsgenie_hb.core.ownership import owner_marker
from airflow_provider_opsgenie_hb.settings import DEFAULT_CONN_ID, DEFAULT_RUN_TYPES

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

log = logging.getLogger(__name__)


class _ConnectionOperator(BaseOperator):
    """Shared plumbing: the connection id and the hook built from it."""

    template_fields: Sequence[str] = ("opsgenie_heartbeat_conn_id",)
    ui_color = "#e8f0fe"

    def __init__(self, *, opsgenie_heartbeat_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.opsgenie_heartbeat_conn_id = opsgenie_heartbeat_conn_id

    @cached_property
    def hook(self) -> OpsgenieHeartbeatHook:
        from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

        return OpsgenieHeartbeatHook(self.opsgenie_heartbeat_conn_id)


class _HeartbeatOperator(_ConnectionOperator):
    """An operator on one named heartbeat: the name, and the field checks."""

    template_fields: Sequence[str] = ("name", "opsgenie_heartbeat_conn_id")

    def __init__(self, *, name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name = name
        self._check({"name": name}, required=("name",), skip_templates=True)

    def _check(
        self,
        fields: dict[str, Any],
        *,
        required: tuple[str, ...] = (),
        skip_templates: bool = False,
        problems: dict[str, str] | None = None,
    ) -> None:
        check_fields(
            f"{type(self).__name__} {self.task_id!r}",
            fields,
            required=required,
            skip_templates=skip_templates,
            extra_problems=problems,
        )


class _ConfiguredHeartbeatOperator(_HeartbeatOperator):
    """An operator that takes a heartbeat's fields as keywords (all templated): those of
    :data:`~airflow_provider_opsgenie_hb.api.schema.FIELDS`, ``None`` meaning not given."""

    template_fields: Sequence[str] = ("name", "opsgenie_heartbeat_conn_id", *CONFIG_FIELDS)
    _required: tuple[str, ...] = ("name",)

    def __init__(self, *, name: str, **kwargs: Any) -> None:
        for key in CONFIG_FIELDS:
            setattr(self, key, kwargs.pop(key, None))
        super().__init__(name=name, **kwargs)
        self._check(self.fields(), required=self._required, skip_templates=True)

    def fields(self) -> dict[str, Any]:
        """The fields as snake_case keywords (``None`` = not given)."""
        return {"name": self.name, **{key: getattr(self, key) for key in CONFIG_FIELDS}}


class OpsgenieCreateHeartbeatOperator(_ConfiguredHeartbeatOperator):
    """Create a heartbeat; fails if one of that name exists (use the ensure operator to upsert).

    :param name: the heartbeat's name (templated, like every field below).
    :param interval: how long without a ping before it expires; a whole number >= 1.
    :param interval_unit: ``minutes``, ``hours`` or ``days``.
    :param enabled: whether it starts enabled (default true).
    :param description: up to 10,000 characters.
    :param owner_team: the owning team: a name, or ``{"id": ...}`` / ``{"name": ...}``.
    :param alert_message: the expiry alert's message (up to 130 characters).
    :param alert_tags: the expiry alert's tags (up to 20, each up to 50 characters).
    :param alert_priority: ``P1``..``P5`` (OpsGenie's default is ``P3``).
    :param opsgenie_heartbeat_conn_id: the ``opsgenie_heartbeat`` connection.
    :return: the created heartbeat as a dict.
    """

    _required = REQUIRED_ON_CREATE

    def __init__(self, *, enabled: bool = True, **kwargs: Any) -> None:
        super().__init__(enabled=enabled, **kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        self._check(self.fields(), required=self._required)
        return self.hook.create_heartbeat(**self.fields()).to_dict()


class OpsgenieEnsureHeartbeatOperator(_HeartbeatOperator):
    """Create the heartbeat, or update it to match; does nothing when it already matches.

    Follows the ownership rule of every face: what it creates carries this deployment's marker
    (``managed-by-airflow:<deployment>``), and a heartbeat without it (made by hand, or another
    deployment's) is left unchanged and reported as ``conflict`` unless ``adopt=True``.

    :param name: the heartbeat's name (templated, like every field).
    :param interval: with ``interval_unit``, the interval; by default derived from the DAG's
        schedule (longest gap plus ``grace``). ``"next_run"``: created with the derived interval,
        which the runs then set (see the callback's ``interval="next_run"``); never compared.
    :param grace: extra time on top of a derived interval.
    :param adopt: take over (and mark) an existing heartbeat this deployment does not manage.
    :param fields: the other fields, as for :class:`OpsgenieCreateHeartbeatOperator`; ``None``
        is not compared. ``enabled`` defaults to true; ``None`` leaves the enabled state alone.
    :param opsgenie_heartbeat_conn_id: the ``opsgenie_heartbeat`` connection.
    :return: ``{"action": "created" | "updated" | "unchanged" | "conflict", "name": ..., "changed": {...}}``.
    """

    template_fields: Sequence[str] = (
        "name",
        "opsgenie_heartbeat_conn_id",
        "interval",
        "interval_unit",
        *DECLARED_FIELDS,
    )

    def __init__(
        self,
        *,
        name: str,
        interval: int | str | None = None,
        interval_unit: str | None = None,
        grace: datetime.timedelta | None = None,
        adopt: bool = False,
        enabled: bool | None = True,
        **kwargs: Any,
    ) -> None:
        fields = {"enabled": enabled, **{key: kwargs.pop(key, None) for key in DECLARED_FIELDS if key != "enabled"}}
        for key, value in fields.items():
            setattr(self, key, value)
        super().__init__(name=name, **kwargs)
        self.interval = interval
        self.interval_unit = interval_unit
        self.grace = grace
        self.adopt = adopt
        problems = declaration_problems(
            name=name,
            conn_id=self.opsgenie_heartbeat_conn_id,
            run_types=DEFAULT_RUN_TYPES,
            interval=interval,
            interval_unit=interval_unit,
            grace=grace,
            fields=fields,
            marked=True,
        )
        if not isinstance(adopt, bool):
            problems["adopt"] = f"must be True or False, got {adopt!r}"
        self._check({}, problems=problems)

    def execute(self, context: Context) -> dict[str, Any]:
        declaration = HeartbeatDeclaration(
            name=self.name,
            conn_id=self.opsgenie_heartbeat_conn_id,
            interval=interval_policy(self.interval, self.interval_unit, self.grace),
            fields={key: getattr(self, key) for key in DECLARED_FIELDS},
        )
        fields = declaration.desired_fields(context["dag"], name=self.name, render=lambda value: value)
        self._check(fields, required=("name", "interval", "interval_unit"))  # enabled=None leaves it alone
        result = self.hook.ensure_heartbeat(
            policy=declaration.ensure_policy(owner_marker(), adopt=self.adopt), **fields
        )
        if result.action == "conflict":
            log.warning(
                "Heartbeat %r exists without this deployment's marker (made by hand, or another deployment's): "
                "left unchanged (it differs in %s). Pass adopt=True to manage it.",
                result.name,
                ", ".join(sorted(result.changed)),
            )
        else:
            log.info(
                "Heartbeat %r %s %s (interval %s %s)",
                result.name,
                result.action,
                result.changed or "",
                fields["interval"],
                fields["interval_unit"],
            )
        return result.to_dict()


class OpsgenieUpdateHeartbeatOperator(_ConfiguredHeartbeatOperator):
    """Change the given fields of a heartbeat; the others stay as they are.

    Takes the same parameters as :class:`OpsgenieCreateHeartbeatOperator`, all optional but
    at least one.

    :return: ``{"name", "enabled", "expired"}`` as OpsGenie answers.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not any(v is not None for k, v in self.fields().items() if k != "name"):
            self._check({}, problems={"fields": "give at least one field to change"})

    def execute(self, context: Context) -> dict[str, Any]:
        changes = {k: v for k, v in self.fields().items() if k != "name" and v is not None}
        self._check({"name": self.name, **changes}, required=("name",))
        return self.hook.update_heartbeat(self.name, **changes).to_dict()


class OpsgenieGetHeartbeatOperator(_HeartbeatOperator):
    """Read one heartbeat.

    :param name: the heartbeat's name (templated).
    :param opsgenie_heartbeat_conn_id: the ``opsgenie_heartbeat`` connection.
    :return: the heartbeat as a dict (``last_ping_time`` as ISO-8601 UTC).
    """

    def execute(self, context: Context) -> dict[str, Any]:
        return self.hook.get_heartbeat(self.name).to_dict()


class OpsgenieListHeartbeatsOperator(_ConnectionOperator):
    """List every heartbeat of the account.

    :param opsgenie_heartbeat_conn_id: the ``opsgenie_heartbeat`` connection.
    :return: a list of heartbeat dicts.
    """

    def execute(self, context: Context) -> list[dict[str, Any]]:
        return [hb.to_dict() for hb in self.hook.list_heartbeats()]


class OpsgenieDeleteHeartbeatOperator(_HeartbeatOperator):
    """Delete a heartbeat.

    :param name: the heartbeat's name (templated).
    :param missing_ok: succeed when there is no such heartbeat (idempotent clean-up).
    :param opsgenie_heartbeat_conn_id: the ``opsgenie_heartbeat`` connection.
    :return: ``{"name", "deleted"}`` - ``deleted`` is false when it was already gone.
    """

    def __init__(self, *, missing_ok: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.missing_ok = missing_ok

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            self.hook.delete_heartbeat(self.name)
        except HeartbeatNotFoundError:
            if not self.missing_ok:
                raise
            log.info("Heartbeat %r does not exist; nothing to delete (missing_ok)", self.name)
            return {"name": self.name, "deleted": False}
        return {"name": self.name, "deleted": True}


class OpsgenieEnableHeartbeatOperator(_HeartbeatOperator):
    """Enable a heartbeat (its countdown starts again; an expired one stays expired until pinged).

    :param name: the heartbeat's name (templated).
    :param opsgenie_heartbeat_conn_id: the ``opsgenie_heartbeat`` connection.
    :return: ``{"name", "enabled", "expired"}``.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        return self.hook.enable_heartbeat(self.name).to_dict()


class OpsgenieDisableHeartbeatOperator(_HeartbeatOperator):
    """Disable a heartbeat, e.g. for a maintenance window: it will not expire meanwhile.

    :param name: the heartbeat's name (templated).
    :param missing_ok: succeed when there is no such heartbeat.
    :param opsgenie_heartbeat_conn_id: the ``opsgenie_heartbeat`` connection.
    :return: ``{"name", "enabled", "expired"}``, or ``{"name", "missing": true}``.
    """

    def __init__(self, *, missing_ok: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.missing_ok = missing_ok

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            return self.hook.disable_heartbeat(self.name).to_dict()
        except HeartbeatNotFoundError:
            if not self.missing_ok:
                raise
            log.info("Heartbeat %r does not exist; nothing to disable (missing_ok)", self.name)
            return {"name": self.name, "missing": True}


class OpsgeniePingHeartbeatOperator(_HeartbeatOperator):
    """Ping a heartbeat.

    OpsGenie accepts a ping for a heartbeat that does not exist, so by default the
    operator first checks that it exists and fails if not (skipped for ping-only keys).

    :param name: the heartbeat's name (templated).
    :param check_exists: fail when the heartbeat does not exist (default true).
    :param opsgenie_heartbeat_conn_id: the ``opsgenie_heartbeat`` connection.
    :return: ``{"result", "request_id"}`` as OpsGenie answers.
    """

    def __init__(self, *, check_exists: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check_exists = check_exists

    def execute(self, context: Context) -> dict[str, Any]:
        if self.check_exists:
            try:
                self.hook.get_heartbeat(self.name)
            except HeartbeatForbiddenError:
                log.info("The key may only ping: not checking that %r exists", self.name)
        return self.hook.ping_heartbeat(self.name).to_dict()


class OpsgenieSyncHeartbeatsOperator(_ConnectionOperator):
    """Reconcile OpsGenie with the heartbeats the DAG files declare (see ``opsgenie-heartbeat sync``).

    :param dags_folder: the folder of DAG files to read (templated; default: Airflow's DAGs folder).
    :param dry_run: plan only; change nothing.
    :param prune: delete orphaned heartbeats this deployment manages (never others), only after
        every DAG file was read.
    :param adopt: manage existing heartbeats this deployment does not manage yet.
    :param allow_empty: let ``prune`` run when no DAG declares a heartbeat.
    :param paused: ``"disable"``: disable the heartbeats of DAGs paused in Airflow, and enable
        them again once the DAGs are unpaused (pause states read through Airflow's REST API; on
        Airflow 2, from the metadata database).
    :param airflow_api_conn_id: with ``paused`` on Airflow 3, an ``http`` connection to Airflow's API server.
    :param opsgenie_heartbeat_conn_id: the ``opsgenie_heartbeat`` connection.
    :return: heartbeat names by outcome: ``created``, ``updated``, ``unchanged``, ``conflict``,
        ``orphaned``, ``deleted``, ``skipped`` (with ``dry_run``: ``create`` and ``update``, the plan).
    :raises RuntimeError: when a change failed or prune was refused (the plan is logged).
    """

    template_fields: Sequence[str] = ("dags_folder", "opsgenie_heartbeat_conn_id")

    def __init__(
        self,
        *,
        dags_folder: str | None = None,
        dry_run: bool = False,
        prune: bool = False,
        adopt: bool = False,
        allow_empty: bool = False,
        paused: str | None = None,
        airflow_api_conn_id: str = "airflow_api",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if paused not in (None, "disable"):
            raise ValueError(f"{type(self).__name__}: paused must be None or 'disable', got {paused!r}")
        self.dags_folder = dags_folder
        self.plan_only = dry_run  # BaseOperator.dry_run is a method
        self.prune = prune
        self.adopt = adopt
        self.allow_empty = allow_empty
        self.paused = paused
        self.airflow_api_conn_id = airflow_api_conn_id

    def execute(self, context: Context) -> dict[str, list[str]]:
        from airflow.providers.common.compat.sdk import conf

        from airflow_provider_opsgenie_hb.core.paused import paused_from_api, paused_from_database
        from airflow_provider_opsgenie_hb.core.sync import sync_heartbeats
        from airflow_provider_opsgenie_hb.version_compat import tasks_read_the_database

        folder = self.dags_folder or conf.get("core", "dags_folder")
        paused_states: Callable[[Collection[str]], Mapping[str, bool]] | None = None
        if self.paused:
            paused_states = (
                paused_from_database
                if tasks_read_the_database()
                else (lambda ids: paused_from_api(self.airflow_api_conn_id, ids))
            )
        plan = sync_heartbeats(
            folder,
            self.hook,
            conn_id=self.opsgenie_heartbeat_conn_id,
            dry_run=self.plan_only,
            prune=self.prune,
            adopt=self.adopt,
            allow_empty=self.allow_empty,
            paused_states=paused_states,
        )
        log.info("Heartbeat sync of %s:\n%s", folder, plan.render())
        done = {"create": "created", "update": "updated"} if plan.applied else {}
        summary: dict[str, list[str]] = {}
        for item in plan.items:
            summary.setdefault(done.get(item.action, item.action), []).append(item.name)
        if plan.count("failed"):
            raise RuntimeError(f"heartbeat sync failed for {summary['failed']}; see the plan above")
        if plan.prune_refused:
            raise RuntimeError("heartbeat sync refused to prune: the DAG folder was not read completely; see above")
        return summary
