"""A handle on a running emulator: its URL and key, and its control API over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class EmulatorHandle:
    """What a test needs: where the emulator is, its keys, and its control endpoints."""

    url: str
    api_key: str
    ping_only_key: str | None = None
    jsm_email: str = "emulator@example.com"
    _session: requests.Session = field(default_factory=requests.Session, repr=False)

    def __repr__(self) -> str:
        return f"EmulatorHandle(url={self.url!r})"

    def connection_json(self, *, api_key: str | None = None, **extra: Any) -> str:
        """The value of an ``AIRFLOW_CONN_...`` variable that points Airflow at this emulator."""
        conn: dict[str, Any] = {
            "conn_type": "opsgenie_heartbeat",
            "host": self.url,
            "password": api_key or self.api_key,
        }
        if extra:
            conn["extra"] = extra
        return json.dumps(conn)

    def jsm_connection_json(self, *, team_id: str = "team-1", cloud_id: str = "cloud-1", **extra: Any) -> str:
        """An ``AIRFLOW_CONN_...`` value for the emulator's JSM Operations routes."""
        conn = {
            "conn_type": "jsm_ops_heartbeat",
            "host": self.url,
            "login": self.jsm_email,
            "password": self.api_key,
            "extra": {"cloud_id": cloud_id, "team_id": team_id, **extra},
        }
        return json.dumps(conn)

    def jsm_heartbeats(self, team_id: str = "team-1") -> dict[str, dict[str, Any]]:
        """A JSM team's heartbeats by name, in JSM's shape (``status``, ``ownerTeamId``)."""
        teams = self._control("GET", "jsm/heartbeats")["teams"]
        return {hb["name"]: hb for hb in teams.get(team_id, [])}

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = self._session.request(method, f"{self.url}/_emulator/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def alerts(self) -> list[dict[str, Any]]:
        return list(self._control("GET", "alerts")["alerts"])

    def requests(self) -> list[dict[str, Any]]:
        return list(self._control("GET", "requests")["requests"])

    def heartbeats(self) -> dict[str, dict[str, Any]]:
        """Heartbeats by name, as the emulator holds them (no auth, no faults)."""
        return {hb["name"]: hb for hb in self._control("GET", "heartbeats")["heartbeats"]}

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward, so heartbeats expire without sleeping."""
        self._control("POST", "clock/advance", {"seconds": seconds})

    def set_interval_change(self, change: str) -> None:
        """``running`` (default): a changed interval moves the running countdown's deadline;
        ``next_ping``: it applies from the next ping on. OpsGenie does not document which."""
        self._control("POST", "settings", {"interval_change": change})

    def set_faults(self, *faults: dict[str, Any]) -> None:
        """Replace the active faults (see ``emulator/faults.py`` for their shape)."""
        self._control("POST", "faults", {"faults": list(faults)})

    def clear_faults(self) -> None:
        self._control("DELETE", "faults")

    def reset(self) -> None:
        self._control("POST", "reset")


def start_emulator_cli(
    api_key: str,
    *,
    port: int = 0,
    ping_only_key: str | None = None,
    state_file: str | None = None,
    extra_args: Sequence[str] = (),
) -> tuple[subprocess.Popen[str], EmulatorHandle]:
    """Start the emulator's CLI in its own process; returns the process and a handle on it.

    The caller stops the process (``terminate()``, or ``kill()`` to test ``--state``).
    """
    command = [sys.executable, "-m", "opsgenie_heartbeat_emulator", "--port", str(port), "--api-key", api_key]
    if ping_only_key:
        command += ["--ping-only-key", ping_only_key]
    if state_file:
        command += ["--state", state_file]
    command += list(extra_args)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    banner = process.stdout.readline().strip()
    if " on http" not in banner:
        process.kill()
        raise RuntimeError(f"the emulator did not start: {banner!r}")
    return process, EmulatorHandle(banner.rsplit(" ", 1)[-1], api_key, ping_only_key)


@contextmanager
def emulator_process(
    api_key: str, *, port: int = 0, ping_only_key: str | None = None, extra_args: Sequence[str] = ()
) -> Iterator[EmulatorHandle]:
    """Run the emulator in its own process (its CLI) for the duration of the block."""
    process, handle = start_emulator_cli(api_key, port=port, ping_only_key=ping_only_key, extra_args=extra_args)
    try:
        yield handle
    finally:
        process.terminate()
        process.wait(10)
