"""Heartbeats as code: reconcile OpsGenie with the heartbeats that DAG files declare.

A DAG declares a heartbeat by having an :class:`OpsgenieHeartbeatNotifier` in its
``on_success_callback`` (the notifier's name, interval and alert settings are the
declaration), or by carrying the tag ``opsgenie-heartbeat`` (name from the
``[opsgenie_heartbeat] name_template`` option, interval from the schedule). Heartbeats
that sync creates carry the alert tag :data:`MANAGED_TAG`, so ``prune`` deletes only
orphaned heartbeats that it manages, never others.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_opsgenie_hb.declaration import (
    DAG_TAG,
    DEFAULT_NAME_TEMPLATE,
    HeartbeatDeclaration,
    dag_declarations,
    listener_settings,
    render_for_dag,
)
from airflow_provider_opsgenie_hb.errors import HeartbeatError
from airflow_provider_opsgenie_hb.models import MAX_ALERT_TAGS, Heartbeat, field_problems
from airflow_provider_opsgenie_hb.schedule import ScheduleIntervalError

if TYPE_CHECKING:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

log = logging.getLogger(__name__)

HEARTBEAT_TAG = DAG_TAG
MANAGED_TAG = "managed-by-airflow-heartbeat-sync"
__all__ = ["DEFAULT_NAME_TEMPLATE", "HEARTBEAT_TAG", "MANAGED_TAG", "render_for_dag", "sync_heartbeats"]


@dataclass
class PlanItem:
    """One line of the plan: what sync will do (or did) with one heartbeat."""

    action: str  # create, update, unchanged, orphaned, deleted, skipped, failed
    name: str
    dag_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    reason: str = ""


@dataclass
class SyncPlan:
    items: list[PlanItem]
    applied: bool = False

    def count(self, action: str) -> int:
        return sum(1 for item in self.items if item.action == action)

    def render(self) -> str:
        symbols = {
            "create": "+",
            "update": "~",
            "unchanged": "=",
            "orphaned": "-",
            "deleted": "-",
            "skipped": "!",
            "failed": "x",
        }
        width = max([len(item.name) for item in self.items] + [20])
        lines = []
        for item in self.items:
            lines.append(f"  {symbols[item.action]} {item.name:<{width}}  {item.action:<9}  {_describe(item)}".rstrip())
        counts = ", ".join(
            f"{self.count(a)} {label}"
            for a, label in (
                ("create", "to create"),
                ("update", "to update"),
                ("unchanged", "unchanged"),
                ("orphaned", "orphaned"),
                ("deleted", "deleted"),
                ("skipped", "skipped"),
                ("failed", "failed"),
            )
            if self.count(a) or a in ("create", "update", "unchanged")
        )
        lines += ["", f"Plan: {counts}."]
        return "\n".join(lines)


def _describe(item: PlanItem) -> str:
    if item.action == "create":
        origin = f" (DAG {item.dag_id})" if item.dag_id else ""
        note = f"; {item.reason}" if item.reason else ""
        return f"interval {item.fields['interval']} {item.fields['interval_unit']}{origin}{note}"
    if item.action == "update":
        return "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in item.changed.items())
    if item.action == "orphaned":
        return "no DAG declares it any more" + ("" if item.reason else "; delete with --prune")
    return item.reason


def declarations(dags: list[Any], *, conn_id: str, name_template: str | None = None) -> list[PlanItem]:
    """The heartbeats the DAGs declare on ``conn_id``, as ``create`` items (compared with OpsGenie later)."""
    settings = listener_settings()
    if name_template is not None:
        settings = dataclasses.replace(settings, name_template=name_template)
    declared: dict[str, PlanItem] = {}
    for dag in sorted(dags, key=lambda d: d.dag_id):
        for declaration in dag_declarations(dag, settings):
            if declaration.conn_id != conn_id:
                continue  # declared for another connection: a sync of that connection handles it
            item = _declaration(dag, declaration)
            if item.name not in declared:
                declared[item.name] = item
    return list(declared.values())


def _declaration(dag: Any, declaration: HeartbeatDeclaration) -> PlanItem:
    try:
        name = str(render_for_dag(declaration.name, dag))
    except Exception as exc:
        return PlanItem("skipped", declaration.name, dag.dag_id, reason=f"its name cannot be rendered: {exc}")
    try:
        fields = declaration.desired_fields(dag, name=name)
    except ScheduleIntervalError as exc:
        return PlanItem("skipped", name, dag.dag_id, reason=str(exc).split(": ", 1)[-1])
    except Exception as exc:
        return PlanItem("skipped", name, dag.dag_id, reason=f"its alert settings cannot be rendered: {exc}")
    tags = fields["alert_tags"] or []
    fields["alert_tags"] = [*tags, MANAGED_TAG] if MANAGED_TAG not in tags else tags
    if len(fields["alert_tags"]) > MAX_ALERT_TAGS:
        return PlanItem("skipped", name, dag.dag_id, reason=f"no room for the sync marker tag in {MAX_ALERT_TAGS} tags")
    problems = field_problems(fields)
    if problems:  # one bad declaration must not stop the others
        return PlanItem("skipped", name, dag.dag_id, reason="; ".join(f"{k} {v}" for k, v in problems.items()))
    return PlanItem("create", name, dag.dag_id, fields=fields)


def plan(hook: OpsgenieHeartbeatHook, declared: list[PlanItem], *, orphans: bool = True) -> SyncPlan:
    """Compare the declarations with what the service has (one list call)."""
    current: dict[str, Heartbeat] = {hb.name: hb for hb in hook.list_heartbeats()}
    items: list[PlanItem] = []
    for item in declared:
        existing = current.get(item.name)
        if item.action == "create" and existing is not None:
            changed = existing.differences(item.fields)
            if changed:
                before = existing.to_dict()
                item.action = "update"
                item.changed = {k: (before.get(k), v) for k, v in changed.items()}
            else:
                item.action = "unchanged"
        items.append(item)
    names = {item.name for item in declared}
    for name, hb in sorted(current.items()):
        if orphans and name not in names and MANAGED_TAG in hb.alert_tags:
            items.append(PlanItem("orphaned", name))
    return SyncPlan(items)


def apply(hook: OpsgenieHeartbeatHook, sync_plan: SyncPlan, *, prune: bool = False) -> SyncPlan:
    """Carry out the plan: creates and updates through the hook's bulk ensure; deletes with prune."""
    writes = [item for item in sync_plan.items if item.action in ("create", "update")]
    results = hook.ensure_heartbeats([item.fields for item in writes])
    for item, result in zip(writes, results, strict=True):
        if isinstance(result, HeartbeatError):
            item.action, item.reason = "failed", str(result)
        elif result.action == "unchanged":  # someone else made it match meanwhile
            item.action = "unchanged"
    if prune:
        for item in sync_plan.items:
            if item.action == "orphaned":
                try:
                    hook.delete_heartbeat(item.name)
                    item.action, item.reason = "deleted", "no DAG declares it any more (--prune)"
                except HeartbeatError as exc:
                    item.action, item.reason = "failed", str(exc)
    sync_plan.applied = True
    return sync_plan


def load_dags(dags_folder: str | Path) -> tuple[list[Any], dict[str, str]]:
    """Parse a DAG folder (no scheduler, no metadata database): the DAGs and any import errors."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder))
    return list(bag.dags.values()), dict(bag.import_errors)


def sync_heartbeats(
    dags_folder: str | Path,
    *,
    conn_id: str = "opsgenie_heartbeat_default",
    dry_run: bool = False,
    prune: bool = False,
    name_template: str | None = None,
) -> SyncPlan:
    """Parse ``dags_folder``, plan, and (unless ``dry_run``) apply. Returns the plan."""
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    dags, errors = load_dags(dags_folder)
    for path, error in errors.items():
        log.warning("DAG file %s could not be imported and is left out of the sync: %s", path, error)
    declared = declarations(dags, conn_id=conn_id, name_template=name_template)
    hook = OpsgenieHeartbeatHook(conn_id)
    result = plan(hook, declared)
    return result if dry_run else apply(hook, result, prune=prune)
