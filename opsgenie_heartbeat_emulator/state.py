"""The emulator's heartbeats, alerts and clock, in memory or in a SQLite file."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import datetime, timezone
from typing import Any

from opsgenie_heartbeat_emulator.rules import DEFAULT_ALERT_PRIORITY

_UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}
# Internal bookkeeping kept beside the API fields, never shown to clients.
_COUNTDOWN = "_countdownFrom"
_PINGED = "_lastPing"
_ARMED = "_armedSeconds"  # the interval the running countdown started with
#: What a changed interval does to the countdown already running. OpsGenie does not say:
#: ``running`` (the default) applies it at once, measured from the last ping;
#: ``next_ping`` keeps the running countdown and applies it from the next ping on.
INTERVAL_CHANGES = ("running", "next_ping")


def _seconds(hb: dict[str, Any]) -> float:
    return float(int(hb["interval"]) * _UNIT_SECONDS[hb["intervalUnit"]])


def _iso(epoch: float) -> str:
    """ISO-8601 UTC with milliseconds, as OpsGenie writes it: ``2025-02-20T14:00:05.533Z``."""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class EmulatorState:
    """Heartbeats by name, raised alerts and a clock that tests can move forward.

    Every public method takes the lock; with a state file every write is committed
    before the method returns, so an acknowledged write survives a killed process.
    """

    def __init__(self, state_file: str | None = None, *, clock: EmulatorState | None = None) -> None:
        self._clock = clock  # another state whose clock this one follows (one clock per emulator)
        self.lock = threading.RLock()
        self.heartbeats: dict[str, dict[str, Any]] = {}
        self.alerts: list[dict[str, Any]] = []
        self.clock_offset = 0.0
        self.interval_change = INTERVAL_CHANGES[0]
        self._next_due = float("inf")
        self._db: sqlite3.Connection | None = None
        if state_file:
            self._open(state_file)

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        return self._clock.now() if self._clock is not None else time.time() + self.clock_offset

    def changes_apply_at_once(self) -> bool:
        """Whether a changed interval moves the running countdown's deadline (one setting per emulator)."""
        owner = self._clock if self._clock is not None else self
        return owner.interval_change == "running"

    def set_interval_change(self, change: str) -> None:
        """Choose what a changed interval does to the running countdown (see :data:`INTERVAL_CHANGES`)."""
        if change not in INTERVAL_CHANGES:
            raise ValueError(f"interval_change must be one of {', '.join(INTERVAL_CHANGES)}, got {change!r}")
        with self.lock:
            self.interval_change = change
            self._next_due = float("inf")
            for hb in self.heartbeats.values():
                self._schedule(hb)

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.clock_offset += seconds
            self._save_meta()
            self.sweep()

    # ------------------------------------------------------------------ heartbeats

    def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            name = fields["name"]
            hb: dict[str, Any] = {
                "name": name,
                "description": fields.get("description", ""),
                "interval": fields["interval"],
                "intervalUnit": fields["intervalUnit"],
                "enabled": fields["enabled"],
                "expired": False,
                "alertMessage": fields.get("alertMessage") or f"{name} is expired",
                "alertTags": list(fields.get("alertTags") or []),
                "alertPriority": fields.get("alertPriority") or DEFAULT_ALERT_PRIORITY,
                _COUNTDOWN: now,
            }
            hb[_ARMED] = _seconds(hb)
            if fields.get("ownerTeam"):
                hb["ownerTeam"] = dict(fields["ownerTeam"])
            self.heartbeats[name] = hb
            self._schedule(hb)
            self._save(hb)
            return self.public(hb)

    def update(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            hb = self.heartbeats[name]
            was_enabled = hb["enabled"]
            for key, value in fields.items():
                if key != "name":
                    hb[key] = dict(value) if key == "ownerTeam" else value
            if hb["enabled"] and not was_enabled:
                hb[_COUNTDOWN] = self.now()
                hb[_ARMED] = _seconds(hb)
            self._schedule(hb)
            self._save(hb)
            return self.public(hb)

    def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        """Enable or disable. Enabling restarts the countdown but does not clear ``expired``."""
        return self.update(name, {"enabled": enabled})

    def delete(self, name: str) -> None:
        with self.lock:
            del self.heartbeats[name]
            if self._db is not None:
                self._db.execute("DELETE FROM heartbeats WHERE name = ?", (name,))
                self._db.commit()

    def ping(self, name: str) -> bool:
        """Record a ping; return whether the heartbeat exists (the API answers PONG either way)."""
        with self.lock:
            hb = self.heartbeats.get(name)
            if hb is None:
                return False
            now = self.now()
            hb["expired"] = False
            hb[_PINGED] = now
            hb[_COUNTDOWN] = now
            hb[_ARMED] = _seconds(hb)
            hb["lastPingTime"] = _iso(now)
            self._schedule(hb)
            self._save(hb)
            return True

    @staticmethod
    def public(hb: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in hb.items() if not k.startswith("_")}

    # ------------------------------------------------------------------ expiry

    def _deadline(self, hb: dict[str, Any]) -> float:
        armed = hb.get(_ARMED)
        seconds = _seconds(hb) if armed is None or self.changes_apply_at_once() else float(armed)
        return float(hb[_COUNTDOWN]) + seconds

    def _schedule(self, hb: dict[str, Any]) -> None:
        if hb["enabled"] and not hb["expired"]:
            self._next_due = min(self._next_due, self._deadline(hb))

    def sweep(self) -> None:
        """Expire every enabled heartbeat whose interval passed without a ping: one alert each."""
        with self.lock:
            now = self.now()
            if now <= self._next_due:
                return
            next_due = float("inf")
            for hb in self.heartbeats.values():
                if not hb["enabled"] or hb["expired"]:
                    continue
                deadline = self._deadline(hb)
                if now > deadline:
                    hb["expired"] = True
                    self._save(hb)
                    self._raise_alert(hb, deadline)
                else:
                    next_due = min(next_due, deadline)
            self._next_due = next_due

    def _raise_alert(self, hb: dict[str, Any], at: float) -> None:
        alert = {
            "name": hb["name"],
            "message": hb["alertMessage"],
            "tags": list(hb["alertTags"]),
            "priority": hb["alertPriority"],
            "time": _iso(at),
        }
        self.alerts.append(alert)
        if self._db is not None:
            self._db.execute("INSERT INTO alerts (body) VALUES (?)", (json.dumps(alert),))
            self._db.commit()

    def reset(self) -> None:
        with self.lock:
            self.heartbeats.clear()
            self.alerts.clear()
            self.clock_offset = 0.0
            self._next_due = float("inf")
            if self._db is not None:
                self._db.executescript("DELETE FROM heartbeats; DELETE FROM alerts; DELETE FROM meta;")
                self._db.commit()

    # ------------------------------------------------------------------ persistence

    def _open(self, path: str) -> None:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process (not a power cut), which is what
        # "acknowledged writes survive a restart" needs, at a fraction of FULL's cost.
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(
            "CREATE TABLE IF NOT EXISTS heartbeats (name TEXT PRIMARY KEY, body TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS alerts (id INTEGER PRIMARY KEY, body TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        )
        db.isolation_level = "DEFERRED"  # explicit commits from here on
        for name, body in db.execute("SELECT name, body FROM heartbeats"):
            self.heartbeats[name] = json.loads(body)
        self.alerts = [json.loads(body) for (body,) in db.execute("SELECT body FROM alerts ORDER BY id")]
        row = db.execute("SELECT value FROM meta WHERE key = 'clock_offset'").fetchone()
        self.clock_offset = float(row[0]) if row else 0.0
        self._db = db
        for hb in self.heartbeats.values():
            self._schedule(hb)

    def _save(self, hb: dict[str, Any]) -> None:
        if self._db is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO heartbeats (name, body) VALUES (?, ?)", (hb["name"], json.dumps(hb))
            )
            self._db.commit()

    def _save_meta(self) -> None:
        if self._db is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('clock_offset', ?)", (repr(self.clock_offset),)
            )
            self._db.commit()

    def close(self) -> None:
        with self.lock:
            if self._db is not None:
                self._db.close()
                self._db = None
