"""What the success callback remembers between runs, so steady state costs one request per run.

DAG-level callbacks run in a fresh process for every run, so a memory kept in the process
would repeat the existence check (and the ensure) on every run. The callback records each
fact - "this heartbeat was ensured with these settings", "this heartbeat exists" - as one
small file under ``[opsgenie_heartbeat] record_dir`` (default ``$XDG_CACHE_HOME`` or
``~/.cache``, then ``airflow-provider-opsgenie-heartbeat``), valid for
``[opsgenie_heartbeat] record_ttl_seconds`` (default one day; 0 turns the record off).

A fact is keyed by connection id, a hash of the base URL and credentials (another account
behind the same connection id is another fact) and the heartbeat name; the "ensured" fact
holds a hash of the ensured settings, so a changed setting is ensured at once, settings
templated per run replace one entry rather than add one per run, and a heartbeat deleted by
hand comes back within a day. Only hashes are written: a record holds no key and no setting. A
missing, corrupt, unreadable or unwritable record only means the check is made again: it
never fails a callback and never holds back a ping.

Beside the facts, each heartbeat has a short log of the pings this deployment sent it (the
last :data:`PING_LOG_LENGTH`: when, from where, OpsGenie's requestId), which the Heartbeats
page shows. It holds no key either, and a log that cannot be written is skipped.

Where the record lives sits behind one small interface, :class:`RecordStore`: the rules above
(keys, TTLs, the ping log's length) are the same whatever stores it, and :func:`store` is the
one place that picks it (``[opsgenie_heartbeat] record_store``):

- ``directory`` (the default), :class:`LocalDirectoryStore`: files in ``record_dir``, shared by
  every host only when it is on storage they all mount;
- ``metadata``, :class:`MetadataStore`: Airflow Variables, which every component reaches through
  the API it is allowed to use (tasks and DAG processor callbacks through the Task SDK, the
  scheduler and the API server through the database). Callbacks that land on another host then
  find what the last run recorded, and the page sees the pings every host sent. The price: a few
  Variable reads and writes per run (each read asks the secrets backends first, as every Variable
  read does), and entries in the Variables list, named ``opsgenie_heartbeat.record.*``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from airflow_provider_opsgenie_hb import settings

log = logging.getLogger(__name__)

_DIR_NAME = "airflow-provider-opsgenie-heartbeat"


class RecordStore(Protocol):
    """Where the record lives: whole entries by key, and append-only logs by key. Failing calls raise ``OSError``."""

    def read(self, key: str) -> str:
        """The entry written under ``key``; ``OSError`` when there is none."""
        ...

    def write(self, key: str, text: str) -> None:
        """Replace the entry under ``key`` whole (a concurrent reader sees the old entry or the new one)."""
        ...

    def append(self, key: str, line: str, *, keep: int) -> None:
        """Add a line to the log under ``key``; the store may cut it back to its last ``keep`` lines."""
        ...

    def lines(self, key: str) -> list[str]:
        """The log's lines, oldest first; ``OSError`` when there is none."""
        ...


class LocalDirectoryStore:
    """The record as files in one directory: a file per entry, and per log under ``pings/``, named by the key's hash."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str, folder: str = "") -> Path:
        return self.directory / folder / hashlib.sha256(key.encode("utf-8")).hexdigest()

    def read(self, key: str) -> str:
        path = self._path(key)
        name, text = path.read_text(encoding="utf-8").split("\n", 1)
        if name != path.name:  # a whole entry, not a torn or foreign file
            raise OSError(f"{path} is not a whole record entry")
        return text

    def write(self, key: str, text: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        _replace(path, f"{path.name}\n{text}")

    def append(self, key: str, line: str, *, keep: int) -> None:
        path = self._path(key, "pings")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log_file:  # appends: concurrent writers do not overwrite each other
            log_file.write(line)
        if path.stat().st_size > 2 * keep * len(line):
            _replace(path, "".join(self.lines(key)[-keep:]))

    def lines(self, key: str) -> list[str]:
        return self._path(key, "pings").read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)


class MetadataStore:
    """The record as Airflow Variables, one per entry and per log, named by the key's hash."""

    PREFIX = "opsgenie_heartbeat.record."
    DESCRIPTION = "What airflow-provider-opsgenie-hb remembers between runs (no key, no setting; safe to delete)."

    def _name(self, key: str, folder: str = "") -> str:
        return self.PREFIX + folder + hashlib.sha256(key.encode("utf-8")).hexdigest()[:48]

    def _get(self, name: str) -> str:
        from airflow_provider_opsgenie_hb.version_compat import get_variable

        try:
            value = get_variable(name)
        except Exception as exc:  # the database or the API server is out of reach: a miss
            raise OSError(f"Airflow Variable {name} could not be read: {type(exc).__name__}: {exc}") from exc
        if value is None:
            raise OSError(f"no Airflow Variable {name}")
        return value

    def _set(self, name: str, text: str) -> None:
        from airflow_provider_opsgenie_hb.version_compat import set_variable

        try:
            set_variable(name, text, self.DESCRIPTION)
        except Exception as exc:
            raise OSError(f"Airflow Variable {name} could not be written: {type(exc).__name__}: {exc}") from exc

    def read(self, key: str) -> str:
        return self._get(self._name(key))

    def write(self, key: str, text: str) -> None:
        self._set(self._name(key), text)

    def append(self, key: str, line: str, *, keep: int) -> None:
        # Read, add, write: of two hosts appending at once one line may be lost (the page shows one ping fewer).
        try:
            kept = self.lines(key)[-(keep - 1) :] if keep > 1 else []
        except OSError:
            kept = []
        self._set(self._name(key, "pings."), "".join([*kept, line]))

    def lines(self, key: str) -> list[str]:
        return self._get(self._name(key, "pings.")).splitlines(keepends=True)


def record_dir() -> Path:
    configured = settings.get("record_dir")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / _DIR_NAME


def store() -> RecordStore:
    """The record's store, as configured now (``[opsgenie_heartbeat] record_store`` and ``record_dir``)."""
    if settings.choice("record_store", settings.RECORD_STORES) == "metadata":
        return MetadataStore()
    return LocalDirectoryStore(record_dir())


def ttl_seconds() -> float:
    return settings.get_seconds("record_ttl_seconds")


def scope(conn_id: str, client: Any, name: str) -> tuple[str, ...]:
    """Whose heartbeat a fact is about: connection id, account (hashed, with its JSM team) and name."""
    return (conn_id, client.account_fingerprint(), name)


def fact(kind: str, *parts: Any) -> str:
    """A fact's key: the kind and its parts, as a stable text (hashed by the store)."""
    return json.dumps([kind, *parts], sort_keys=True, default=str)


def digest(value: Any) -> str:
    """A hash of ``value`` (as stable text), for an entry that must hold no setting."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def is_recorded(key: str) -> bool:
    """Whether ``key`` was recorded less than the TTL ago."""
    return recall(key) == ""


def record(key: str) -> None:
    """Record ``key`` now."""
    remember(key, "")


def recall(key: str, *, ttl: float | None = None) -> str | None:
    """The value remembered for ``key`` less than ``ttl`` (default: the configured TTL) ago, or None."""
    configured = ttl_seconds()
    if configured <= 0:
        return None
    ttl = configured if ttl is None else max(ttl, configured)
    try:
        written, value = store().read(key).split("\n", 1)
        age = time.time() - float(written)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return value if 0 <= age < ttl else None


def remember(key: str, value: str) -> None:
    """Remember ``value`` for ``key`` now; a store that cannot be written only means the check is made again."""
    if ttl_seconds() <= 0:
        return
    try:
        store().write(key, f"{time.time()!r}\n{value}")
    except OSError as exc:
        log.debug("Could not record %s: %s", key, exc)


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (through a temporary file in the same folder)."""
    temporary: str | None = None
    try:
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".tmp-", delete=False, encoding="utf-8") as f:
            temporary = f.name
            f.write(text)
        os.replace(temporary, path)
    except OSError:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise


#: How many of a heartbeat's pings its log keeps.
PING_LOG_LENGTH = 20


def record_ping(conn_id: str, name: str, request_id: str | None, source: str) -> None:
    """Add a ping this deployment sent (from ``source``: callback, listener, page) to the heartbeat's log."""
    line = json.dumps({"at": time.time(), "source": source, "request_id": request_id}) + "\n"
    try:
        store().append(fact("pings", conn_id, name), line, keep=PING_LOG_LENGTH)
    except OSError as exc:
        log.debug("Could not log the ping of %r: %s", name, exc)


def recent_pings(conn_id: str, name: str) -> list[dict[str, Any]]:
    """The pings this deployment sent the heartbeat, newest first (``at`` in epoch seconds)."""
    try:
        lines = store().lines(fact("pings", conn_id, name))
    except OSError:
        return []
    pings = []
    for line in lines[-PING_LOG_LENGTH:]:
        try:
            entry = json.loads(line)
        except ValueError:  # a torn line from a writer that was stopped
            continue
        if isinstance(entry, dict) and isinstance(entry.get("at"), (int, float)):
            pings.append(entry)
    return pings[::-1]
