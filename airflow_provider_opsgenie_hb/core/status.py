"""Status: what the DAGs declare against what OpsGenie holds, and the scheduled DAGs no heartbeat watches.

The same comparison sync makes (:func:`~airflow_provider_opsgenie_hb.core.reconcile.compare`),
read only: one list call, nothing written. A DAG is *unwatched* when Airflow schedules it
periodically (its timetable says ``periodic``) and nothing declares a heartbeat for it, on
any connection: if its runs stopped, nobody would be told.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_opsgenie_hb.core.declaration import dag_declarations
from airflow_provider_opsgenie_hb.core.ownership import Ownership
from airflow_provider_opsgenie_hb.core.reconcile import compare
from airflow_provider_opsgenie_hb.core.schedule import ScheduleIntervalError, scheduler_timetable
from airflow_provider_opsgenie_hb.core.service import HeartbeatService
from airflow_provider_opsgenie_hb.core.sync import declarations, exception_line, load_dags
from airflow_provider_opsgenie_hb.settings import deployment, listener_settings

#: what a row says: a declared heartbeat's state, an orphan of this deployment, or a DAG nothing watches
STATES = ("missing", "expired", "drift", "conflict", "skipped", "orphaned", "unwatched", "disabled", "ok")


@dataclass(frozen=True)
class HeartbeatStatus:
    """One heartbeat: declared by a DAG here, or managed by this deployment and declared by none (orphaned)."""

    name: str
    dag_id: str | None
    state: str
    in_opsgenie: bool
    expired: bool
    enabled: bool | None
    drift: list[str] = field(default_factory=list)
    last_ping_time: str | None = None
    note: str = ""


@dataclass
class StatusReport:
    heartbeats: list[HeartbeatStatus]
    #: scheduled DAGs that no heartbeat watches
    unwatched: list[str]
    #: DAG files that failed to import (what they declare is not known)
    import_errors: dict[str, str]

    @property
    def healthy(self) -> bool:
        """Every declared heartbeat in OpsGenie, matching and not expired; every scheduled DAG watched."""
        return (
            all(row.state in ("ok", "disabled") for row in self.heartbeats)
            and not self.unwatched
            and not self.import_errors
        )

    def rows(self) -> list[dict[str, Any]]:
        """One row per heartbeat, then one per unwatched DAG (state ``unwatched``), for a table."""
        rows = [
            {
                "heartbeat": row.name,
                "dag_id": row.dag_id or "",
                "state": row.state,
                "in_opsgenie": row.in_opsgenie,
                "drift": ",".join(row.drift),
                "last_ping_time": row.last_ping_time or "",
            }
            for row in self.heartbeats
        ]
        empty = {"heartbeat": "", "in_opsgenie": False, "drift": "", "last_ping_time": ""}
        return rows + [{**empty, "dag_id": dag_id, "state": "unwatched"} for dag_id in self.unwatched]

    def to_dict(self) -> dict[str, Any]:
        return {
            "heartbeats": [asdict(row) for row in self.heartbeats],
            "unwatched_dags": self.unwatched,
            "import_errors": self.import_errors,
            "healthy": self.healthy,
        }


def heartbeat_status(dags_folder: str | Path, hook: HeartbeatService, *, conn_id: str) -> StatusReport:
    """Read ``dags_folder`` and compare its declarations on ``conn_id`` (``hook``) with OpsGenie."""
    dags, errors = load_dags(Path(dags_folder).expanduser())
    declared = declarations(dags, conn_id=conn_id)
    listed = {hb.name: hb for hb in hook.list_heartbeats()}
    plan = compare(listed.values(), declared, ownership=Ownership(deployment()))
    rows = []
    for item in plan.items:
        held = listed.get(item.name)
        if item.action == "create":
            state = "missing"
        elif item.action == "orphaned":
            state = "orphaned"
        elif held is not None and held.expired:
            state = "expired"
        elif item.action in ("update", "conflict"):
            state = "drift" if item.action == "update" else "conflict"
        elif held is not None and not held.enabled:
            state = "disabled"
        else:
            state = "ok" if item.action == "unchanged" else item.action
        rows.append(
            HeartbeatStatus(
                name=item.name,
                dag_id=item.dag_id,
                state=state,
                in_opsgenie=held is not None,
                expired=bool(held and held.expired),
                enabled=held.enabled if held is not None else None,
                drift=sorted(item.changed),
                last_ping_time=held.to_dict()["last_ping_time"] if held is not None else None,
                note=item.reason,
            )
        )
    return StatusReport(rows, unwatched_dags(dags), {path: exception_line(error) for path, error in errors.items()})


def unwatched_dags(dags: list[Any]) -> list[str]:
    """The DAGs Airflow schedules periodically that declare no heartbeat (callback or tag), by id."""
    settings = listener_settings()
    return sorted(dag.dag_id for dag in dags if _periodic(dag) and not dag_declarations(dag, settings))


def _periodic(dag: Any) -> bool:
    """Whether Airflow's scheduler runs ``dag`` on a clock (its own timetable's ``periodic``)."""
    try:
        return bool(scheduler_timetable(dag.timetable).periodic)
    except ScheduleIntervalError:  # a timetable Airflow cannot read: it says nothing of being scheduled
        return False
