"""What the Heartbeats page shows: every heartbeat on the connections in use, next to what the DAGs declare.

Each connection's heartbeats come from one list call, kept for ``[opsgenie_heartbeat]
ui_cache_seconds``; the DAGs' declarations come from the DAG folder (read in a child process,
kept until a file changes). Sync's own comparison (:func:`~airflow_provider_opsgenie_hb.core.reconcile.compare`)
says which declared heartbeats are missing, which differ from their declaration and which
this deployment manages but no DAG declares any more (orphaned). When a list call fails, the
last good list is shown with the error (its HTTP status and requestId).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_opsgenie_hb import settings
from airflow_provider_opsgenie_hb.api.errors import HeartbeatError, HeartbeatTimeoutError
from airflow_provider_opsgenie_hb.api.schema import CONFIG_FIELDS, Heartbeat
from airflow_provider_opsgenie_hb.core.declared import DagFolder
from airflow_provider_opsgenie_hb.core.ownership import Ownership, owner_marker
from airflow_provider_opsgenie_hb.core.reconcile import PlanItem, compare
from airflow_provider_opsgenie_hb.core.waiting import Call
from airflow_provider_opsgenie_hb.settings import DEFAULT_CONN_ID, deployment, listener_settings
from airflow_provider_opsgenie_hb.ui.declared import DeclarationSource

if TYPE_CHECKING:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

#: seconds one call to OpsGenie may take from the page, retries included
CALL_BUDGET = 5.0
#: seconds a request of the page waits for OpsGenie (a server that trickles its answer can
#: outlast CALL_BUDGET) before it answers without it
ANSWER_WAIT = CALL_BUDGET + 1.0
#: seconds after which a list call still under way is given up for a new one
STUCK_AFTER = 10 * CALL_BUDGET
#: the order of the page: expired first
STATUSES = ("expired", "missing", "unknown", "ok", "disabled")
ACTIONS = ("ping", "disable", "enable", "ensure")
NOT_OURS = "declared by no DAG here and not managed by this deployment: shown, left alone"
NOT_MANAGED = (
    "not managed by this deployment (it lacks its marker): a DAG here may ping it, but it is disabled "
    "and enabled only where it is managed (adopt it with `opsgenie-heartbeat sync --adopt`)"
)


def cache_seconds() -> float:
    """``[opsgenie_heartbeat] ui_cache_seconds``: how long a connection's list of heartbeats is kept."""
    return settings.get_seconds("ui_cache_seconds")


@dataclass(frozen=True)
class FieldDrift:
    """One declared field next to what OpsGenie holds."""

    field: str
    declared: Any
    current: Any
    differs: bool
    #: ``interval="next_run"``: each run sets this field, so nothing is declared to compare with
    set_by_runs: bool = False


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
    #: it carries this deployment's marker (sync, or a callback's ``ensure=True``, made it or adopted it)
    managed: bool = False
    #: why an orphan may still be declared (a DAG file failed to import, no DAG was read): not disabled here
    uncertain: str = ""

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
        # interval="next_run": the runs set the interval; sync and ensure leave it alone (unless it
        # is shorter than any the schedule's runs set: then sync's comparison says compare_interval)
        by_runs = () if self.declaration is None or self.declaration.compare_interval else ("interval", "interval_unit")
        current = self.heartbeat.to_dict()
        return [
            FieldDrift(key, value, current.get(key), key in differing and key not in by_runs, key in by_runs)
            for key, value in declared.items()
        ]

    @property
    def ours(self) -> bool:
        """A DAG here declares it, or this deployment manages it: the page may act on it."""
        return bool(self.dag_ids) or self.orphaned

    def allows(self, action: str) -> bool:
        """Whether ``action`` applies to this heartbeat as it is now (see :meth:`refusal`)."""
        return self.refusal(action) is None

    def refusal(self, action: str) -> str | None:
        """Why ``action`` does not apply to this heartbeat as it is now; None when it does.

        Nothing applies to one that is not :attr:`ours` (made by hand, or another deployment's),
        nor to one on a connection that could not be read. A DAG here may ping one it declares,
        but only this deployment's own heartbeats are disabled or enabled here.
        """
        if not self.ours:
            return NOT_OURS
        if not self.listed:
            return "its connection could not be read"
        if action == "ensure":
            if self.declaration is not None and self.declaration.action in ("create", "update"):
                return None
            if self.declaration is not None and self.declaration.action == "conflict":
                return NOT_MANAGED
            return "it is in line with its declaration" if self.heartbeat else "it has no declaration to ensure"
        if self.heartbeat is None:
            return "it does not exist"
        if action == "ping":
            return None
        if not self.managed:
            return NOT_MANAGED
        if action == "disable" and self.uncertain:
            return self.uncertain
        return None if (action == "disable") == self.heartbeat.enabled else f"it is {self.status}"

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
    #: the service's clock minus this machine's, from the list's ``Date`` header: how long ago a ping
    #: was is counted on OpsGenie's clock, which set its ``lastPingTime``
    clock_offset: float = 0.0

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

    The list call runs in a thread of its own (:class:`~.waiting.Call`): concurrent requests
    wait for that one call instead of making their own, and none waits longer than
    :data:`ANSWER_WAIT`; after that the page shows the last list, with a banner.
    """

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._lock = threading.Lock()
        self._hook: OpsgenieHeartbeatHook | None = None
        self._state = ConnectionState(conn_id, "", None, None)
        self._checked: float | None = None
        self._listing: Call[None] | None = None
        self._listing_token = object()
        self._listing_since = 0.0
        #: counts the actions: a list call that started before one does not count as fresh
        self._generation = 0

    def state(self, ttl: float) -> ConnectionState:
        with self._lock:
            now = time.monotonic()
            stuck = self._listing is not None and now - self._listing_since > STUCK_AFTER
            if stuck or (self._listing is None and (self._checked is None or now - self._checked >= ttl)):
                # A call stuck on a connection that still trickles is left to it: a new one may
                # find the server well again.
                token = object()
                self._listing, self._listing_token, self._listing_since = (
                    Call(functools.partial(self._list, self._generation, token), f"list-{self.conn_id}"),
                    token,
                    now,
                )
            listing = self._listing
        if listing is not None and not listing.wait(ANSWER_WAIT):
            slow = HeartbeatTimeoutError(
                f"listing heartbeats: no answer within {ANSWER_WAIT:g}s (still waiting); shown as last listed"
            )
            with self._lock:
                return dataclasses.replace(self._state, error=slow, failed_at=time.time())
        with self._lock:
            return self._state

    def hook(self) -> OpsgenieHeartbeatHook:
        with self._lock:
            return self._connected()

    def forget_list(self) -> None:
        """The next request lists again (after an action changed a heartbeat)."""
        with self._lock:
            self._checked = None
            self._generation += 1

    def _connected(self) -> OpsgenieHeartbeatHook:
        if self._hook is None:
            from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

            hook = OpsgenieHeartbeatHook(self.conn_id, time_budget=CALL_BUDGET)
            backend = hook.client.backend.label
            self._state = dataclasses.replace(self._state, backend=backend)
            self._hook = hook
        return self._hook

    def _list(self, generation: int, token: object) -> None:
        """One list call (in the :class:`Call`'s thread), then its outcome as the state."""
        try:
            with self._lock:
                hook = self._connected()
            heartbeats = hook.list_heartbeats()
        except Exception as exc:
            with self._lock:
                if not (isinstance(exc, HeartbeatError) and exc.retryable):
                    self._hook = None  # the connection may be fixed (or its key rotated): read it again
                self._state = dataclasses.replace(self._state, error=exc, failed_at=time.time())
        else:
            listed_at = time.time()
            server_time = getattr(heartbeats, "server_time", None)
            offset = 0.0 if server_time is None else server_time - listed_at
            with self._lock:
                self._state = dataclasses.replace(
                    self._state,
                    heartbeats=heartbeats,
                    listed_at=listed_at,
                    error=None,
                    failed_at=None,
                    clock_offset=offset,
                )
        finally:
            with self._lock:
                if token is self._listing_token:
                    self._listing = None
                if generation == self._generation:
                    self._checked = time.monotonic()


class OverviewSource:
    """Builds an :class:`Overview` from the connections' cached lists and the DAG folder's cached declarations."""

    def __init__(self, dag_folder: DeclarationSource) -> None:
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
    uncertain = _why_orphans_are_uncertain(dag_folder)
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
        # Without the declarations nothing is an orphan: they could not be read, or none are recorded yet.
        orphaned = item.action == "orphaned" and dag_folder is not None
        heartbeat = existing.get(item.name)
        notes = [note for note in (item.reason, *item.notes) if note]
        if item.action == "orphaned" and dag_folder is None:
            notes = ["no DAG is known to declare it: the declarations could not be read (see the banner)"]
        # An orphan is managed here with this deployment's own marker only: the marker of earlier
        # releases names no deployment (sync never prunes such an orphan either).
        managed = heartbeat is not None and (
            owner_marker(ownership.deployment) in heartbeat.alert_tags
            if item.action == "orphaned"
            else ownership.owns(heartbeat)
        )
        if heartbeat is not None and not managed and item.action != "conflict":  # a conflict says so already
            notes.append(NOT_MANAGED)
        rows[item.name] = HeartbeatRow(
            conn_id=state.conn_id,
            backend=state.backend,
            name=item.name,
            dag_ids=declared_by.get((state.conn_id, item.name)) or ((item.dag_id,) if item.dag_id else ()),
            heartbeat=heartbeat,
            declaration=None if item.action == "orphaned" else item,
            orphaned=orphaned,
            listed=state.heartbeats is not None,
            notes=tuple(notes),
            managed=managed,
            uncertain=uncertain if orphaned else "",
        )
    for name, heartbeat in existing.items():
        if name not in rows:
            other = elsewhere.get(name)
            note = f"DAG {other.dag_id}: {other.reason}, not this one" if other else NOT_OURS
            rows[name] = HeartbeatRow(state.conn_id, state.backend, name, (), heartbeat, notes=(note,))
    return list(rows.values())


def _why_orphans_are_uncertain(dag_folder: DagFolder | None) -> str:
    """Why an orphan may still be declared (as sync refuses to prune then): empty when the read is whole."""
    if dag_folder is None:
        return "the declarations could not be read"
    if dag_folder.import_errors:
        return "a DAG file could not be imported, so a DAG may still declare it (sync does not prune it either)"
    if not dag_folder.dag_ids:
        return "no DAG was read, so a DAG may still declare it (sync does not prune it either)"
    return ""
