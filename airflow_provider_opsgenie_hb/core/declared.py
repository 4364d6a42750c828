"""What a DAG folder declares, as the Heartbeats page and ``status`` show it, and its copy in
the metadata database for API servers that have no DAG files.

Airflow's serialized DAGs keep no callbacks, so a notifier's declaration is only in the DAG
files. :func:`read_dag_folder` reads them (it runs DAG code: the page calls it in a child
process). Every ``sync`` that applies its plan :func:`publish`\\ es what it read as one Airflow
Variable (:data:`VARIABLE`), written where the DAG files are (a task, or the CLI) and never at
DAG-parse time; an API server without DAG files shows :func:`recorded` instead.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_opsgenie_hb.core.declaration import dag_declarations, render_for_dag
from airflow_provider_opsgenie_hb.core.reconcile import PlanItem
from airflow_provider_opsgenie_hb.core.status import unwatched_dags
from airflow_provider_opsgenie_hb.core.sync import declarations, exception_line, load_dags
from airflow_provider_opsgenie_hb.settings import DEFAULT_CONN_ID, listener_settings

log = logging.getLogger(__name__)

#: the Airflow Variable that holds the declarations sync last recorded
VARIABLE = "opsgenie_heartbeat.declared"
_DESCRIPTION = "What the DAGs declare, as airflow-provider-opsgenie-hb's sync last read them (for the Heartbeats page)."


@dataclass(frozen=True)
class DagFolder:
    """The heartbeats a DAG folder declares."""

    #: per connection, sync's declarations for it: ``create`` items, ``skipped`` ones with the reason,
    #: and ``elsewhere`` for names declared on other connections (never orphans)
    declared: dict[str, list[PlanItem]]
    #: (connection, heartbeat name) -> the DAGs that declare it (sync keeps only the first)
    declared_by: dict[tuple[str, str], tuple[str, ...]]
    dag_ids: tuple[str, ...]
    #: file (relative to the folder) -> the last line of its import error
    import_errors: dict[str, str]
    #: the DAGs Airflow schedules that no heartbeat watches
    unwatched: tuple[str, ...] = ()
    #: where the declarations come from (``sync on <host>, <folder>, <when>`` for a recorded copy)
    origin: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {
                "declared": {
                    conn: [dataclasses.asdict(item) for item in items] for conn, items in self.declared.items()
                },
                "declared_by": [[conn, name, list(dag_ids)] for (conn, name), dag_ids in self.declared_by.items()],
                "dag_ids": list(self.dag_ids),
                "import_errors": self.import_errors,
                "unwatched": list(self.unwatched),
                "origin": self.origin,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> DagFolder:
        data = json.loads(text)
        return cls(
            declared={conn: [PlanItem(**item) for item in items] for conn, items in data["declared"].items()},
            declared_by={(conn, name): tuple(dag_ids) for conn, name, dag_ids in data["declared_by"]},
            dag_ids=tuple(data["dag_ids"]),
            import_errors=dict(data["import_errors"]),
            unwatched=tuple(data["unwatched"]),
            origin=str(data.get("origin", "")),
        )


def read_dag_folder(folder: str | Path) -> DagFolder:
    """Parse the folder and collect its declarations (runs DAG code: the page calls it in a child)."""
    dags, errors = load_dags(folder)
    return dag_folder_of(folder, dags, errors)


def dag_folder_of(folder: str | Path, dags: list[Any], errors: dict[str, str]) -> DagFolder:
    """The declarations of ``dags`` (parsed from ``folder``, with its import ``errors``), per connection in use."""
    settings = listener_settings()
    declared_by: dict[tuple[str, str], list[str]] = {}
    for dag in sorted(dags, key=lambda d: d.dag_id):
        for declaration in dag_declarations(dag, settings):
            try:
                name = str(render_for_dag(declaration.name, dag))
            except Exception:  # sync's skipped item says why
                continue
            declared_by.setdefault((declaration.conn_id, name), []).append(dag.dag_id)
    conn_ids = sorted({DEFAULT_CONN_ID, settings.conn_id} | {conn_id for conn_id, _ in declared_by})
    return DagFolder(
        declared={conn_id: declarations(dags, conn_id=conn_id) for conn_id in conn_ids},
        declared_by={key: tuple(dag_ids) for key, dag_ids in declared_by.items()},
        dag_ids=tuple(sorted(dag.dag_id for dag in dags)),
        import_errors={os.path.relpath(path, folder): exception_line(error) for path, error in errors.items()},
        unwatched=tuple(unwatched_dags(dags)),
    )


def publish(folder: str | Path, dags: list[Any], errors: dict[str, str]) -> None:
    """Record what ``dags`` declare in the metadata database, for the page; never raises (says why not)."""
    from airflow_provider_opsgenie_hb.version_compat import set_variable

    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    try:
        read = dag_folder_of(folder, dags, errors)
        origin = f"recorded by sync on {socket.gethostname()} from {folder}, {when}"
        set_variable(VARIABLE, dataclasses.replace(read, origin=origin).to_json(), _DESCRIPTION)
    except Exception as exc:
        log.info("The declarations were not recorded for the Heartbeats page (Variable %s): %s", VARIABLE, exc)
        return
    log.info("Recorded the declarations for the Heartbeats page (Airflow Variable %s)", VARIABLE)


def recorded() -> DagFolder | None:
    """The declarations sync last recorded (None: none yet); raises when the database cannot be read."""
    from airflow_provider_opsgenie_hb.version_compat import get_variable

    text = get_variable(VARIABLE)
    return None if text is None else DagFolder.from_json(text)
