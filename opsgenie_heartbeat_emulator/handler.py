"""The emulator's HTTP request handler: OpsGenie's Heartbeat API (v2) and JSM Operations'
heartbeat routes, answered like the services (authorisation, validation, errors, injected
faults). Requests under ``/_emulator/`` go to the server's control API.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import socket
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from opsgenie_heartbeat_emulator import jsm, rules
from opsgenie_heartbeat_emulator.faults import RATE_LIMIT_MESSAGE, Fault
from opsgenie_heartbeat_emulator.state import EmulatorState

if TYPE_CHECKING:
    from opsgenie_heartbeat_emulator.server import EmulatorServer

log = logging.getLogger(__name__)

_PING_METHODS = ("GET", "POST", "PUT", "PATCH", "HEAD")


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


class EmulatorRequestHandler(BaseHTTPRequestHandler):
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
        status, reply = self.server.answer_control(method, path, body)
        self._reply(status, reply, {})

    # ------------------------------------------------------------------ wire

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header on the emulator's clock (moved by ``/_emulator/clock/advance``), as OpsGenie's
        answers carry its own."""
        return email.utils.formatdate(self.server.state.now() if timestamp is None else timestamp, usegmt=True)

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
