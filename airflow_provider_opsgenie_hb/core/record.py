"""What the success callback remembers between runs, so steady state costs one request per run.

DAG-level callbacks run in a fresh process for every run, so a memory kept in the process
would repeat the existence check (and the ensure) on every run. The callback records each
fact - "this heartbeat was ensured with these settings", "this heartbeat exists" - as one
small file under ``[opsgenie_heartbeat] record_dir`` (default ``$XDG_CACHE_HOME`` or
``~/.cache``, then ``airflow-provider-opsgenie-heartbeat``), valid for
``[opsgenie_heartbeat] record_ttl_seconds`` (default one day; 0 turns the record off).

A fact is keyed by connection id, a hash of the base URL and credentials (another account
behind the same connection id is another fact), the heartbeat name and the ensured
settings, so a changed setting is ensured at once and a heartbeat deleted by hand comes
back within a day. Only hashes are written: a record holds no key and no setting. A
missing, corrupt, unreadable or unwritable record only means the check is made again: it
never fails a callback and never holds back a ping.

Beside the facts, each heartbeat has a short log of the pings this deployment sent it (the
last :data:`PING_LOG_LENGTH`: when, from where, OpsGenie's requestId), which the Heartbeats
page shows. It holds no key either, and a log that cannot be written is skipped.
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
from typing import Any

from airflow_provider_opsgenie_hb import settings

log = logging.getLogger(__name__)

_DIR_NAME = "airflow-provider-opsgenie-heartbeat"


def record_dir() -> Path:
    configured = settings.get("record_dir")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / _DIR_NAME


def ttl_seconds() -> float:
    return settings.get_seconds("record_ttl_seconds")


def scope(conn_id: str, client: Any, name: str) -> tuple[str, ...]:
    """Whose heartbeat a fact is about: connection id, account (hashed, with its JSM team) and name."""
    return (conn_id, client.account_fingerprint(), name)


def fact(kind: str, *parts: Any) -> str:
    """A fact's key: the kind and its parts, as a stable text (hashed for the file name)."""
    return json.dumps([kind, *parts], sort_keys=True, default=str)


def is_recorded(key: str) -> bool:
    """Whether ``key`` was recorded less than the TTL ago."""
    return recall(key) == ""


def record(key: str) -> None:
    """Record ``key`` now (atomically: a concurrent reader sees the old file or the new one)."""
    remember(key, "")


def recall(key: str, *, ttl: float | None = None) -> str | None:
    """The value remembered for ``key`` less than ``ttl`` (default: the configured TTL) ago, or None."""
    configured = ttl_seconds()
    if configured <= 0:
        return None
    ttl = configured if ttl is None else max(ttl, configured)
    path = _path(key)
    try:
        name, written, value = path.read_text(encoding="utf-8").split("\n", 2)
        if name != path.name:  # a whole record, not a torn or foreign file
            return None
        age = time.time() - float(written)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return value if 0 <= age < ttl else None


def remember(key: str, value: str) -> None:
    """Remember ``value`` for ``key`` now (atomically: a concurrent reader sees the old file or the new one)."""
    if ttl_seconds() <= 0:
        return
    path = _path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _replace(path, f"{path.name}\n{time.time()!r}\n{value}")
    except OSError as exc:
        log.debug("Could not record %s in %s: %s", key, path.parent, exc)


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


def _path(key: str) -> Path:
    return record_dir() / hashlib.sha256(key.encode("utf-8")).hexdigest()


#: How many of a heartbeat's pings its log keeps.
PING_LOG_LENGTH = 20


def record_ping(conn_id: str, name: str, request_id: str | None, source: str) -> None:
    """Add a ping this deployment sent (from ``source``: callback, listener, page) to the heartbeat's log.

    Lines are appended (concurrent writers do not overwrite each other) and the log is cut
    back to the last :data:`PING_LOG_LENGTH` once it holds twice that many.
    """
    path = _ping_log(conn_id, name)
    line = json.dumps({"at": time.time(), "source": source, "request_id": request_id}) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log_file:
            log_file.write(line)
        if path.stat().st_size > 2 * PING_LOG_LENGTH * len(line):
            _replace(path, "".join(_lines(path)[-PING_LOG_LENGTH:]))
    except OSError as exc:
        log.debug("Could not log the ping of %r in %s: %s", name, path.parent, exc)


def recent_pings(conn_id: str, name: str) -> list[dict[str, Any]]:
    """The pings this deployment sent the heartbeat, newest first (``at`` in epoch seconds)."""
    try:
        lines = _lines(_ping_log(conn_id, name))
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


def _ping_log(conn_id: str, name: str) -> Path:
    return record_dir() / "pings" / hashlib.sha256(fact("pings", conn_id, name).encode("utf-8")).hexdigest()


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
