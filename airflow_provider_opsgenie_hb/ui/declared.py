"""Where the Heartbeats page reads what the DAGs declare (``[opsgenie_heartbeat] declarations``).

- ``dag_folder``: ``[core] dags_folder``, read as ``opsgenie-heartbeat sync`` reads it, but never
  in the API server's own process: DAG code runs in a child (where Airflow's import timeouts
  work, as they need the main thread), which writes the declarations as JSON::

      python -m airflow_provider_opsgenie_hb.ui.declared DAGS_FOLDER OUTPUT_FILE

  The page keeps the result until a file in the folder changes.
- ``metadata``: what sync last recorded in the metadata database, for an API server without DAG
  files (:mod:`~airflow_provider_opsgenie_hb.core.declared`).
- ``auto`` (the default): the DAG folder when it holds Python files, else the metadata database.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

from airflow_provider_opsgenie_hb import settings
from airflow_provider_opsgenie_hb.core import declared
from airflow_provider_opsgenie_hb.core.declared import DagFolder, read_dag_folder
from airflow_provider_opsgenie_hb.core.sync import exception_line
from airflow_provider_opsgenie_hb.core.waiting import Call

_MODULE = "airflow_provider_opsgenie_hb.ui.declared"
#: seconds the child process may take to read the DAG folder
READ_TIMEOUT = 120.0
#: seconds a request of the page waits for a read before it answers with the DAGs as last read
READ_WAIT = 10.0
#: the same for the first read, before which the page has nothing to show
FIRST_READ_WAIT = 60.0


class DagFolderError(Exception):
    """The DAG folder could not be read (the child process failed or took too long)."""


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
    """Where the page reads what the DAGs declare: :class:`DagFolderCache` (the DAG folder, in a
    child process), :class:`RecordedDeclarations` (the metadata database), or :class:`AutoSource`."""

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


class RecordedDeclarations:
    """What sync last recorded in the metadata database (one Variable), read again at most once per ``ttl``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read: tuple[DagFolder | None, str | None] = (None, None)
        self._checked: float | None = None

    def read(self, ttl: float) -> tuple[DagFolder | None, str | None]:
        with self._lock:
            if self._checked is None or time.monotonic() - self._checked >= ttl:
                self._read = self._read_now(self._read[0])
                self._checked = time.monotonic()
            return self._read

    @staticmethod
    def _read_now(last: DagFolder | None) -> tuple[DagFolder | None, str | None]:
        try:
            found = declared.recorded()
        except Exception as exc:  # the database is out of reach, or the Variable is not ours
            why = f"the declarations recorded in Airflow Variable {declared.VARIABLE} could not be read: {exc}"
            return last, why + (": DAGs are shown as they were last read" if last else "")
        if found is None:
            return None, (
                f"this API server reads the declarations from the metadata database ([{settings.SECTION}] "
                "declarations), and none are recorded yet. Run `airflow opsgenie-heartbeat sync` (or "
                "OpsgenieSyncHeartbeatsOperator) where the DAG files are: each sync records them"
            )
        return found, None


class AutoSource:
    """The DAG folder when it holds Python files, else what sync recorded (decided on every read)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.dag_folder = DagFolderCache(folder)
        self.recorded = RecordedDeclarations()

    def read(self, ttl: float) -> tuple[DagFolder | None, str | None]:
        return (self.dag_folder if holds_python_files(self.folder) else self.recorded).read(ttl)


def declaration_source(folder: str) -> DeclarationSource:
    """The source ``[opsgenie_heartbeat] declarations`` names, for the DAG folder ``folder``."""
    chosen = settings.choice("declarations", settings.DECLARATION_SOURCES)
    if chosen == "metadata":
        return RecordedDeclarations()
    return DagFolderCache(folder) if chosen == "dag_folder" else AutoSource(folder)


def holds_python_files(folder: str) -> bool:
    """Whether there is a Python file (or a zip of DAGs) anywhere in ``folder``."""
    for _root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        if any(name.endswith((".py", ".zip")) for name in files):
            return True
    return False


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
