"""The emulator's server: its lifecycle (start, clock, reset, stop), the state it holds,
and its control API under ``/_emulator/`` (clock, faults, settings, what it saw).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from opsgenie_heartbeat_emulator import jsm
from opsgenie_heartbeat_emulator.faults import FaultSet, FaultSpecError
from opsgenie_heartbeat_emulator.handler import EmulatorRequestHandler
from opsgenie_heartbeat_emulator.state import INTERVAL_CHANGES, EmulatorState

_REQUEST_LOG_SIZE = 10_000
DEFAULT_JSM_EMAIL = "emulator@example.com"


class EmulatorServer(ThreadingHTTPServer):
    """The emulator: ``EmulatorServer(api_key=...).start()`` then use ``.url``."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str,
        ping_only_key: str | None = None,
        state_file: str | None = None,
        tick_seconds: float = 1.0,
        jsm_email: str = DEFAULT_JSM_EMAIL,
        interval_change: str = INTERVAL_CHANGES[0],
        clock_start: float | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required: the emulator checks it like OpsGenie does")
        self.api_key = api_key
        self.ping_only_key = ping_only_key
        self.jsm_email = jsm_email
        self.state = EmulatorState(state_file)
        self.state.set_interval_change(interval_change)
        self.interval_change = interval_change  # what a reset returns to
        self.clock_start = clock_start  # epoch seconds the clock starts at (and a reset returns to)
        if clock_start is not None:
            self.state.advance(clock_start - self.state.now())
        self._state_file = state_file
        self.jsm_states: dict[str, EmulatorState] = {}
        self._jsm_lock = threading.Lock()
        self.faults = FaultSet()
        self.requests_log: deque[dict[str, Any]] = deque(maxlen=_REQUEST_LOG_SIZE)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._tick_seconds = tick_seconds
        self._thread: threading.Thread | None = None
        super().__init__((host, port), EmulatorRequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def start(self) -> EmulatorServer:
        """Serve in background threads; returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="opsgenie-emulator", daemon=True)
        self._thread.start()
        threading.Thread(target=self._tick, name="opsgenie-emulator-clock", daemon=True).start()
        return self

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        if self._thread is None:  # run in the foreground (the CLI)
            threading.Thread(target=self._tick, name="opsgenie-emulator-clock", daemon=True).start()
        super().serve_forever(poll_interval)

    def jsm_state(self, team: str) -> EmulatorState:
        """The heartbeats of one JSM Operations team (kept apart from OpsGenie's)."""
        with self._jsm_lock:
            if team not in self.jsm_states:
                path = f"{self._state_file}.jsm-{team.encode().hex()}" if self._state_file else None
                self.jsm_states[team] = EmulatorState(path, clock=self.state)
            return self.jsm_states[team]

    def all_states(self) -> list[EmulatorState]:
        with self._jsm_lock:
            return [self.state, *self.jsm_states.values()]

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self.shutdown()
        self.server_close()
        for state in self.all_states():
            state.close()

    def _tick(self) -> None:
        while not self._stopped.wait(self._tick_seconds):
            for state in self.all_states():
                state.sweep()

    def sleep(self, seconds: float) -> bool:
        """Injected latency. False when a reset or a stop cut it short: drop that request,
        so a request from before a reset never acts on the state after it."""
        return not self._wake.wait(seconds)

    def reset(self) -> None:
        self.faults.clear()
        self.state.set_interval_change(self.interval_change)
        for state in self.all_states():
            state.reset()
        if self.clock_start is not None:
            self.state.advance(self.clock_start - self.state.now())
        with self._jsm_lock:
            self.jsm_states.clear()
        self.requests_log.clear()
        self._wake.set()
        self._wake = threading.Event()

    def answer_control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """A request to the control API (``/_emulator/...``): its status and JSON reply."""
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = None
        handler = _CONTROL_ROUTES.get((method, path.rstrip("/")))
        if handler is None:
            return 404, {"message": f"no control route {method} {path}"}
        if not isinstance(data, dict):
            return 400, {"message": "body must be a JSON object"}
        try:
            status, reply = handler(self, data)
        except (FaultSpecError, TypeError, ValueError) as exc:
            status, reply = 400, {"message": str(exc)}
        return status, reply


def _public_heartbeats(server: EmulatorServer) -> list[dict[str, Any]]:
    server.state.sweep()
    with server.state.lock:
        return [server.state.public(hb) for hb in server.state.heartbeats.values()]


def _advance(server: EmulatorServer, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    seconds = data.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError("seconds must be a number >= 0")
    server.state.advance(float(seconds))  # one clock: the JSM teams read it from here
    for state in server.all_states():
        state.sweep()
    return 200, {"now": server.state.now()}


def _jsm_heartbeats(server: EmulatorServer, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    teams = {}
    for team, state in list(server.jsm_states.items()):
        state.sweep()
        with state.lock:
            teams[team] = [jsm.public(hb, team) for hb in state.heartbeats.values()]
    return 200, {"teams": teams}


def _set_faults(server: EmulatorServer, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    specs = data.get("faults")
    if not isinstance(specs, list):
        raise ValueError('body must be {"faults": [...]}')
    server.faults.replace(specs)
    return 200, {"faults": server.faults.specs()}


def _clear_faults(server: EmulatorServer, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    server.faults.clear()
    return 200, {"faults": []}


def _settings(server: EmulatorServer, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    server.state.set_interval_change(data.get("interval_change", server.state.interval_change))
    return 200, {"interval_change": server.state.interval_change}


def _reset(server: EmulatorServer, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    server.reset()
    return 200, {"result": "reset"}


def _alerts(server: EmulatorServer, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    alerts = []
    for team, state in [(None, server.state), *list(server.jsm_states.items())]:
        state.sweep()
        with state.lock:
            alerts += [alert if team is None else {**alert, "team": team} for alert in state.alerts]
    return 200, {"alerts": alerts}


_ControlRoute = Callable[[EmulatorServer, dict[str, Any]], tuple[int, dict[str, Any]]]
_CONTROL_ROUTES: dict[tuple[str, str], _ControlRoute] = {
    ("GET", "/_emulator/alerts"): _alerts,
    ("GET", "/_emulator/requests"): lambda server, data: (200, {"requests": list(server.requests_log)}),
    ("GET", "/_emulator/heartbeats"): lambda server, data: (
        200,
        {"heartbeats": _public_heartbeats(server), "now": server.state.now()},
    ),
    ("POST", "/_emulator/clock/advance"): _advance,
    ("GET", "/_emulator/jsm/heartbeats"): _jsm_heartbeats,
    ("GET", "/_emulator/faults"): lambda server, data: (200, {"faults": server.faults.specs()}),
    ("POST", "/_emulator/faults"): _set_faults,
    ("DELETE", "/_emulator/faults"): _clear_faults,
    ("POST", "/_emulator/reset"): _reset,
    ("GET", "/_emulator/settings"): lambda server, data: (200, {"interval_change": server.state.interval_change}),
    ("POST", "/_emulator/settings"): _settings,
}
