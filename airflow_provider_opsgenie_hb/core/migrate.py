"""Move heartbeats from OpsGenie to Jira Service Management Operations.

Every heartbeat of the source connection is ensured in the target connection's team: its
interval, unit, description, alert message, tags and priority and its enabled state. A
heartbeat already there and equal is left alone, so the migration is safe to run twice. A
heartbeat already there that this deployment does not manage is reported as a conflict and
left unchanged, unless ``adopt`` (the same ownership rules as ``sync``).
"""

from __future__ import annotations

from airflow_provider_opsgenie_hb.api.schema import CONFIG_FIELDS, field_problems
from airflow_provider_opsgenie_hb.core.ownership import Ownership
from airflow_provider_opsgenie_hb.core.reconcile import PlanItem, SyncPlan, apply, plan, problem_text
from airflow_provider_opsgenie_hb.core.service import HeartbeatService
from airflow_provider_opsgenie_hb.settings import deployment

# What travels: every field but owner_team (on JSM the target connection's team owns the heartbeat).
MIGRATED_FIELDS = tuple(key for key in CONFIG_FIELDS if key != "owner_team")


def migrate_heartbeats(
    source: HeartbeatService, target: HeartbeatService, *, dry_run: bool = False, adopt: bool = False
) -> SyncPlan:
    """Plan (and unless ``dry_run``, carry out) the move from ``source`` to ``target`` (the hooks of
    the two connections); returns the plan with each outcome."""
    declared: list[PlanItem] = []
    for heartbeat in source.list_heartbeats():
        current = heartbeat.to_dict()
        fields = {"name": heartbeat.name, **{key: current[key] for key in MIGRATED_FIELDS}}
        problems = field_problems(fields)
        if problems:
            declared.append(PlanItem("skipped", heartbeat.name, reason=f"could not map: {problem_text(problems)}"))
            continue
        item = PlanItem("create", heartbeat.name, fields=fields)
        if heartbeat.owner_team:
            item.notes.append(f"owner team {heartbeat.owner_team} becomes the target connection's team")
        declared.append(item)
    # Tags travel as they are (with any ownership marker): nothing is marked on the way.
    ownership = Ownership(deployment(), adopt=adopt, mark=False)
    result = plan(target, declared, ownership=ownership, orphans=False)
    return result if dry_run else apply(target, result)
