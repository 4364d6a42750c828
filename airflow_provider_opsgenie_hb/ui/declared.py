"""What the DAG files declare, read in a child process for the Heartbeats page.

Airflow's serialized DAGs keep no callbacks, so a notifier's declaration is only in the DAG
files. The page reads ``[core] dags_folder`` as ``opsgenie-heartbeat sync`` does, but never in
the API server's own process: DAG code runs in a child (where Airflow's import timeouts work,
as they need the main thread), which writes the declarations as JSON::

    python -m airflow_provider_opsgenie_hb.ui.declared DAGS_FOLDER OUTPUT_FILE

The page keeps the result until a file in the folder changes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from airflow_provider_opsgenie_hb.core.declaration import dag_declarations, render_for_dag
from airflow_provider_opsgenie_hb.core.reconcile import PlanItem
from airflow_provider_opsgenie_hb.core.status import unwatched_dags
from airflow_provider_opsgenie_hb.core.sync import declarations, exception_line, load_dags
from airflow_provider_opsgenie_hb.core.waiting import Call
from airflow_provider_opsgenie_hb.settings import DEFAULT_CONN_ID, listener_settings

_MODULE = "airflow_provider_opsgenie_hb.ui.declared"
#: seconds the child process may take to read the DAG folder
READ_TIMEOUT = 120.0
#: seconds a request of the page waits for a read before it answers with the DAGs as last read
READ_WAIT = 10.0
#: the same for the first read, before which the page has nothing to show
FIRST_READ_WAIT = 60.0


class DagFolderError(Exception):
    """The DAG folder could not be read (the child process failed or took too long)."""


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
        )


def read_dag_folder(folder: str | Path) -> DagFolder:
    """Parse the folder and collect its declarations, per connection in use (runs DAG code: call it in a child)."""
    dags, errors = load_dags(folder)
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


def read_in_child(folder: str, timeout: float) -> DagFolder:
    """:func:`read_dag_folder` in a child Python process; raises :class:`DagFolderError` when it fails."""
    with tempfile.TemporaryDirectory(prefix="opsgenie-hb-declared-") as scratch:
        output = Path(scratch) / "declared.json"
        try:
            result = subprocess.run(
                [sys.executable, "-m", _MODULE, folder, str(output)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DagFolderError(f"reading the DAG files in {folder} took longer than {timeout:g}s") from None
        if result.returncode != 0 or not output.exists():
            why = exception_line(result.stderr) or f"exit code {result.returncode}"
            raise DagFolderError(f"reading the DAG files in {folder} failed: {why}")
        return DagFolder.from_json(output.read_text(encoding="utf-8"))


class DeclarationSource(Protocol):
    """Where the page reads what the DAGs declare. :class:`DagFolderCache` reads the DAG folder
    (in a child process); an API server without DAG files needs a source that reads what the
    metadata database holds instead, and plugs in here."""

    def read(self, ttl: float) -> tuple[DagFolder | None, str | None]:
        """The declarations (None when they cannot be read yet) and why not, reusing what is younger than ``ttl``."""
        ...


class DagFolderCache:
    """A DAG folder's declarations, read again (in a child process) when a file in it changes.

    The read runs in a thread of its own (:class:`~.waiting.Call`): concurrent requests wait
    for that one read, and none longer than :data:`READ_WAIT` (:data:`FIRST_READ_WAIT` until
    the first read); after that the page shows the DAGs as last read, with a banner.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._read: DagFolder | None = None
        self._error: str | None = None
        self._fingerprint: int | None = None
        self._checked: float | None = None
        self._reading: Call[None] | None = None

    def read(self, ttl: float) -> tuple[DagFolder | None, str | None]:
        """The declarations (None until a read succeeds) and why the last read failed (None if it did not).

        The folder is looked at for changes at most once per ``ttl`` seconds.
        """
        with self._lock:
            if self._reading is None and (self._checked is None or time.monotonic() - self._checked >= ttl):
                self._checked = time.monotonic()
                fingerprint = folder_fingerprint(self.folder)
                if fingerprint != self._fingerprint:
                    self._reading = Call(functools.partial(self._read_folder, fingerprint), "dag-folder")
            reading, wait = self._reading, READ_WAIT if self._read is not None else FIRST_READ_WAIT
        if reading is not None and not reading.wait(wait):
            with self._lock:
                shown = "DAGs are shown as they were last read" if self._read else "reload in a moment"
                return self._read, f"the DAG files in {self.folder} are still being read: {shown}"
        with self._lock:
            return self._read, self._error

    def _read_folder(self, fingerprint: int) -> None:
        """One read in a child process (in the :class:`Call`'s thread), then its outcome."""
        try:
            read, error = read_in_child(self.folder, READ_TIMEOUT), None
        except DagFolderError as exc:
            read, error = None, str(exc)
        except Exception as exc:  # its output unreadable, no scratch space, ...: never the end of reading
            read, error = None, f"reading the DAG files in {self.folder} failed: {type(exc).__name__}: {exc}"
        with self._lock:
            if read is not None:
                self._read = read
            elif self._read is not None:
                error = f"{error}: DAGs are shown as they were last read"
            self._error, self._fingerprint, self._reading = error, fingerprint, None


def folder_fingerprint(folder: str) -> int:
    """Changes when a file in the folder is added, removed or written (bytecode caches aside)."""
    entries = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]  # written by the read itself
        for file_name in files:
            path = os.path.join(root, file_name)
            try:
                stat = os.stat(path)
            except OSError:
                continue
            entries.append((path, stat.st_mtime_ns, stat.st_size))
    return hash(tuple(sorted(entries)))


def main(argv: list[str]) -> int:
    folder, output = argv
    Path(output).write_text(read_dag_folder(folder).to_json(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
