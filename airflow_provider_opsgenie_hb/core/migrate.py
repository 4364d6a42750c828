"""Move heartbeats from OpsGenie to Jira Service Management Operations.

Every heartbeat of the source connection is ensured in the target connection's team: its
interval, unit, description, alert message, tags and priority and its enabled state. A
heartbeat already there and equal is left alone, so the migration is safe to run twice. A
heartbeat already there that this deployment does not manage is reported as a conflict and
left unchanged, unless ``adopt`` (the same ownership rules as ``sync``).
"""

from __future__ import annotations

from airflow_provider_opsgenie_hb.api.schema import field_problems
from airflow_provider_opsgenie_hb.core.declaration import deployment
from airflow_provider_opsgenie_hb.core.reconcile import Ownership, PlanItem, SyncPlan, apply, plan
from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

# What travels. owner_team does not: on JSM the target connection's team owns the heartbeat.
MIGRATED_FIELDS = (
    "interval",
    "interval_unit",
    "enabled",
    "description",
    "alert_message",
    "alert_tags",
    "alert_priority",
)


def migrate_heartbeats(
    source_conn_id: str, target_conn_id: str, *, dry_run: bool = False, adopt: bool = False
) -> SyncPlan:
    """Plan (and unless ``dry_run``, carry out) the move; returns the plan with each outcome."""
    source = OpsgenieHeartbeatHook(source_conn_id)
    target = OpsgenieHeartbeatHook(target_conn_id)
    declared: list[PlanItem] = []
    for heartbeat in source.list_heartbeats():
        current = heartbeat.to_dict()
        fields = {"name": heartbeat.name, **{key: current[key] for key in MIGRATED_FIELDS}}
        problems = field_problems(fields)
        if problems:
            reason = "; ".join(f"{k} {v}" for k, v in problems.items())
            declared.append(PlanItem("skipped", heartbeat.name, reason=f"could not map: {reason}"))
            continue
        item = PlanItem("create", heartbeat.name, fields=fields)
        if heartbeat.owner_team:
            item.notes.append(f"owner team {heartbeat.owner_team} becomes the target connection's team")
        declared.append(item)
    # Tags travel as they are (with any ownership marker): nothing is marked on the way.
    ownership = Ownership(deployment(), adopt=adopt, mark=False)
    result = plan(target, declared, ownership=ownership, orphans=False)
    return result if dry_run else apply(target, result)
