"""An HTTP server that answers like OpsGenie's Heartbeat API (v2), for tests and demos."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from opsgenie_heartbeat_emulator import jsm, rules
from opsgenie_heartbeat_emulator.faults import RATE_LIMIT_MESSAGE, Fault, FaultSet, FaultSpecError
from opsgenie_heartbeat_emulator.state import INTERVAL_CHANGES, EmulatorState

log = logging.getLogger(__name__)

_PING_METHODS = ("GET", "POST", "PUT", "PATCH", "HEAD")
_REQUEST_LOG_SIZE = 10_000
DEFAULT_JSM_EMAIL = "emulator@example.com"


class _Answer(Exception):
    """Raised inside a handler to answer at once with a status and a JSON body."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _route(method: str, path: str) -> tuple[str | None, str | None]:
    """(endpoint, heartbeat name) for a raw path; endpoint None when no route matches."""
    parts = path.split("/")
    if len(parts) < 3 or parts[:3] != ["", "v2", "heartbeats"]:
        return None, None
    rest = parts[3:]
    if not rest or rest == [""]:
        return {"POST": "create", "GET": "list"}.get(method, "method_not_allowed"), None
    name = unquote(rest[0])
    if not name:
        return None, None
    if len(rest) == 1:
        endpoint = {"GET": "get", "PATCH": "update", "DELETE": "delete"}.get(method, "method_not_allowed")
        return endpoint, name
    if len(rest) == 2:
        if rest[1] == "ping":
            return ("ping" if method in _PING_METHODS else "method_not_allowed"), name
        if rest[1] in ("enable", "disable"):
            return (rest[1] if method == "POST" else "method_not_allowed"), name
    return None, name


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
        super().__init__((host, port), _Handler)

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


class _Handler(BaseHTTPRequestHandler):
    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # buffer the whole reply: one send per answer, no Nagle stalls
    server_version = "opsgenie-heartbeat-emulator"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    # ------------------------------------------------------------------ dispatch

    def _handle(self, method: str) -> None:
        started = time.monotonic()
        raw_path = urlsplit(self.path).path
        body = self._read_body()
        if raw_path.startswith("/_emulator/"):
            self._control(method, raw_path, body)
            return
        team: str | None = None
        if raw_path.startswith(jsm.PREFIX):
            endpoint, team = jsm.route(method, raw_path)
            name = jsm.query_params(urlsplit(self.path).query).get("name")
        else:
            endpoint, name = _route(method, raw_path)
        entry: dict[str, Any] = {"method": method, "path": self.path, "name": name, "endpoint": endpoint}
        if team is not None:
            entry["team"] = team
        request_id = str(uuid.uuid4())
        try:
            status, reply, headers = self._api(method, endpoint, name, body, request_id, entry, team)
        except _Answer as answer:
            status, reply, headers = answer.status, answer.body, answer.headers
        except _Dropped as done:
            entry["status"] = done.status
            self.server.requests_log.append(entry)
            return
        if team is None:  # OpsGenie's envelope; JSM answers bare objects
            reply.setdefault("took", round(time.monotonic() - started, 3))
            reply.setdefault("requestId", request_id)
        entry["status"] = status
        self.server.requests_log.append(entry)
        self._reply(status, reply, {"X-Request-ID": request_id, **headers}, head=(method == "HEAD"), started=started)

    def _api(
        self,
        method: str,
        endpoint: str | None,
        name: str | None,
        body: bytes,
        request_id: str,
        entry: dict[str, Any],
        team: str | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if endpoint is None:
            raise _Answer(404, {"message": "No such API route"})
        if endpoint == "method_not_allowed":
            raise _Answer(405, {"message": f"Method {method} is not allowed here"})
        delay, fault = self.server.faults.select(endpoint)
        if delay and not self.server.sleep(delay):
            self._drop()
        if fault is not None and not fault.process:
            self._fault(fault, request_id)
        if team is None:
            self._authorise(endpoint)
            self.server.state.sweep()
            status, reply = self._operate(endpoint, name, body, entry)
        else:
            self._authorise_jsm()
            state = self.server.jsm_state(team)
            state.sweep()
            status, reply = self._operate_jsm(state, team, endpoint, name, body, entry)
        if fault is not None:
            self._fault(fault, request_id)
        return status, reply, {"X-RateLimit-State": "OK"}

    def _authorise(self, endpoint: str) -> None:
        header = self.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme != "GenieKey" or not key or key not in (self.server.api_key, self.server.ping_only_key):
            raise _Answer(401, {"message": "Could not authenticate"})
        if key == self.server.ping_only_key and key != self.server.api_key and endpoint != "ping":
            raise _Answer(
                403, {"message": "You are not authorized to configure heartbeats with this key: it can only ping"}
            )

    def _authorise_jsm(self) -> None:
        credentials = jsm.basic_credentials(self.headers.get("Authorization", ""))
        if credentials != (self.server.jsm_email, self.server.api_key):
            raise _Answer(401, {"code": 401, "message": "Unauthorized"})

    def _operate_jsm(
        self, state: EmulatorState, team: str, endpoint: str, name: str | None, body: bytes, entry: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if endpoint == "list":
            return jsm.list_page(state, team, jsm.query_params(urlsplit(self.path).query), urlsplit(self.path).path)
        if endpoint == "create":
            fields = self._fields(body, required=("name", "interval", "intervalUnit"), jsm_errors=True)
            fields.setdefault("enabled", False)  # JSM's default, unlike OpsGenie
            entry["name"] = fields["name"]
            with state.lock:
                if fields["name"] in state.heartbeats:
                    raise _Answer(*jsm.error(409, f"Heartbeat with name [{fields['name']}] already exists", "Conflict"))
                return 201, jsm.public(state.create(fields), team)
        if not name:
            raise _Answer(*jsm.error(422, "the name query parameter is required", "InvalidParameter"))
        if endpoint == "ping":
            if not state.ping(name):
                entry["unknown_heartbeat"] = True
            return 202, {"message": "PONG - Heartbeat received"}
        with state.lock:
            if name not in state.heartbeats:
                raise _Answer(*jsm.error(404, f"Heartbeat with name [{name}] does not exist", "NotFound"))
            if endpoint == "delete":
                state.delete(name)
                return 204, {}
            fields = self._fields(body, required=(), jsm_errors=True)
            fields.pop("name", None)
            return 201, jsm.public(state.update(name, fields), team)

    def _operate(
        self, endpoint: str, name: str | None, body: bytes, entry: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        state = self.server.state
        if endpoint == "ping":
            assert name is not None
            known = state.ping(name)
            if not known:
                entry["unknown_heartbeat"] = True
            return 202, {"result": "PONG - Heartbeat received"}
        if endpoint == "list":
            with state.lock:
                items = [state.public(hb) for hb in state.heartbeats.values()]
            return 200, {"data": {"heartbeats": items}}
        if endpoint == "create":
            fields = self._fields(body, required=rules.REQUIRED_ON_CREATE)
            entry["name"] = fields["name"]
            with state.lock:
                if fields["name"] in state.heartbeats:
                    raise _Answer(409, {"message": f"Heartbeat with name [{fields['name']}] already exists"})
                return 201, {"data": state.create(fields)}
        assert name is not None
        with state.lock:
            if name not in state.heartbeats:
                raise _Answer(404, {"message": f"Heartbeat with name [{name}] does not exist"})
            if endpoint == "get":
                return 200, {"data": state.public(state.heartbeats[name])}
            if endpoint == "delete":
                state.delete(name)
                return 200, {"result": "Deleted"}
            if endpoint == "update":
                fields = self._fields(body, required=())
                fields.pop("name", None)
                hb = state.update(name, fields)
            else:
                hb = state.set_enabled(name, endpoint == "enable")
            return 200, {"data": {"name": hb["name"], "enabled": hb["enabled"], "expired": hb["expired"]}}

    def _fields(self, body: bytes, *, required: tuple[str, ...], jsm_errors: bool = False) -> dict[str, Any]:
        """Parse and check a JSON body like the service: 400 if malformed, 422 naming each bad field."""
        try:
            data = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise _Answer(400, {"message": "Request body could not be parsed as JSON"}) from None
        if not isinstance(data, dict):
            raise _Answer(400, {"message": "Request body must be a JSON object"})
        problems = rules.problems(data, required=required)
        if problems and jsm_errors:
            raise _Answer(422, {"errors": [{"title": f"{k} {v}", "code": k} for k, v in problems.items()]})
        if problems:
            raise _Answer(
                422, {"message": "Request body is not processable. Please check the errors.", "errors": problems}
            )
        return {k: data[k] for k in rules.FIELDS if data.get(k) is not None}

    def _fault(self, fault: Fault, request_id: str) -> None:
        if fault.kind == "rate_limit":
            raise _Answer(429, {"message": RATE_LIMIT_MESSAGE}, fault.rate_limit_headers())
        if fault.kind == "drop":
            self._drop()
        if fault.kind == "body":
            self._raw(fault.status, (fault.body or "").encode(), fault.content_type, request_id, fault.headers)
            raise _Dropped(fault.status)
        message = RATE_LIMIT_MESSAGE if fault.status == 429 else "Internal error (injected by the emulator)"
        headers = dict(fault.headers)
        if fault.status == 429:
            headers = {**fault.rate_limit_headers(), **headers}
        if fault.body is not None:
            self._raw(fault.status, fault.body.encode(), fault.content_type, request_id, headers)
            raise _Dropped(fault.status)
        raise _Answer(fault.status, {"message": message}, headers)

    def _drop(self) -> None:
        """Start a reply, then close the connection halfway through the body."""
        self.wfile.write(
            b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"data": {"na'
        )
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Dropped("dropped")

    # ------------------------------------------------------------------ control API

    def _control(self, method: str, path: str, body: bytes) -> None:
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = None
        handler = _CONTROL_ROUTES.get((method, path.rstrip("/")))
        if handler is None:
            self._reply(404, {"message": f"no control route {method} {path}"}, {})
            return
        if not isinstance(data, dict):
            self._reply(400, {"message": "body must be a JSON object"}, {})
            return
        try:
            status, reply = handler(self.server, data)
        except (FaultSpecError, TypeError, ValueError) as exc:
            status, reply = 400, {"message": str(exc)}
        self._reply(status, reply, {})

    # ------------------------------------------------------------------ wire

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _reply(
        self,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str],
        *,
        head: bool = False,
        started: float | None = None,
    ) -> None:
        payload = b"" if status == 204 else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if started is not None:
            self.send_header("X-Response-Time", f"{time.monotonic() - started:.3f}")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(payload)

    def _raw(self, status: int, payload: bytes, content_type: str, request_id: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Request-ID", request_id)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)


class _Dropped(Exception):
    """The reply was already written (or cut off); nothing more to send."""

    def __init__(self, status: int | str) -> None:
        super().__init__(status)
        self.status = status


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
