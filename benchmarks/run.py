"""`make bench`: each figure measured side by side with its baseline, median of repetitions.

Writes benchmarks/results.json (one key per figure) and prints a table. Everything talks
to the emulator on 127.0.0.1, run as its own process so client and server do not share
an interpreter.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from airflow_provider_opsgenie_hb.emulator import emulator_process

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
BIN = Path(sys.executable).parent
REPEATS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def control(url: str, path: str, body: Any = None) -> None:
    requests.request("POST" if body is not None else "GET", f"{url}/_emulator/{path}", json=body, timeout=10)


def median_of(fn: Callable[[], float], repeats: int = REPEATS) -> float:
    return statistics.median(fn() for _ in range(repeats))


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# ---------------------------------------------------------------------------- figures


def emulator_throughput(url: str, api_key: str, pings: int = 2000) -> dict[str, Any]:
    """The emulator's pings/s with one kept-alive client and with 8 threads, next to a bare
    stdlib HTTP server on the same machine that answers 202 without doing anything."""
    headers = {"Authorization": f"GenieKey {api_key}"}
    requests.post(
        f"{url}/v2/heartbeats",
        json={"name": "bench", "interval": 1, "intervalUnit": "hours", "enabled": True},
        headers=headers,
        timeout=10,
    )

    def one_client(target: str) -> float:
        with requests.Session() as session:
            session.headers.update(headers)
            return pings / timed(lambda: [session.post(target) for _ in range(pings)])

    def eight_threads(target: str) -> float:
        def worker() -> None:
            with requests.Session() as session:
                session.headers.update(headers)
                for _ in range(pings // 8):
                    session.post(target)

        threads = [threading.Thread(target=worker) for _ in range(8)]

        def run() -> None:
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        return pings / timed(run)

    ping_url = f"{url}/v2/heartbeats/bench/ping"
    with bare_server() as bare_url:
        one = median_of(lambda: one_client(ping_url), 3)
        one_bare = median_of(lambda: one_client(bare_url), 3)
        eight = eight_threads(ping_url)
        eight_bare = eight_threads(bare_url)
    return {
        "emulator_pings_per_s": round(one),
        "emulator_pings_per_s_8_threads": round(eight),
        "baseline_bare_http_server_per_s": round(one_bare),
        "baseline_bare_http_server_per_s_8_threads": round(eight_bare),
        "emulator_vs_bare_server_ratio": round(one / one_bare, 3),
        "goal": ">= 1000 pings/s",
    }


@contextmanager
def bare_server() -> Iterator[str]:
    """A stdlib keep-alive server in its own process that answers 202 and nothing else."""
    code = (
        "import sys\n"
        "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n"
        "class H(BaseHTTPRequestHandler):\n"
        "    protocol_version = 'HTTP/1.1'\n"
        "    wbufsize = -1\n"
        "    def do_POST(self):\n"
        "        n = int(self.headers.get('Content-Length') or 0)\n"
        "        self.rfile.read(n)\n"
        '        body = b\'{"result": "PONG"}\'\n'
        "        self.send_response(202)\n"
        "        self.send_header('Content-Length', str(len(body)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(body)\n"
        "    do_GET = do_POST\n"
        "    def log_message(self, *a): pass\n"
        "s = ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
        "print(s.server_address[1], flush=True)\n"
        "s.serve_forever()\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/v2/heartbeats/bench/ping"
    finally:
        process.terminate()
        process.wait(10)


def ping_overhead(url: str, api_key: str, pings: int = 2000) -> dict[str, Any]:
    """2,000 pings through the hook vs 2,000 plain requests.Session calls to the same URL."""
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    os.environ["AIRFLOW_CONN_BENCH"] = json.dumps({"conn_type": "opsgenie_heartbeat", "host": url, "password": api_key})
    hook = OpsgenieHeartbeatHook("bench")
    hook.ping_heartbeat("bench")  # connection read, session open
    session = requests.Session()
    session.headers["Authorization"] = f"GenieKey {api_key}"
    ping_url = f"{url}/v2/heartbeats/bench/ping"
    session.post(ping_url)
    ratios, hook_times, plain_times = [], [], []
    for _ in range(REPEATS):
        plain = timed(lambda: [session.post(ping_url) for _ in range(pings)])
        hooked = timed(lambda: [hook.ping_heartbeat("bench") for _ in range(pings)])
        ratios.append(hooked / plain)
        hook_times.append(hooked)
        plain_times.append(plain)
    return {
        "ping_overhead_ratio": round(statistics.median(ratios), 3),
        "hook_ping_ms": round(statistics.median(hook_times) / pings * 1000, 3),
        "baseline_requests_session_ping_ms": round(statistics.median(plain_times) / pings * 1000, 3),
        "goal": "<= 1.10",
    }


FIGURES: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "emulator_throughput": emulator_throughput,
    "ping_overhead": ping_overhead,
}


def main() -> None:
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="opsgenie-hb-bench-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    api_key = "bench-" + secrets.token_hex(8)
    results: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    only = set(sys.argv[1:])
    with emulator_process(api_key) as handle:
        url = handle.url
        for key, figure in FIGURES.items():
            if only and key not in only:
                continue
            control(url, "reset", {})
            print(f"measuring {key} ...", flush=True)
            results[key] = figure(url, api_key)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{'figure':<45} {'value':>12}   goal")
    for key, figure in results.items():
        if not isinstance(figure, dict) or key == "machine":
            continue
        goal = figure.get("goal", "")
        for name, value in figure.items():
            if name != "goal":
                print(f"{name:<45} {value!s:>12}   {goal if name == next(iter(figure)) else ''}")
    print(f"\nmachine: {results['machine']}\nwritten to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
