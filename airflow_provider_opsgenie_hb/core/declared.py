"""What a DAG folder declares, as the Heartbeats page and ``status`` show it, and its copy in
the metadata database for API servers that have no DAG files.

Airflow's serialized DAGs keep no callbacks, so a notifier's declaration is only in the DAG
files. :func:`read_dag_folder` reads them (it runs DAG code: the page calls it in a child
process). Every ``sync`` that applies its plan :func:`publish`\\ es what it read as one Airflow
Variable (:data:`VARIABLE`), written where the DAG files are (a task, or the CLI) and never at
DAG-parse time; an API server without DAG files shows :func:`recorded` instead.

The same Variable keeps the names syncs have seen declared (``seen``), so that ``prune`` deletes
only a heartbeat a DAG once declared and declares no more: one that something sync cannot see
pings (an ``OpsgenieEnsureHeartbeatOperator``, a notifier wrapped in a function, the listener
of a host with other settings) is never an orphan it may delete (:func:`keep_orphans_no_sync_saw_declared`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_opsgenie_hb.core.declaration import dag_declarations, render_for_dag
from airflow_provider_opsgenie_hb.core.reconcile import PlanItem, SyncPlan
from airflow_provider_opsgenie_hb.core.status import unwatched_dags
from airflow_provider_opsgenie_hb.core.sync import declarations, exception_line, folder_key, load_dags
from airflow_provider_opsgenie_hb.settings import DEFAULT_CONN_ID, ListenerSettings, listener_settings

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
    #: per connection, each heartbeat name syncs saw declared and that still exists: the folders whose
    #: syncs saw it declared, each with its host and the listener's name template when the listener declared it
    seen: dict[str, dict[str, dict[str, Any]]] = dataclasses.field(default_factory=dict)

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
                "seen": self.seen,
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
            seen=dict(data.get("seen") or {}),
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


def publish(
    folder: str | Path,
    dags: list[Any],
    errors: dict[str, str],
    *,
    seen: dict[str, dict[str, Any]] | None = None,
    conn_id: str = DEFAULT_CONN_ID,
    applied: SyncPlan | None = None,
    settings: ListenerSettings | None = None,
) -> None:
    """Record what ``dags`` declare in the metadata database, for the page, and (with ``applied``,
    the plan sync carried out on ``conn_id``) the names seen declared, for the next prune: ``seen``,
    every connection's as :func:`names_seen` read them before the sync, with this sync's own.
    Never raises (says why not)."""
    from airflow.utils.net import get_hostname  # [core] hostname_callable, as Airflow names its hosts

    from airflow_provider_opsgenie_hb.version_compat import set_variable

    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    try:
        host: str = get_hostname()  # type: ignore[no-untyped-call]
        read = dag_folder_of(folder, dags, errors)
        all_seen = dict(seen or {})  # unread (None): what this sync saw only, so fewer names are prunable
        if applied is not None:
            settings = settings or listener_settings()
            all_seen[conn_id] = _seen_now(all_seen.get(conn_id, {}), applied, host, folder_key(folder), settings)
        origin = f"recorded by sync on {host} from {folder}, {when}"
        set_variable(VARIABLE, dataclasses.replace(read, origin=origin, seen=all_seen).to_json(), _DESCRIPTION)
    except Exception as exc:
        log.info("The declarations were not recorded for the Heartbeats page (Variable %s): %s", VARIABLE, exc)
        return
    log.info("Recorded the declarations for the Heartbeats page (Airflow Variable %s)", VARIABLE)


def names_seen() -> tuple[dict[str, dict[str, Any]] | None, str]:
    """Per connection, the names earlier syncs saw declared, read once per sync; None (and why) when they
    cannot be read, or when none were recorded yet."""
    try:
        earlier = recorded()
    except Exception as exc:
        why = exception_line(str(exc)) or type(exc).__name__
        return None, f"what earlier syncs saw declared could not be read ({VARIABLE}: {why}): not pruned"
    if earlier is None:
        return None, (
            f"no sync has recorded what it saw declared yet (Airflow Variable {VARIABLE}: a first sync, or it "
            "was deleted): never pruned; delete it by hand if nothing pings it"
        )
    return earlier.seen, ""


def _seen_now(
    seen: dict[str, Any], applied: SyncPlan, host: str, folder: str, settings: ListenerSettings
) -> dict[str, dict[str, Any]]:
    """The names seen declared after this sync of ``folder``: per name, the folders whose syncs saw it declared
    (with the host and the listener's name template). This folder is added where it declares a name, and
    stays where the name is its orphan (a later prune may delete it); a name deleted, or gone and declared
    by no other folder, is dropped."""
    in_plan = {item.name: item for item in applied.items}
    now: dict[str, dict[str, Any]] = {}
    for name, entry in seen.items():
        folders = dict(entry.get("folders") or {})
        item = in_plan.get(name)
        if item is not None and item.action == "deleted":
            continue
        if item is None or item.action == "elsewhere":  # gone, or no longer declared on this connection here
            folders.pop(folder, None)
        if folders:
            now[name] = {"folders": folders}
    for item in applied.items:  # declared now (an orphan whose delete failed is not)
        if item.action not in ("orphaned", "deleted", "elsewhere") and not item.prunable:
            listener = settings.name_template if item.by_listener else None
            now.setdefault(item.name, {"folders": {}})["folders"][folder] = {"host": host, "listener": listener}
    return now


def keep_orphans_no_sync_saw_declared(
    sync_plan: SyncPlan,
    seen: dict[str, Any] | None,
    folder: str,
    settings: ListenerSettings,
    used: Mapping[str, str] | None = None,
    *,
    why_unseen: str = "",
) -> None:
    """Make an orphan prunable only if a sync of this ``folder`` (:func:`folder_key`) saw a DAG declare it (another
    team's folder or DAG bundle may declare it still), through the listener only with ``settings``' name
    template (a host with the listener off or another template must not delete the listener's heartbeats),
    and no operator of the DAGs ``used`` it (name -> which task). ``seen``: the connection's names seen
    declared (None: unknown, and no orphan is prunable, for ``why_unseen``)."""
    why_unseen = why_unseen or (
        "no sync saw a DAG declare it (an OpsgenieEnsureHeartbeatOperator or a callback sync cannot see may ping "
        "it): never pruned; delete it by hand if nothing pings it"
    )
    listener = settings.name_template if settings.enabled else None
    for item in sync_plan.items:
        if item.action != "orphaned" or not item.prunable:
            continue
        folders: dict[str, Any] = dict(((seen or {}).get(item.name) or {}).get("folders") or {})
        here, others = folders.pop(folder, None), sorted(folders)
        item.prunable = False
        if used and item.name in used:
            item.reason = f"{used[item.name]} uses it (an operator sync does not manage): never pruned"
        elif others:
            where = ", ".join(f"{other!r} (sync on {folders[other].get('host')})" for other in others)
            item.reason = (
                f"a DAG in {where} declared it: never pruned from {folder!r} (sync that folder, or delete it by "
                "hand if nothing pings it)"
            )
        elif here is None:
            item.reason = why_unseen
        elif here.get("listener") is not None and _same_template(here["listener"]) != _same_template(listener):
            now = f"name template {listener!r}" if listener else "the listener off"
            item.reason = (
                f"the listener declared it (name template {here['listener']!r}) when sync ran on "
                f"{here.get('host')}; here sync runs with {now}: never pruned here (keep [opsgenie_heartbeat] "
                "the same on every host; delete it by hand if nothing pings it)"
            )
        else:
            item.prunable = True


def _same_template(template: str | None) -> str | None:
    """A name template as it renders: spaces inside the braces and the ``dag_id`` shorthand do not count."""
    if template is None:
        return None
    return re.sub(r"\s+", "", template).replace("{{dag_id}}", "{{dag.dag_id}}")


def recorded() -> DagFolder | None:
    """The declarations sync last recorded (None: none yet); raises when the database cannot be read."""
    from airflow_provider_opsgenie_hb.version_compat import get_variable

    text = get_variable(VARIABLE)
    return None if text is None else DagFolder.from_json(text)
