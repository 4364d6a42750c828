"""Reconcile: compare declared heartbeats with what the service holds, and apply the difference.

:func:`compare` turns each declared heartbeat (a ``create`` :class:`PlanItem`) into what it
takes to bring the service in line - ``create``, ``update``, ``unchanged``, ``conflict`` - and
lists the ``orphaned`` heartbeats this deployment manages that nothing declares any more;
:func:`apply` carries the plan out. Ownership: sync never changes a heartbeat without this
deployment's marker (``conflict``) unless told to adopt it, and deletes only orphans that
carry it, only with ``prune`` and only after a complete read of the DAG folder.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_opsgenie_hb.api.client import EnsureRequest
from airflow_provider_opsgenie_hb.api.errors import HeartbeatError
from airflow_provider_opsgenie_hb.api.policy import LEGACY_OWNER_MARKER, EnsurePolicy, is_marker
from airflow_provider_opsgenie_hb.api.schema import Heartbeat, field_problems
from airflow_provider_opsgenie_hb.core.ownership import Ownership, owner_marker, paused_marker
from airflow_provider_opsgenie_hb.core.schedule import HeartbeatInterval
from airflow_provider_opsgenie_hb.settings import deployment

if TYPE_CHECKING:
    from airflow_provider_opsgenie_hb.core.service import HeartbeatService

log = logging.getLogger(__name__)


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
    #: declared by the listener (a tagged DAG), not by a notifier
    by_listener: bool = False
    #: ``interval="next_run"``: the runs set the interval. Sync creates the heartbeat with the
    #: longest gap, and lengthens only an interval shorter than ``runs_set_at_least``
    runs_set_interval: bool = False
    #: seconds: the shortest interval the runs of the current schedule set (None: not known)
    runs_set_at_least: int | None = None
    #: compare (and set) the interval: False where the runs set it (``runs_set_interval``), unless it
    #: is shorter than any the current schedule's runs set
    compare_interval: bool = True


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
        return "no DAG declares it" + (f"; {item.reason}" if item.reason else " any more; delete with --prune")
    return (item.reason + notes).lstrip("; ")


def problem_text(problems: Mapping[str, str]) -> str:
    return "; ".join(f"{k} {v}" for k, v in problems.items())


def plan(
    hook: HeartbeatService,
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
            item.action, item.reason = "skipped", problem_text(problems)
        else:
            item.fields = fields
        return
    fields = _updated_fields(item, existing, ownership, paused)
    problems = field_problems(fields)
    if problems:  # e.g. a heartbeat with 20 tags of its own and no room for the marker
        item.action, item.reason = "skipped", f"cannot be brought in line: {problem_text(problems)}"
        return
    if item.runs_set_interval:
        _interval_the_runs_set(item, existing)
    changed = existing.differences(fields)
    if not item.compare_interval:
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


def _interval_the_runs_set(item: PlanItem, existing: Heartbeat) -> None:
    """``interval="next_run"``: leave the interval to the runs, unless it is shorter than any the
    current schedule's runs set - the schedule changed since the last run (say from daily to
    weekly), and the old interval would run out before the first run of the new one. Then the
    longest gap (the interval sync creates with), until that run sets its own. An interval the
    runs may have set is never touched: sync cannot tell a late run from anything else."""
    item.compare_interval = False
    shortest = item.runs_set_at_least
    if shortest is not None and existing.interval_seconds < shortest:
        item.compare_interval = True
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


def apply(hook: HeartbeatService, sync_plan: SyncPlan, *, prune: bool = False) -> SyncPlan:
    """Carry out the plan: creates and updates through the hook's bulk ensure; deletes with prune.

    Deletions happen only when the plan has no prune blockers; otherwise they are refused
    (``prune_refused``) and every other change still applies.
    """
    writes = [item for item in sync_plan.items if item.action in ("create", "update")]
    # Ownership was settled by the plan: the fields carry the marker, and the policy only says
    # whether the interval is the runs' to set.
    requests = [EnsureRequest(item.fields, EnsurePolicy(compare_interval=item.compare_interval)) for item in writes]
    results = hook.ensure_heartbeats(requests)
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
