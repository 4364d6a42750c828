"""Heartbeats as code: read a DAG folder's declarations, and reconcile OpsGenie with them.

A DAG declares a heartbeat by having a notifier in its ``on_success_callback`` (the notifier's
name, interval and alert settings are the declaration), or by carrying the tag
``opsgenie-heartbeat`` (name from ``[opsgenie_heartbeat] name_template``, interval from the
schedule). :func:`sync_heartbeats` reads the folder, plans (:mod:`.reconcile`) and applies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from airflow_provider_opsgenie_hb.api.errors import HeartbeatError
from airflow_provider_opsgenie_hb.api.schema import MAX_ALERT_TAGS, field_problems
from airflow_provider_opsgenie_hb.core.declaration import HeartbeatDeclaration, dag_declarations, render_for_dag
from airflow_provider_opsgenie_hb.core.ownership import Ownership
from airflow_provider_opsgenie_hb.core.reconcile import PlanItem, SyncPlan, apply, plan, problem_text
from airflow_provider_opsgenie_hb.core.schedule import ScheduleIntervalError, shortest_interval
from airflow_provider_opsgenie_hb.core.service import HeartbeatService
from airflow_provider_opsgenie_hb.settings import DEFAULT_CONN_ID, ListenerSettings, deployment, listener_settings


class SyncUsageError(Exception):
    """The sync cannot start: a missing folder or connection, a bad option (exit code 2)."""


def declarations(dags: list[Any], *, conn_id: str, name_template: str | None = None) -> list[PlanItem]:
    """The heartbeats the DAGs declare, as ``create`` items for ``conn_id`` (compared with OpsGenie later).

    Declarations on other connections come back as ``elsewhere`` items: sync does not act on
    them, but their names are never orphans (another connection may reach the same account).
    A name declared twice with different settings is ``skipped`` the second time.
    """
    settings = sync_settings(name_template)
    items: list[PlanItem] = []
    first: dict[str, PlanItem] = {}
    for dag in sorted(dags, key=lambda d: d.dag_id):
        for declaration in dag_declarations(dag, settings):
            item = _declaration(dag, declaration, here=declaration.conn_id == conn_id)
            item.by_listener = declaration.by_listener
            earlier = first.setdefault(item.name, item)
            if earlier is item:
                items.append(item)
            elif item.action == "create" and earlier.action == "create" and item.fields != earlier.fields:
                item.action = "skipped"
                item.reason = f"DAG {earlier.dag_id} declares {item.name!r} too, with other settings"
                items.append(item)
    return items


def sync_settings(name_template: str | None = None) -> ListenerSettings:
    """The listener settings sync reads the tagged DAGs with (``name_template`` overriding the configured one)."""
    settings = listener_settings()
    return settings if name_template is None else dataclasses.replace(settings, name_template=name_template)


def _declaration(dag: Any, declaration: HeartbeatDeclaration, *, here: bool = True) -> PlanItem:
    try:
        name = str(render_for_dag(declaration.name, dag))
    except Exception as exc:
        return PlanItem("skipped", declaration.name, dag.dag_id, reason=f"its name cannot be rendered: {exc}")
    if not here:
        return PlanItem("elsewhere", name, dag.dag_id, reason=f"declared on connection {declaration.conn_id!r}")
    try:
        fields = declaration.desired_fields(dag, name=name)
    except ScheduleIntervalError as exc:
        return PlanItem("skipped", name, dag.dag_id, reason=str(exc).split(": ", 1)[-1])
    except Exception as exc:
        return PlanItem("skipped", name, dag.dag_id, reason=f"its alert settings cannot be rendered: {exc}")
    room = MAX_ALERT_TAGS - 2
    if len(fields["alert_tags"] or ()) > room:
        reason = f"at most {room} alert tags: sync keeps 2 of OpsGenie's {MAX_ALERT_TAGS} for its markers"
        return PlanItem("skipped", name, dag.dag_id, reason=reason)
    problems = field_problems({**fields, "enabled": fields["enabled"] is not False})
    if problems:  # one bad declaration must not stop the others
        return PlanItem("skipped", name, dag.dag_id, reason=problem_text(problems))
    item = PlanItem("create", name, dag.dag_id, fields=fields)
    if declaration.follows_next_run:
        item.runs_set_interval, item.compare_interval = True, False
        item.notes.append("interval set by each run (next_run)")
        with contextlib.suppress(ScheduleIntervalError):
            item.runs_set_at_least = shortest_interval(dag, grace=getattr(declaration.interval, "grace", None)).seconds
    return item


def load_dags(dags_folder: str | Path) -> tuple[list[Any], dict[str, str]]:
    """Parse a DAG folder (no scheduler, no metadata database): the DAGs and any import errors."""
    from airflow_provider_opsgenie_hb.version_compat import dag_bag

    bag = dag_bag(str(dags_folder))
    return list(bag.dags.values()), dict(bag.import_errors)


def sync_heartbeats(
    dags_folder: str | Path,
    hook: HeartbeatService,
    *,
    conn_id: str = DEFAULT_CONN_ID,
    dry_run: bool = False,
    prune: bool = False,
    adopt: bool = False,
    allow_empty: bool = False,
    name_template: str | None = None,
    paused_states: Callable[[Collection[str]], Mapping[str, bool]] | None = None,
) -> SyncPlan:
    """Parse ``dags_folder``, plan, and (unless ``dry_run``) apply. Returns the plan.

    ``hook`` is the connection ``conn_id`` (the face builds it). Raises :class:`SyncUsageError`
    for a folder that does not exist, a connection that does not exist, or a bad
    ``[opsgenie_heartbeat] deployment``. ``paused_states`` (DAG ids -> {DAG id: paused}, e.g.
    :func:`~airflow_provider_opsgenie_hb.core.paused.paused_from_database`) turns on disabling
    the heartbeats of paused DAGs.
    """
    folder = Path(dags_folder).expanduser()
    if not folder.is_dir():
        raise SyncUsageError(f"DAG folder {str(folder)!r} does not exist or is not a folder")
    try:
        ownership = Ownership(deployment(), adopt=adopt)
    except ValueError as exc:
        raise SyncUsageError(str(exc)) from None
    _check_connection(hook, conn_id)
    dags, errors = load_dags(folder)
    declared = declarations(dags, conn_id=conn_id, name_template=name_template)
    paused = None
    if paused_states is not None:
        try:
            paused = paused_states([dag.dag_id for dag in dags])
        except Exception as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SyncUsageError(f"cannot read which DAGs are paused in Airflow: {first_line}") from None
    result = plan(hook, declared, ownership=ownership, paused=paused)
    result.prune_blockers = [f"{path} could not be imported: {exception_line(error)}" for path, error in errors.items()]
    result.prune_blockers += [
        f"DAG {item.dag_id}: the declaration of {item.name!r} could not be built ({item.reason})"
        for item in declared
        if item.action == "skipped"
    ]
    if not dags and not errors:
        result.prune_blockers.append(f"no DAG found in {str(folder)!r}")
    elif not [item for item in declared if item.action != "elsewhere"] and not allow_empty:
        result.prune_blockers.append(_nothing_declared(dags, conn_id))
    used, unrendered = names_operators_use(dags)
    result.prune_blockers += unrendered
    from airflow_provider_opsgenie_hb.core.declared import keep_orphans_no_sync_saw_declared, names_seen, publish

    seen, why_unseen = names_seen()
    here = None if seen is None else seen.get(conn_id, {})
    settings = sync_settings(name_template)
    keep_orphans_no_sync_saw_declared(result, here, folder_key(folder), settings, used, why_unseen=why_unseen)
    if dry_run:
        return result
    applied = apply(hook, result, prune=prune)
    # For Heartbeats pages on API servers without DAG files, and for the next prune.
    publish(folder, dags, errors, seen=seen, conn_id=conn_id, applied=applied, settings=settings)
    return applied


def folder_key(folder: str | Path) -> str:
    """A folder as prune records it: its absolute path, symlinks kept (git-sync swaps the worktree a
    symlinked folder points to, and that stays one folder)."""
    return os.path.abspath(folder)


#: the module of this provider's operators (core may not import them)
OPERATORS_MODULE = "airflow_provider_opsgenie_hb.operators.heartbeat"


def names_operators_use(dags: list[Any]) -> tuple[dict[str, str], list[str]]:
    """The heartbeat names this provider's operators in ``dags`` use (name -> which task), which prune never
    deletes: an ``OpsgenieEnsureHeartbeatOperator`` and a ping operator keep a heartbeat sync does not manage.
    Also what makes prune unsafe: a name that cannot be rendered without a run."""
    used: dict[str, str] = {}
    unrendered: list[str] = []
    for dag in dags:
        for task in getattr(dag, "tasks", None) or ():
            operator = getattr(task, "operator_class", None)  # a mapped task's (``.partial().expand()``)
            operator = operator if isinstance(operator, type) else type(task)
            if not any(c.__module__ == OPERATORS_MODULE for c in operator.__mro__):
                continue
            name = getattr(task, "name", None)
            if not isinstance(name, str):  # mapped: the names are known only at run time
                unrendered.append(f"DAG {dag.dag_id}: task {task.task_id} names its heartbeats only when it runs")
                continue
            try:
                used.setdefault(str(render_for_dag(name, dag)), f"task {task.task_id} of DAG {dag.dag_id}")
            except Exception:
                unrendered.append(
                    f"DAG {dag.dag_id}: task {task.task_id} names its heartbeat {name!r}, which needs a run to render"
                )
    return used, unrendered


def _nothing_declared(dags: list[Any], conn_id: str) -> str:
    """Why nothing is declared on ``conn_id``: no declaration at all, or declarations on other
    connections (named, with those that do not exist said so: a typo in a DAG, most likely)."""
    others = sorted({d.conn_id for dag in dags for d in dag_declarations(dag)} - {conn_id})
    if not others:
        return "no DAG declares a heartbeat (--allow-empty to prune all the same)"
    named = ", ".join(f"{other!r}" + ("" if _defined(other) else " (not defined)") for other in others)
    return (
        f"no DAG declares a heartbeat on connection {conn_id!r}; the DAGs name {named} "
        "(--conn-id to sync those, --allow-empty to prune all the same)"
    )


def _defined(conn_id: str) -> bool:
    from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    return True


def _check_connection(hook: HeartbeatService, conn_id: str) -> None:
    from airflow.providers.common.compat.sdk import AirflowNotFoundException

    try:
        hook.account_fingerprint()  # reads the connection and builds the client
    except AirflowNotFoundException:
        raise SyncUsageError(f"connection {conn_id!r} does not exist") from None
    except HeartbeatError as exc:
        raise SyncUsageError(f"connection {conn_id!r}: {exc}") from None


def exception_line(text: str) -> str:
    """The line of a traceback that names the exception (``AirflowTaskTimeout: DagBag import
    timeout for ...``), not the advice that may follow it; else the last line."""
    lines = text.strip().splitlines()
    named = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return named[-1] if named else lines[-1] if lines else text


_EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]*(?::\s|$)")
