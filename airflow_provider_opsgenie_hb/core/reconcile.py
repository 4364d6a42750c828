"""Heartbeats as code: reconcile OpsGenie with the heartbeats that DAG files declare.

A DAG declares a heartbeat by having an :class:`OpsgenieHeartbeatNotifier` in its
``on_success_callback`` (the notifier's name, interval and alert settings are the
declaration), or by carrying the tag ``opsgenie-heartbeat`` (name from the
``[opsgenie_heartbeat] name_template`` option, interval from the schedule).

Ownership: a heartbeat this deployment manages carries the alert tag
``managed-by-airflow:<deployment>`` (``[opsgenie_heartbeat] deployment``) beside the user's
own tags. Sync never changes a heartbeat without it (``conflict``) unless told to adopt
it, and ``prune`` deletes only orphans that carry it - and only after a complete read of
the DAG folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_opsgenie_hb.api.errors import HeartbeatError
from airflow_provider_opsgenie_hb.api.schema import (
    LEGACY_OWNER_MARKER,
    MAX_ALERT_TAGS,
    Heartbeat,
    field_problems,
    is_marker,
)
from airflow_provider_opsgenie_hb.core.declaration import (
    DAG_TAG,
    DEFAULT_CONN_ID,
    DEFAULT_NAME_TEMPLATE,
    HeartbeatDeclaration,
    dag_declarations,
    deployment,
    listener_settings,
    owner_marker,
    paused_marker,
    render_for_dag,
)
from airflow_provider_opsgenie_hb.core.schedule import HeartbeatInterval, ScheduleIntervalError, shortest_interval

if TYPE_CHECKING:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

log = logging.getLogger(__name__)

HEARTBEAT_TAG = DAG_TAG
__all__ = ["DEFAULT_NAME_TEMPLATE", "HEARTBEAT_TAG", "SyncUsageError", "render_for_dag", "sync_heartbeats"]

_SYMBOLS = {
    "create": "+",
    "update": "~",
    "unchanged": "=",
    "conflict": "?",
    "orphaned": "-",
    "deleted": "-",
    "skipped": "!",
    "failed": "x",
}
_COUNTED = (
    ("create", "to create"),
    ("update", "to update"),
    ("unchanged", "unchanged"),
    ("conflict", "in conflict"),
    ("orphaned", "orphaned"),
    ("deleted", "deleted"),
    ("skipped", "skipped"),
    ("failed", "failed"),
)


class SyncUsageError(Exception):
    """The sync cannot start: a missing folder or connection, a bad option (exit code 2)."""


@dataclass
class PlanItem:
    """One line of the plan: what sync will do (or did) with one heartbeat."""

    action: str  # create, update, unchanged, conflict, orphaned, deleted, skipped, failed, elsewhere
    name: str
    dag_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    #: an orphan this deployment owns, which ``prune`` may delete
    prunable: bool = False
    #: ``interval="next_run"``: the runs set the interval. Sync creates the heartbeat with the
    #: longest gap, and lengthens only an interval shorter than ``runs_set_at_least``
    runs_set_interval: bool = False
    #: seconds: the shortest interval the runs of the current schedule set (None: not known)
    runs_set_at_least: int | None = None


@dataclass
class SyncPlan:
    items: list[PlanItem]
    applied: bool = False
    #: why deletions are not safe (files that failed to import, declarations not built, ...)
    prune_blockers: list[str] = field(default_factory=list)
    prune_refused: bool = False

    def count(self, action: str) -> int:
        return sum(1 for item in self.items if item.action == action)

    def render(self) -> str:
        width = max([len(item.name) for item in self.items] + [20])
        lines = [
            f"  {_SYMBOLS[item.action]} {item.name:<{width}}  {item.action:<9}  {_describe(item)}".rstrip()
            for item in self.items
        ]
        counts = ", ".join(
            f"{self.count(a)} {label}"
            for a, label in _COUNTED
            if self.count(a) or a in ("create", "update", "unchanged")
        )
        lines += ["", f"Plan: {counts}."]
        if self.prune_blockers:
            lines += ["", "Deleting orphans is not safe, the DAG folder was not read completely:"]
            lines += [f"  - {blocker}" for blocker in self.prune_blockers]
        return "\n".join(lines)


def _describe(item: PlanItem) -> str:
    notes = "".join(f"; {note}" for note in item.notes)
    if item.action == "create":
        origin = f" (DAG {item.dag_id})" if item.dag_id else ""
        return f"interval {item.fields['interval']} {item.fields['interval_unit']}{origin}{notes}"
    if item.action == "update":
        return "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in item.changed.items()) + notes
    if item.action == "orphaned":
        return "no DAG declares it any more" + (f"; {item.reason}" if item.reason else "; delete with --prune")
    return (item.reason + notes).lstrip("; ")


def declarations(dags: list[Any], *, conn_id: str, name_template: str | None = None) -> list[PlanItem]:
    """The heartbeats the DAGs declare, as ``create`` items for ``conn_id`` (compared with OpsGenie later).

    Declarations on other connections come back as ``elsewhere`` items: sync does not act on
    them, but their names are never orphans (another connection may reach the same account).
    A name declared twice with different settings is ``skipped`` the second time.
    """
    settings = listener_settings()
    if name_template is not None:
        settings = dataclasses.replace(settings, name_template=name_template)
    items: list[PlanItem] = []
    first: dict[str, PlanItem] = {}
    for dag in sorted(dags, key=lambda d: d.dag_id):
        for declaration in dag_declarations(dag, settings):
            item = _declaration(dag, declaration, here=declaration.conn_id == conn_id)
            earlier = first.setdefault(item.name, item)
            if earlier is item:
                items.append(item)
            elif item.action == "create" and earlier.action == "create" and item.fields != earlier.fields:
                item.action = "skipped"
                item.reason = f"DAG {earlier.dag_id} declares {item.name!r} too, with other settings"
                items.append(item)
    return items


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
        return PlanItem("skipped", name, dag.dag_id, reason=_problems(problems))
    item = PlanItem("create", name, dag.dag_id, fields=fields)
    if declaration.settings.follows_next_run:
        item.runs_set_interval = True
        item.notes.append("interval set by each run (next_run)")
        with contextlib.suppress(ScheduleIntervalError):
            item.runs_set_at_least = shortest_interval(dag, grace=declaration.settings.grace).seconds
    return item


def _problems(problems: Mapping[str, str]) -> str:
    return "; ".join(f"{k} {v}" for k, v in problems.items())


@dataclass(frozen=True)
class Ownership:
    """Whose heartbeats these are, and what sync may do to the others."""

    deployment: str
    #: take over existing heartbeats that this deployment does not manage
    adopt: bool = False
    #: put this deployment's marker on what it creates or updates (sync does; migrate copies tags as they are)
    mark: bool = True

    def owns(self, heartbeat: Heartbeat) -> bool:
        """Managed here: this deployment's marker, or the marker of earlier releases (upgraded when declared)."""
        tags = heartbeat.alert_tags
        return owner_marker(self.deployment) in tags or LEGACY_OWNER_MARKER in tags


def plan(
    hook: OpsgenieHeartbeatHook,
    declared: list[PlanItem],
    *,
    ownership: Ownership | None = None,
    orphans: bool = True,
    paused: Mapping[str, bool] | None = None,
) -> SyncPlan:
    """Compare the declarations with what the service has (one list call).

    ``paused`` maps DAG ids to their pause state in Airflow: given, the heartbeats of paused
    DAGs are disabled and those sync disabled are enabled again once their DAG is unpaused.
    """
    return compare(hook.list_heartbeats(), declared, ownership=ownership, orphans=orphans, paused=paused)


def compare(
    heartbeats: Iterable[Heartbeat],
    declared: list[PlanItem],
    *,
    ownership: Ownership | None = None,
    orphans: bool = True,
    paused: Mapping[str, bool] | None = None,
) -> SyncPlan:
    """The plan for the declarations against ``heartbeats``, the service's list (see :func:`plan`).

    The ``create`` items of ``declared`` become what it takes to bring each heartbeat in line.
    """
    ownership = ownership or Ownership(deployment())
    current: dict[str, Heartbeat] = {hb.name: hb for hb in heartbeats}
    items: list[PlanItem] = []
    for item in declared:
        if item.action == "create":
            _compare(item, current.get(item.name), ownership, paused)
        if item.action != "elsewhere":
            items.append(item)
    names = {item.name for item in declared}
    marker = owner_marker(ownership.deployment)
    for name, hb in sorted(current.items()):
        if not orphans or name in names:
            continue
        if marker in hb.alert_tags:
            items.append(PlanItem("orphaned", name, prunable=True))
        elif LEGACY_OWNER_MARKER in hb.alert_tags:
            reason = (
                f"carries {LEGACY_OWNER_MARKER!r}, the marker of earlier releases, which names no "
                "deployment: never pruned; delete it by hand if it is yours"
            )
            items.append(PlanItem("orphaned", name, reason=reason))
    return SyncPlan(items)


def _compare(
    item: PlanItem, existing: Heartbeat | None, ownership: Ownership, paused: Mapping[str, bool] | None
) -> None:
    """Turn a ``create`` item into what it takes to make ``existing`` match it."""
    if existing is None:
        fields = _new_fields(item, ownership, paused)
        problems = field_problems(fields)
        if problems:
            item.action, item.reason = "skipped", _problems(problems)
        else:
            item.fields = fields
        return
    fields = _updated_fields(item, existing, ownership, paused)
    problems = field_problems(fields)
    if problems:  # e.g. a heartbeat with 20 tags of its own and no room for the marker
        item.action, item.reason = "skipped", f"cannot be brought in line: {_problems(problems)}"
        return
    if item.runs_set_interval:
        _interval_the_runs_set(item, existing, fields)
    changed = existing.differences({k: v for k, v in fields.items() if k != "compare_interval"})
    if not fields.get("compare_interval", True):
        changed = {k: v for k, v in changed.items() if k not in ("interval", "interval_unit")}
    if changed and not ownership.owns(existing) and not ownership.adopt:
        markers = ", ".join(t for t in existing.alert_tags if is_marker(t)) or "no marker"
        item.action, item.notes = "conflict", []
        item.reason = (
            f"exists and is not managed by deployment {ownership.deployment!r} ({markers}): left unchanged; "
            "--adopt to manage it"
        )
        return
    item.fields = fields
    if changed:
        before = existing.to_dict()
        item.action = "update"
        item.changed = {k: (before.get(k), v) for k, v in changed.items()}
    else:
        item.action = "unchanged"


def _interval_the_runs_set(item: PlanItem, existing: Heartbeat, fields: dict[str, Any]) -> None:
    """``interval="next_run"``: leave the interval to the runs, unless it is shorter than any the
    current schedule's runs set - the schedule changed since the last run (say from daily to
    weekly), and the old interval would run out before the first run of the new one. Then the
    longest gap (the interval sync creates with), until that run sets its own. An interval the
    runs may have set is never touched: sync cannot tell a late run from anything else."""
    fields["compare_interval"] = False
    shortest = item.runs_set_at_least
    if shortest is not None and existing.interval_seconds < shortest:
        fields["compare_interval"] = True
        at_least = HeartbeatInterval.from_timedelta(datetime.timedelta(seconds=shortest))
        item.notes.append(f"the schedule changed: its runs set {at_least} at least")


def _new_fields(item: PlanItem, ownership: Ownership, paused: Mapping[str, bool] | None) -> dict[str, Any]:
    fields = dict(item.fields)
    tags = [*(fields["alert_tags"] or []), *([owner_marker(ownership.deployment)] if ownership.mark else [])]
    if paused and item.dag_id and paused.get(item.dag_id):
        fields["enabled"] = False
        tags.append(paused_marker(ownership.deployment))
        item.notes.append("disabled: its DAG is paused")
    fields["alert_tags"] = tags
    fields["enabled"] = True if fields["enabled"] is None else fields["enabled"]
    return fields


def _updated_fields(
    item: PlanItem, existing: Heartbeat, ownership: Ownership, paused: Mapping[str, bool] | None
) -> dict[str, Any]:
    fields = dict(item.fields)
    pause_marker = paused_marker(ownership.deployment)
    tags = fields["alert_tags"]
    if tags is None:  # not declared: the user's own alert tags stay
        tags = [t for t in existing.alert_tags if not is_marker(t)]
    # Adopted, or upgraded from the marker of earlier releases: this deployment's marker only.
    tags = [*tags, *([owner_marker(ownership.deployment)] if ownership.mark else [])]
    was_paused_here = pause_marker in existing.alert_tags
    dag_paused = bool(paused and item.dag_id and paused.get(item.dag_id))
    if paused is not None and dag_paused and existing.enabled:
        fields["enabled"] = False
        tags.append(pause_marker)
        item.notes.append("disabled: its DAG is paused")
    elif paused is not None and not dag_paused and was_paused_here:
        fields["enabled"] = True
        item.notes.append("enabled again: its DAG is no longer paused")
    elif was_paused_here:
        tags.append(pause_marker)
    if fields["enabled"] is None and not existing.enabled:
        item.notes.append("disabled (left alone)")
    fields["alert_tags"] = tags
    return fields


def apply(hook: OpsgenieHeartbeatHook, sync_plan: SyncPlan, *, prune: bool = False) -> SyncPlan:
    """Carry out the plan: creates and updates through the hook's bulk ensure; deletes with prune.

    Deletions happen only when the plan has no prune blockers; otherwise they are refused
    (``prune_refused``) and every other change still applies.
    """
    writes = [item for item in sync_plan.items if item.action in ("create", "update")]
    results = hook.ensure_heartbeats([item.fields for item in writes])
    for item, result in zip(writes, results, strict=True):
        if isinstance(result, HeartbeatError):
            item.action, item.reason = "failed", str(result)
        elif result.action == "unchanged":  # someone else made it match meanwhile
            item.action = "unchanged"
    orphans = [item for item in sync_plan.items if item.action == "orphaned" and item.prunable]
    if prune and orphans and sync_plan.prune_blockers:
        sync_plan.prune_refused = True
        for item in orphans:
            item.reason = "not deleted: the DAG folder was not read completely (see below)"
    elif prune:
        for item in orphans:
            try:
                hook.delete_heartbeat(item.name)
                item.action, item.reason = "deleted", "no DAG declares it any more (--prune)"
            except HeartbeatError as exc:
                item.action, item.reason = "failed", str(exc)
    sync_plan.applied = True
    return sync_plan


def load_dags(dags_folder: str | Path) -> tuple[list[Any], dict[str, str]]:
    """Parse a DAG folder (no scheduler, no metadata database): the DAGs and any import errors."""
    from airflow_provider_opsgenie_hb.version_compat import dag_bag

    bag = dag_bag(str(dags_folder))
    return list(bag.dags.values()), dict(bag.import_errors)


def paused_from_database(dag_ids: Collection[str]) -> dict[str, bool]:
    """The pause state of ``dag_ids`` from Airflow's metadata database (DAGs it does not know: absent)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(DagModel.dag_id, DagModel.is_paused).where(DagModel.dag_id.in_(list(dag_ids))))
        return {str(dag_id): bool(is_paused) for dag_id, is_paused in rows}


def sync_heartbeats(
    dags_folder: str | Path,
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

    Raises :class:`SyncUsageError` for a folder that does not exist, a connection that does
    not exist, or a bad ``[opsgenie_heartbeat] deployment``. ``paused_states`` (DAG ids ->
    {DAG id: paused}, e.g. :func:`paused_from_database`) turns on disabling the heartbeats
    of paused DAGs.
    """
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    folder = Path(dags_folder).expanduser()
    if not folder.is_dir():
        raise SyncUsageError(f"DAG folder {str(folder)!r} does not exist or is not a folder")
    try:
        ownership = Ownership(deployment(), adopt=adopt)
    except ValueError as exc:
        raise SyncUsageError(str(exc)) from None
    hook = OpsgenieHeartbeatHook(conn_id)
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
    result.prune_blockers = [f"{path} could not be imported: {_last_line(error)}" for path, error in errors.items()]
    result.prune_blockers += [
        f"DAG {item.dag_id}: the declaration of {item.name!r} could not be built ({item.reason})"
        for item in declared
        if item.action == "skipped"
    ]
    if not dags and not errors:
        result.prune_blockers.append(f"no DAG found in {str(folder)!r}")
    elif not [item for item in declared if item.action != "elsewhere"] and not allow_empty:
        result.prune_blockers.append("no DAG declares a heartbeat (--allow-empty to prune all the same)")
    return result if dry_run else apply(hook, result, prune=prune)


def _check_connection(hook: OpsgenieHeartbeatHook, conn_id: str) -> None:
    from airflow.providers.common.compat.sdk import AirflowNotFoundException

    try:
        hook.get_conn()
    except AirflowNotFoundException:
        raise SyncUsageError(f"connection {conn_id!r} does not exist") from None
    except HeartbeatError as exc:
        raise SyncUsageError(f"connection {conn_id!r}: {exc}") from None


def _last_line(text: str) -> str:
    """The line of a traceback that names the exception (``AirflowTaskTimeout: DagBag import
    timeout for ...``), not the advice that may follow it; else the last line."""
    lines = text.strip().splitlines()
    named = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return named[-1] if named else lines[-1] if lines else text


_EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]*(?::\s|$)")
