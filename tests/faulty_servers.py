"""Servers that misbehave the way real networks do, on 127.0.0.1, for the deadline tests.

Each is a plain listening socket whose connections get one behaviour; every behaviour
stops by itself when the server stops (or after a minute).
"""

from __future__ import annotations

import functools
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LIST_BODY = json.dumps({"data": {"heartbeats": []}, "took": 0, "requestId": "r-1"}).encode()
PONG_BODY = json.dumps({"result": "PONG", "took": 0.0, "requestId": "r-1"}).encode()

Behaviour = Callable[[socket.socket, threading.Event], None]


def read_request(conn: socket.socket) -> bytes:
    """The request's line and headers (what came before the connection closed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def trickle_body(
    conn: socket.socket,
    stop: threading.Event,
    *,
    every: float = 0.5,
    status: bytes = b"200 OK",
    body: bytes = LIST_BODY,
    length: int = 40,
) -> None:
    """Headers at once, then one byte of the body every ``every`` seconds."""
    read_request(conn)
    head = b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
    conn.sendall(head + str(length).encode() + b"\r\n\r\n")
    for byte in (body + b" " * length)[:length]:
        if stop.wait(every):
            return
        conn.sendall(bytes([byte]))


def trickle_headers(conn: socket.socket, stop: threading.Event, *, every: float = 0.5) -> None:
    """The status line and headers one byte every ``every`` seconds (a ping's 202 PONG)."""
    read_request(conn)
    head = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(PONG_BODY)
    for byte in head + PONG_BODY:
        if stop.wait(every):
            return
        conn.sendall(bytes([byte]))


def never_answer(conn: socket.socket, stop: threading.Event) -> None:
    """Reads the request, then says nothing."""
    read_request(conn)
    stop.wait(60)


def accept_and_hang(conn: socket.socket, stop: threading.Event) -> None:
    """Accepts, reads nothing, answers nothing."""
    stop.wait(60)


def serve(behaviour: Behaviour | None) -> Iterator[str]:
    """A listening socket on 127.0.0.1 that treats each connection with ``behaviour``;
    with ``None`` it never calls ``accept()`` (the kernel completes the handshake)."""
    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    connections: list[socket.socket] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            connections.append(conn)
            assert behaviour is not None
            threading.Thread(target=behaviour, args=(conn, stop), daemon=True).start()

    if behaviour is not None:
        threading.Thread(target=loop, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        for conn in connections:
            conn.close()
        listener.close()


#: What a ping meets: a 202 PONG trickled after its headers, trickled headers, or silence.
MODES: dict[str, Behaviour] = {
    "trickle_body": functools.partial(trickle_body, status=b"202 Accepted", body=PONG_BODY, length=len(PONG_BODY)),
    "trickle_headers": trickle_headers,
    "black_hole": never_answer,
}


@contextmanager
def faulty_server(mode: str) -> Iterator[str]:
    """One of :data:`MODES` on a free port; yields its base URL."""
    yield from serve(MODES[mode])
