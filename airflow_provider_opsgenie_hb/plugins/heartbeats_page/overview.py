"""What the Heartbeats page shows: every heartbeat on the connections in use, next to what the DAGs declare.

Each connection's heartbeats come from one list call, kept for ``[opsgenie_heartbeat]
ui_cache_seconds``; the DAGs' declarations come from the DAG folder (read in a child process,
kept until a file changes). Sync's own comparison (:func:`~airflow_provider_opsgenie_hb.sync.compare`)
says which declared heartbeats are missing, which differ from their declaration and which
this deployment manages but no DAG declares any more (orphaned). When a list call fails, the
last good list is shown with the error (its HTTP status and requestId).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_opsgenie_hb.client import JsmHeartbeatClient
from airflow_provider_opsgenie_hb.declaration import DEFAULT_CONN_ID, conf_seconds, deployment, listener_settings
from airflow_provider_opsgenie_hb.errors import HeartbeatError
from airflow_provider_opsgenie_hb.models import CONFIG_FIELDS, Heartbeat
from airflow_provider_opsgenie_hb.plugins.heartbeats_page.declared import DagFolder, DagFolderCache
from airflow_provider_opsgenie_hb.sync import Ownership, PlanItem, compare

if TYPE_CHECKING:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

DEFAULT_CACHE_SECONDS = 10.0
#: seconds one call to OpsGenie may take from the page, retries included
CALL_BUDGET = 5.0
#: the order of the page: expired first
STATUSES = ("expired", "missing", "unknown", "ok", "disabled")
ACTIONS = ("ping", "disable", "enable", "ensure")
NOT_OURS = "declared by no DAG here and not managed by this deployment: shown, left alone"


def cache_seconds() -> float:
    """``[opsgenie_heartbeat] ui_cache_seconds``: how long a connection's list of heartbeats is kept."""
    return conf_seconds("ui_cache_seconds", DEFAULT_CACHE_SECONDS)


@dataclass(frozen=True)
class FieldDrift:
    """One declared field next to what OpsGenie holds."""

    field: str
    declared: Any
    current: Any
    differs: bool


@dataclass(frozen=True)
class HeartbeatRow:
    """One heartbeat on one connection: what OpsGenie holds and what the DAGs declare about it."""

    conn_id: str
    backend: str
    name: str
    #: the DAGs declaring it on this connection
    dag_ids: tuple[str, ...]
    #: what OpsGenie holds; None when it does not exist, or the connection could not be listed
    heartbeat: Heartbeat | None
    #: sync's plan item of its declaration (create, update, unchanged, conflict, skipped); None when undeclared
    declaration: PlanItem | None = None
    #: managed by this deployment, declared by no DAG
    orphaned: bool = False
    #: False when the connection's heartbeats could not be listed (its status is then unknown)
    listed: bool = True
    notes: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        if self.heartbeat is None:
            return "missing" if self.listed else "unknown"
        if not self.heartbeat.enabled:
            return "disabled"
        return "expired" if self.heartbeat.expired else "ok"

    @property
    def drifted(self) -> bool:
        """It exists but differs from its declaration (sync would update it, or it is not this deployment's)."""
        return self.declaration is not None and self.declaration.action in ("update", "conflict")

    @property
    def interval(self) -> str:
        """``25 hours``, ``1 hour``: OpsGenie's, or the declared one of a missing heartbeat."""
        source = self.heartbeat.to_dict() if self.heartbeat is not None else self.declared_fields
        count, unit = source.get("interval"), str(source.get("interval_unit"))
        return f"{count} {unit.removesuffix('s') if count == 1 else unit}" if count else ""

    @property
    def priority(self) -> str:
        if self.heartbeat is not None:
            return self.heartbeat.alert_priority or ""
        return str(self.declared_fields.get("alert_priority") or "")

    @property
    def declared_fields(self) -> dict[str, Any]:
        """The declared settings (None: left to OpsGenie), as sync would write them."""
        fields = self.declaration.fields if self.declaration else {}
        return {key: fields[key] for key in CONFIG_FIELDS if fields.get(key) is not None}

    def drift(self) -> list[FieldDrift]:
        """Each declared field against OpsGenie's value (the comparison sync and ensure make)."""
        declared = self.declared_fields
        if self.heartbeat is None:
            return [FieldDrift(key, value, None, True) for key, value in declared.items()]
        differing = self.heartbeat.differences(declared)
        if self.declaration is not None and not self.declaration.fields.get("compare_interval", True):
            # interval="next_run": the runs set the interval; sync and ensure leave it alone
            differing = {k: v for k, v in differing.items() if k not in ("interval", "interval_unit")}
        current = self.heartbeat.to_dict()
        return [FieldDrift(key, value, current.get(key), key in differing) for key, value in declared.items()]

    @property
    def ours(self) -> bool:
        """A DAG here declares it, or this deployment manages it: the page may act on it."""
        return bool(self.dag_ids) or self.orphaned

    def allows(self, action: str) -> bool:
        """Whether ``action`` applies to this heartbeat as it is now.

        Never to one that is not :attr:`ours` (made by hand, or another deployment's), nor to one
        on a connection that could not be read.
        """
        if not self.ours or not self.listed:
            return False
        if action == "ensure":
            return self.declaration is not None and self.declaration.action in ("create", "update")
        if self.heartbeat is None:
            return False
        return action == "ping" or (action == "disable") == self.heartbeat.enabled

    def sort_key(self) -> tuple[int, str]:
        return STATUSES.index(self.status), self.name.casefold()


@dataclass(frozen=True)
class ConnectionState:
    """One connection as the page last saw it."""

    conn_id: str
    backend: str
    #: the last list that was read; None when none could be read yet
    heartbeats: list[Heartbeat] | None
    listed_at: float | None
    #: why the last list call failed (HeartbeatError, a missing connection, ...); None when it worked
    error: Exception | None = None
    failed_at: float | None = None

    @property
    def missing_connection(self) -> bool:
        from airflow.providers.common.compat.sdk import AirflowNotFoundException

        return isinstance(self.error, AirflowNotFoundException)


@dataclass
class Overview:
    """Everything the page and the DAG tab show, at one moment."""

    rows: list[HeartbeatRow]
    connections: list[ConnectionState]
    dag_folder: DagFolder | None
    problems: list[str] = field(default_factory=list)

    def row(self, conn_id: str, name: str) -> HeartbeatRow | None:
        return next((r for r in self.rows if r.conn_id == conn_id and r.name == name), None)

    def for_dag(self, dag_id: str) -> list[HeartbeatRow]:
        return [row for row in self.rows if dag_id in row.dag_ids]


class ConnectionCache:
    """One connection's hook and its last list of heartbeats, listed at most once per ``ttl`` seconds.

    Concurrent requests wait for one list call instead of making their own.
    """

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._lock = threading.Lock()
        self._hook: OpsgenieHeartbeatHook | None = None
        self._state = ConnectionState(conn_id, "", None, None)
        self._checked: float | None = None

    def state(self, ttl: float) -> ConnectionState:
        with self._lock:
            if self._checked is None or time.monotonic() - self._checked >= ttl:
                self._list()
                self._checked = time.monotonic()
            return self._state

    def hook(self) -> OpsgenieHeartbeatHook:
        with self._lock:
            return self._connected()

    def forget_list(self) -> None:
        """The next request lists again (after an action changed a heartbeat)."""
        with self._lock:
            self._checked = None

    def _connected(self) -> OpsgenieHeartbeatHook:
        if self._hook is None:
            from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

            hook = OpsgenieHeartbeatHook(self.conn_id, time_budget=CALL_BUDGET)
            backend = "JSM Operations" if isinstance(hook.client, JsmHeartbeatClient) else "OpsGenie"
            self._state = dataclasses.replace(self._state, backend=backend)
            self._hook = hook
        return self._hook

    def _list(self) -> None:
        try:
            heartbeats = self._connected().list_heartbeats()
        except Exception as exc:
            if not (isinstance(exc, HeartbeatError) and exc.retryable):
                self._hook = None  # the connection may be fixed (or its key rotated): read it again
            self._state = dataclasses.replace(self._state, error=exc, failed_at=time.time())
            return
        self._state = dataclasses.replace(
            self._state, heartbeats=heartbeats, listed_at=time.time(), error=None, failed_at=None
        )


class OverviewSource:
    """Builds an :class:`Overview` from the connections' cached lists and the DAG folder's cached declarations."""

    def __init__(self, dag_folder: DagFolderCache) -> None:
        self.dag_folder = dag_folder
        self._connections: dict[str, ConnectionCache] = {}
        self._lock = threading.Lock()

    def connection(self, conn_id: str) -> ConnectionCache:
        with self._lock:
            return self._connections.setdefault(conn_id, ConnectionCache(conn_id))

    def overview(self) -> Overview:
        ttl = cache_seconds()
        dag_folder, folder_error = self.dag_folder.read(ttl)
        problems = [folder_error] if folder_error else []
        if dag_folder is not None:
            problems += [f"{path} could not be imported: {error}" for path, error in dag_folder.import_errors.items()]
            declared = dag_folder.declared
        else:
            declared = {conn_id: [] for conn_id in {DEFAULT_CONN_ID, listener_settings().conn_id}}
        try:
            ownership = Ownership(deployment())
        except ValueError as exc:
            return Overview([], [], dag_folder, [*problems, str(exc)])
        connections = []
        rows: list[HeartbeatRow] = []
        for conn_id in sorted(declared):
            state = self.connection(conn_id).state(ttl)
            if state.missing_connection and all(item.action == "elsewhere" for item in declared[conn_id]):
                continue  # the default connection, unused and not set up: nothing to show
            connections.append(state)
            rows += _rows(state, declared[conn_id], dag_folder, ownership)
        rows.sort(key=HeartbeatRow.sort_key)
        return Overview(rows, connections, dag_folder, problems)


def _rows(
    state: ConnectionState, declared: list[PlanItem], dag_folder: DagFolder | None, ownership: Ownership
) -> list[HeartbeatRow]:
    """The rows of one connection: its heartbeats, and the declared ones it does not have."""
    declared_by = dag_folder.declared_by if dag_folder else {}
    elsewhere = {item.name: item for item in declared if item.action == "elsewhere"}
    items = [dataclasses.replace(item, notes=list(item.notes)) for item in declared]  # compare changes them
    if state.heartbeats is not None:
        items = compare(state.heartbeats, items, ownership=ownership).items
    else:
        items = [item for item in items if item.action != "elsewhere"]
    existing = {hb.name: hb for hb in state.heartbeats or []}
    rows: dict[str, HeartbeatRow] = {}
    for item in items:
        if item.name in rows:  # a second DAG declaring the name with other settings
            earlier = rows[item.name]
            rows[item.name] = dataclasses.replace(earlier, notes=(*earlier.notes, item.reason))
            continue
        orphaned = item.action == "orphaned"
        rows[item.name] = HeartbeatRow(
            conn_id=state.conn_id,
            backend=state.backend,
            name=item.name,
            dag_ids=declared_by.get((state.conn_id, item.name)) or ((item.dag_id,) if item.dag_id else ()),
            heartbeat=existing.get(item.name),
            declaration=None if orphaned else item,
            orphaned=orphaned,
            listed=state.heartbeats is not None,
            notes=tuple(note for note in (item.reason, *item.notes) if note),
        )
    for name, heartbeat in existing.items():
        if name not in rows:
            other = elsewhere.get(name)
            note = f"DAG {other.dag_id}: {other.reason}, not this one" if other else NOT_OURS
            rows[name] = HeartbeatRow(state.conn_id, state.backend, name, (), heartbeat, notes=(note,))
    return list(rows.values())
