"""Servers that misbehave the way real networks do, on 127.0.0.1, for the deadline tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MODES = ("black_hole", "trickle_body", "trickle_headers")


@contextmanager
def faulty_server(mode: str, *, step: float = 0.5, max_seconds: float = 120) -> Iterator[str]:
    """Serve ``mode`` on a free port and yield its base URL; every connection is served alike.

    - ``black_hole``: accepts the connection, reads the request, never answers;
    - ``trickle_body``: answers 202 headers at once, then one body byte every ``step`` seconds;
    - ``trickle_headers``: sends the status line and headers one byte every ``step`` seconds.
    Each connection stops by itself after ``max_seconds``.
    """
    assert mode in MODES
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1)
            try:
                conn.recv(65536)
            except OSError:
                return
            body = b'{"result": "PONG", "took": 0.0, "requestId": "trickle"}'
            head = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
            head += b"Content-Length: %d\r\n\r\n" % len(body)
            ends = time.monotonic() + max_seconds
            if mode == "trickle_body":
                conn.sendall(head)
            payload = {"black_hole": b"", "trickle_body": body, "trickle_headers": head + body}[mode]
            for i in range(len(payload)) if payload else iter(int, 1):
                if stop.is_set() or time.monotonic() > ends:
                    return
                if payload:
                    try:
                        conn.sendall(payload[i : i + 1])
                    except OSError:
                        return
                time.sleep(step)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        listener.close()
