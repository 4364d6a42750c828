"""`make bench`: each figure measured side by side with its baseline, median of repetitions.

Writes benchmarks/results.json (one key per figure) and prints a table. Everything talks
to the emulator on 127.0.0.1, run as its own process so client and server do not share
an interpreter.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
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
from urllib.parse import urlsplit

import requests

from opsgenie_heartbeat_emulator import EmulatorHandle, emulator_process

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
BIN = Path(sys.executable).parent
REPEATS = 5


def median_of(fn: Callable[[], float], repeats: int = REPEATS) -> float:
    return statistics.median(fn() for _ in range(repeats))


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# ---------------------------------------------------------------------------- figures


def emulator_throughput(emulator: EmulatorHandle, pings: int = 2000) -> dict[str, Any]:
    """The emulator's pings/s, one kept-alive connection and 8 threads, next to a bare stdlib
    server on the same machine that answers 202 and does nothing else.

    The client is the standard library's ``http.client``: with ``requests`` (about 1 ms a
    call here, see ``ping_overhead``) the client, not the server, would set the pace.
    """
    headers = {"Authorization": f"GenieKey {emulator.api_key}"}
    body = {"name": "bench", "interval": 1, "intervalUnit": "hours", "enabled": True}
    requests.post(f"{emulator.url}/v2/heartbeats", json=body, headers=headers, timeout=10).raise_for_status()

    def drive(url: str, connections: int) -> float:
        parts = urlsplit(url)

        def worker() -> None:
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
            for _ in range(pings // connections):
                conn.request("POST", parts.path, headers=headers)
                response = conn.getresponse()
                response.read()
                assert response.status == 202, response.status
            conn.close()

        threads = [threading.Thread(target=worker) for _ in range(connections)]

        def run() -> None:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        return pings / timed(run)

    ping_url = f"{emulator.url}/v2/heartbeats/bench/ping"
    with bare_server() as bare_url:
        one = median_of(lambda: drive(ping_url, 1), 3)
        one_bare = median_of(lambda: drive(bare_url, 1), 3)
        eight = median_of(lambda: drive(ping_url, 8), 3)
        eight_bare = median_of(lambda: drive(bare_url, 8), 3)
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


def ping_overhead(emulator: EmulatorHandle, pings: int = 2000) -> dict[str, Any]:
    """2,000 pings through the hook vs 2,000 bare ``requests.Session`` POSTs of the same request
    (same URL, same GenieKey header), alternating, the emulator in its own process as a real
    server would be: in the benchmark's process the server's share of each ping would hide
    the client's own work."""
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    with emulator_process(emulator.api_key) as server:
        url, api_key = server.url, server.api_key
        os.environ["AIRFLOW_CONN_BENCH"] = server.connection_json()
        hook = OpsgenieHeartbeatHook("bench")
        hook.ping_heartbeat("bench")  # connection read, session open
        session = requests.Session()
        session.headers["Authorization"] = f"GenieKey {api_key}"
        ping_url = f"{url}/v2/heartbeats/bench/ping"
        session.post(ping_url)
        # Short alternating blocks, so both sides meet the same load from other processes on a
        # shared machine; the median of the per-block ratios.
        block = 100
        ratios, hook_times, plain_times = [], [], []
        for _ in range(REPEATS * pings // block):
            plain = timed(lambda: [session.post(ping_url) for _ in range(block)])
            hooked = timed(lambda: [hook.ping_heartbeat("bench") for _ in range(block)])
            ratios.append(hooked / plain)
            hook_times.append(hooked)
            plain_times.append(plain)
    return {
        "ping_overhead_ratio": round(statistics.median(ratios), 3),
        "hook_ping_ms": round(statistics.median(hook_times) / block * 1000, 3),
        "baseline_requests_session_ping_ms": round(statistics.median(plain_times) / block * 1000, 3),
        "emulator": "its own process",
        "goal": "<= 1.05",
    }


def callback_overhead(emulator: EmulatorHandle, calls: int = 200) -> dict[str, Any]:
    """The success callback's own cost per DAG run beyond its HTTP call: a fresh notifier each
    run (as the DAG processor builds one per run), next to a bare ``requests.post`` ping on a
    fresh connection."""
    url, api_key = emulator.url, emulator.api_key
    from airflow.sdk import DAG

    from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

    os.environ["AIRFLOW_CONN_BENCH"] = emulator.connection_json()
    _create(emulator, "bench")
    context = {"dag": DAG("bench", schedule="@daily"), "run_id": "scheduled__1"}
    send_opsgenie_heartbeat(opsgenie_heartbeat_conn_id="bench")(context)  # steady state: the check is recorded
    headers = {"Authorization": f"GenieKey {api_key}"}
    ping_url = f"{url}/v2/heartbeats/bench/ping"
    notifier_times, plain_times = [], []
    for _ in range(calls):
        notifier = send_opsgenie_heartbeat(name="{{ dag.dag_id }}", opsgenie_heartbeat_conn_id="bench")
        notifier_times.append(timed(lambda n=notifier: n(context)))
        plain_times.append(timed(lambda: requests.post(ping_url, headers=headers, timeout=10)))
    overhead = statistics.median(notifier_times) - statistics.median(plain_times)
    return {
        "callback_overhead_ms": round(overhead * 1000, 3),
        "callback_ms": round(statistics.median(notifier_times) * 1000, 3),
        "baseline_plain_requests_ping_ms": round(statistics.median(plain_times) * 1000, 3),
        "goal": "<= 5 ms",
    }


def _create(emulator: EmulatorHandle, name: str) -> None:
    headers = {"Authorization": f"GenieKey {emulator.api_key}"}
    body = {"name": name, "interval": 1, "intervalUnit": "hours", "enabled": True}
    requests.post(f"{emulator.url}/v2/heartbeats", json=body, headers=headers, timeout=10)


def callback_hang_bound(emulator: EmulatorHandle) -> dict[str, Any]:
    """How long the callback takes to give up over its deadline: on an OpsGenie that hangs
    before answering, on a server that trickles its answer a byte every 0.5 s, and on one
    that accepts and never answers. The worst of the three is the figure."""
    from airflow.sdk import DAG

    from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

    sys.path.insert(0, str(ROOT / "tests"))
    from faulty_servers import faulty_server

    deadline = 2.0
    context = {"dag": DAG("bench", schedule="@daily"), "run_id": "scheduled__1"}

    def bound() -> float:
        notifier = send_opsgenie_heartbeat(
            name="bench", opsgenie_heartbeat_conn_id="bench", deadline=deadline, ensure=True
        )
        return median_of(lambda: timed(lambda: notifier(context)), 3)

    returns: dict[str, float] = {}
    os.environ["AIRFLOW_CONN_BENCH"] = emulator.connection_json()
    emulator.set_faults({"kind": "latency", "seconds": 120})
    try:
        returns["hung"] = bound()
    finally:
        emulator.reset()
    for mode in ("trickle_body", "trickle_headers", "black_hole"):
        with faulty_server(mode) as url:
            conn = {"conn_type": "opsgenie_heartbeat", "host": url, "password": "k" * 32}
            os.environ["AIRFLOW_CONN_BENCH"] = json.dumps(conn)
            returns[mode] = bound()
    return {
        "callback_hang_bound_ratio": round(max(returns.values()) / deadline, 3),
        **{f"callback_return_s_{mode}": round(seconds, 3) for mode, seconds in returns.items()},
        "baseline_deadline_s": deadline,
        "goal": "<= 1.05",
    }


def requests_per_run(emulator: EmulatorHandle, runs: int = 20) -> dict[str, Any]:
    """Requests the success callback sends per successful run once in steady state (after the
    first run), with and without ``ensure``; the baseline is the ping alone, 1.0."""
    from airflow.sdk import DAG

    from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

    os.environ["AIRFLOW_CONN_BENCH"] = emulator.connection_json()
    emulator.reset()
    _create(emulator, "plain")
    figures = {}
    with tempfile.TemporaryDirectory() as record_dir:
        os.environ["AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR"] = record_dir
        for label, kwargs in (("ensure", {"ensure": True}), ("plain", {})):
            context = {"dag": DAG(label, schedule="@daily"), "run_id": "scheduled__1"}
            counts = []
            for _ in range(runs):  # a fresh notifier per run, as the DAG processor builds one
                before = len(emulator.requests())
                send_opsgenie_heartbeat(opsgenie_heartbeat_conn_id="bench", **kwargs)(context)
                counts.append(len(emulator.requests()) - before)
            figures[label] = statistics.mean(counts[1:])
            figures[f"{label}_first_run"] = counts[0]
        del os.environ["AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR"]
    return {
        "requests_per_run": max(figures["ensure"], figures["plain"]),
        **{f"requests_per_run_{k}": v for k, v in figures.items()},
        "baseline_ping_alone": 1.0,
        "goal": "1.0",
    }


def bulk_ensure(emulator: EmulatorHandle, count: int = 500, limit: float = 50) -> dict[str, Any]:
    """Ensure 500 heartbeats against a 50 requests/s rate limit: concurrently through the
    hook's bulk ensure, and the same work sequentially as the baseline."""
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    os.environ["AIRFLOW_CONN_BENCH"] = emulator.connection_json()

    def run(workers: int, prefix: str) -> tuple[float, int]:
        emulator.reset()
        emulator.set_faults({"kind": "rate_limit", "rate": limit, "burst": limit})
        specs = [{"name": f"{prefix}-{i}", "interval": 1, "interval_unit": "hours"} for i in range(count)]
        hook = OpsgenieHeartbeatHook("bench", time_budget=120)
        started = time.perf_counter()
        results = hook.ensure_heartbeats(specs, max_workers=workers)
        elapsed = time.perf_counter() - started
        log = emulator.requests()
        served = sum(1 for r in log if r["status"] != 429)
        failures = sum(1 for r in results if not hasattr(r, "action"))
        # The bucket starts full: those first requests are a burst, not the sustained rate.
        return (served - limit) / elapsed / limit, failures

    concurrent, concurrent_failures = run(8, "c")
    sequential, sequential_failures = run(1, "s")
    emulator.reset()
    return {
        "bulk_ensure_rate_utilisation": round(concurrent, 3),
        "bulk_ensure_failures": concurrent_failures,
        "baseline_sequential_rate_utilisation": round(sequential, 3),
        "baseline_sequential_failures": sequential_failures,
        "goal": ">= 0.8 with zero failures",
    }


def _import_ms(module: str) -> float | None:
    """Added import time (ms) of ``module`` on top of ``airflow.sdk``, from ``-X importtime``."""
    code = f"import airflow.sdk\nimport {module}"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        return None
    # "import time:  self | cumulative | <indent>name"; one leading space marks a top-level import.
    after_sdk = False
    total_us = 0
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        top_level = not name.startswith("  ")
        if top_level and after_sdk:
            total_us += int(cumulative)
        if top_level and name.strip() == "airflow.sdk":
            after_sdk = True
    return total_us / 1000


def import_cost(emulator: EmulatorHandle, repeats: int = 10) -> dict[str, Any]:
    """Import time needs no emulator; the argument keeps one signature for every figure."""
    ours = "airflow_provider_opsgenie_hb.notifications.heartbeat"
    official = "airflow.providers.opsgenie.notifications.opsgenie"
    ours_ms = [_import_ms(ours) for _ in range(repeats)]
    official_ms = [_import_ms(official) for _ in range(repeats)]
    official_ok = all(v is not None for v in official_ms)
    return {
        "import_ms": round(statistics.median(v for v in ours_ms if v is not None), 1),
        "baseline_official_opsgenie_notifier_import_ms": (
            round(statistics.median(v for v in official_ms if v is not None), 1) if official_ok else None
        ),
        "goal": "lower than the official provider's",
    }


def interval_derivation(emulator: EmulatorHandle, repeats: int = 3) -> dict[str, Any]:
    """Deriving a heartbeat interval (four-year look-ahead) for each schedule of the comparison
    corpus in ``tests/unit/schedule_corpus.py``: p95 and worst over the corpus (median of
    repeats each), next to one ``next_dagrun_info`` call of Airflow's timetable."""
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "unit")]  # the corpus and the timetables it uses
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction
    from schedule_corpus import NOW, corpus

    from airflow_provider_opsgenie_hb.core import schedule

    def derive(entry: Any) -> float:
        schedule._GAPS.clear()  # no cached answers
        timetable = entry.timetable()
        return timed(lambda: schedule.longest_gap(timetable, now=NOW))

    derive(corpus()[0])  # imports
    times = sorted(statistics.median(derive(entry) for _ in range(repeats)) * 1000 for entry in corpus())
    core = coerce_to_core_timetable(corpus()[0].timetable())
    restriction = TimeRestriction(earliest=NOW, latest=None, catchup=True)
    call = median_of(
        lambda: timed(lambda: core.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)), 50
    )
    return {
        "interval_derivation_ms": round(times[math.ceil(0.95 * len(times)) - 1], 2),
        "worst_ms": round(times[-1], 2),
        "median_ms": round(statistics.median(times), 2),
        "corpus_entries": len(times),
        "baseline_one_next_dagrun_info_ms": round(call * 1000, 3),
        "goal": "p95 <= 20 ms, worst <= 200 ms",
    }


SYNC_CRONS = ("@hourly", "*/15 * * * *", "0 3 * * *", "0 6 * * 1-5", "@weekly", "0 0 1 * *")
SYNC_ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")


def write_dag_folder(folder: Path, count: int = 1000) -> None:
    """``count`` DAG files tagged for sync: six common crons in four time zones."""
    for n in range(count):
        cron, zone = SYNC_CRONS[n % len(SYNC_CRONS)], SYNC_ZONES[(n // len(SYNC_CRONS)) % len(SYNC_ZONES)]
        (folder / f"dag_{n:04d}.py").write_text(
            "import pendulum\n"
            "from airflow.sdk import DAG\n\n"
            f"dag = DAG('bench_{n:04d}', schedule={cron!r}, start_date=pendulum.datetime(2026, 1, 1, tz={zone!r}),\n"
            "          tags=['opsgenie-heartbeat'])\n"
        )


def sync_1000_dags(emulator: EmulatorHandle, repeats: int = 3) -> dict[str, Any]:
    """``sync_heartbeats`` over 1,000 generated DAGs (creating their heartbeats on the emulator),
    next to the DagBag parse of the same folder that it starts with."""
    from airflow_provider_opsgenie_hb.core import schedule, sync
    from airflow_provider_opsgenie_hb.core.sync import load_dags, sync_heartbeats
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    # The DAGs are tagged: the listener's connection ([opsgenie_heartbeat] conn_id) is the one they declare on.
    os.environ["AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT"] = emulator.connection_json()
    spent = {"derive": 0.0, "apply": 0.0}

    def measured(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started

        return wrapper

    originals = schedule.interval_for_dag, sync.apply
    schedule.interval_for_dag = measured("derive", schedule.interval_for_dag)  # type: ignore[assignment]
    sync.apply = measured("apply", sync.apply)  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory(prefix="opsgenie-hb-bench-dags-") as folder:
            write_dag_folder(Path(folder))
            parse_times, sync_times, derive_times, apply_times = [], [], [], []
            for _ in range(repeats):
                parse_times.append(timed(lambda: load_dags(folder)))
                emulator.reset()
                schedule._GAPS.clear()  # no answers kept from the last round
                spent.update(derive=0.0, apply=0.0)
                started = time.perf_counter()
                plan = sync_heartbeats(folder, OpsgenieHeartbeatHook())
                sync_times.append(time.perf_counter() - started)
                derive_times.append(spent["derive"])
                apply_times.append(spent["apply"])
                assert plan.count("create") == 1000, plan.render()[-300:]
    finally:
        schedule.interval_for_dag, sync.apply = originals
    total, parse = statistics.median(sync_times), statistics.median(parse_times)
    return {
        "sync_1000_dags_s": round(total, 2),
        "baseline_dagbag_parse_s": round(parse, 2),
        "sync_vs_parse_ratio": round(total / parse, 2),
        "of_which_interval_derivation_s": round(statistics.median(derive_times), 2),
        "of_which_writes_to_opsgenie_s": round(statistics.median(apply_times), 2),
        "goal": "sync <= 2x the parse",
    }


def detection_delay(emulator: EmulatorHandle) -> dict[str, Any]:
    """A run missed at every position of a year, for each schedule of a corpus: the time from
    its expected start to the alert, with a fixed interval (the baseline) and with
    ``interval="next_run"``, side by side. Runs on emulators of its own whose clocks start in
    2025 (see benchmarks/detection_delay.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import detection_delay as simulation

    rows = simulation.measure()
    update_readme_block(DELAY_START, DELAY_END, simulation.readme_table(rows))
    fixed_rhythm = [r["requests_per_run"] for r in rows if r["interval_changes_per_run"] == 0]
    grace_min = 60
    return {
        "detection_delay_worst_next_run_min": max(r["next_run"]["worst_min"] for r in rows),
        "baseline_worst_fixed_min": max(r["fixed"]["worst_min"] for r in rows),
        "worst_over_grace_next_run_min": round(max(r["next_run"]["worst_min"] for r in rows) - grace_min, 1),
        "requests_per_run_fixed_rhythm": max(fixed_rhythm) if fixed_rhythm else None,
        # A shrinking interval costs one more ping than the bound of 1 + changes/run.
        "most_extra_pings_per_run_over_1_plus_changes": round(
            max(r["requests_per_run"] - 1 - r["interval_changes_per_run"] for r in rows), 4
        ),
        "false_alerts": sum(r["false_alerts"] for r in rows),
        "schedules": rows,
        "goal": "worst <= grace (60 min) + 1 min on every schedule; 1.0 request per run on a fixed rhythm",
    }


@contextmanager
def page_api_server(emulator: EmulatorHandle, dags_folder: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A real ``airflow api-server`` (its own home, a user ``bench`` who may edit DAGs) showing the Heartbeats page of
    ``dags_folder``, listing the emulator again on every view; yields its URL and the user's auth header."""
    with tempfile.TemporaryDirectory(prefix="opsgenie-hb-bench-page-") as home:
        password = secrets.token_urlsafe(12)
        (Path(home) / "passwords.json").write_text(json.dumps({"bench": password}))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "bench:user",  # may edit DAGs: the page has its buttons
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": f"{home}/passwords.json",
            "AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT": emulator.connection_json(),
            "AIRFLOW__OPSGENIE_HEARTBEAT__UI_CACHE_SECONDS": "0",
        }
        airflow = str(BIN / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, check=True, timeout=300)
        url = f"http://127.0.0.1:{port}"
        with open(f"{home}/api-server.log", "w") as log:
            server = subprocess.Popen([airflow, "api-server"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if requests.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the API server did not start: " + Path(f"{home}/api-server.log").read_text())
                time.sleep(1)
            token = requests.post(
                f"{url}/auth/token", json={"username": "bench", "password": password}, timeout=60
            ).json()["access_token"]
            yield url, {"Authorization": f"Bearer {token}"}
        finally:
            server.terminate()
            server.wait(30)


def ui_page(emulator: EmulatorHandle, views: int = 20) -> dict[str, Any]:
    """The Heartbeats page of 1,000 heartbeats declared by 1,000 DAGs, served by a real API server that
    lists OpsGenie on every view (``ui_cache_seconds = 0``, the slowest case), next to the bare list call."""
    from airflow_provider_opsgenie_hb.api.client import HeartbeatClient
    from airflow_provider_opsgenie_hb.core.sync import sync_heartbeats
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    os.environ["AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT"] = emulator.connection_json()
    client = HeartbeatClient.opsgenie(emulator.api_key, emulator.url)
    with tempfile.TemporaryDirectory(prefix="opsgenie-hb-bench-page-dags-") as folder:
        write_dag_folder(Path(folder))
        assert sync_heartbeats(folder, OpsgenieHeartbeatHook()).count("create") == 1000
        client.list_heartbeats()  # a kept-alive connection, as the page's
        list_ms = statistics.median(timed(client.list_heartbeats) for _ in range(views)) * 1000
        with page_api_server(emulator, Path(folder)) as (url, auth):
            session = requests.Session()
            session.headers.update(auth)
            started = time.perf_counter()
            first = session.get(f"{url}/opsgenie-heartbeats/", timeout=300)
            first_view_s = time.perf_counter() - started
            assert first.status_code == 200, first.text[:500]
            assert first.text.count("<tr data-name=") == 1000

            def view() -> None:
                answer = session.get(f"{url}/opsgenie-heartbeats/", timeout=60)
                assert answer.status_code == 200

            page_ms = statistics.median(timed(view) for _ in range(views)) * 1000
    return {
        "ui_page_ms": round(page_ms, 1),
        "baseline_list_call_ms": round(list_ms, 1),
        "page_vs_list_ratio": round(page_ms / list_ms, 2),
        "ui_page_kb": round(len(first.content) / 1024),
        "first_view_s": round(first_view_s, 1),
        "goal": "<= 300 ms for 1,000 heartbeats",
    }


FIGURES: dict[str, Callable[[EmulatorHandle], dict[str, Any]]] = {
    "emulator_throughput": emulator_throughput,
    "ping_overhead": ping_overhead,
    "callback_overhead": callback_overhead,
    "callback_hang_bound": callback_hang_bound,
    "requests_per_run": requests_per_run,
    "bulk_ensure": bulk_ensure,
    "import_cost": import_cost,
    "interval_derivation": interval_derivation,
    "sync_1000_dags": sync_1000_dags,
    "detection_delay": detection_delay,
    "ui_page": ui_page,
}


def main() -> None:
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="opsgenie-hb-bench-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    # Retries under the rate limit are expected here; keep the table readable.
    logging.getLogger("airflow_provider_opsgenie_hb.api.transport").setLevel(logging.WARNING)
    api_key = "bench-" + secrets.token_hex(8)
    only = set(sys.argv[1:])
    # A partial run (figures named on the command line) updates those figures only.
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if only and RESULTS.exists() else {}
    results |= {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with emulator_process(api_key) as handle:
        for key, figure in FIGURES.items():
            if only and key not in only:
                continue
            handle.reset()
            print(f"measuring {key} ...", flush=True)
            measured = figure(handle)
            # One key per figure: its headline value, the goal, and the side-by-side baseline.
            headline = next(iter(measured))
            results[headline] = {"value": measured.pop(headline), **measured}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    update_readme(results)


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{'figure':<34} {'value':>9}  {'goal':<28} baseline and details")
    for key, figure in results.items():
        if not isinstance(figure, dict) or key == "machine":
            continue
        details = ", ".join(
            f"{k}={v}" for k, v in figure.items() if k not in ("value", "goal") and not isinstance(v, list)
        )
        print(f"{key:<34} {figure['value']!s:>9}  {figure.get('goal', ''):<28} {details}")
    print(f"\nmachine: {results['machine']}\nwritten to {RESULTS.relative_to(ROOT)}")


PAGE = ROOT / "docs" / "benchmarks.md"
START = "<!-- benchmarks:start (written by make bench) -->"
END = "<!-- benchmarks:end -->"


DELAY_START = "<!-- detection-delay:start (written by make bench) -->"
DELAY_END = "<!-- detection-delay:end -->"


def update_readme_block(start: str, end: str, lines: list[str]) -> None:
    """Replace the block of docs/benchmarks.md between ``start`` and ``end`` with ``lines``."""
    text = PAGE.read_text()
    if start in text:
        block = "\n".join([start, *lines, end])
        PAGE.write_text(text[: text.index(start)] + block + text[text.index(end) + len(end) :])


def update_readme(results: dict[str, Any]) -> None:
    """Replace the benchmark table of docs/benchmarks.md with these results."""
    rows = ["| figure | value | goal | baseline, side by side |", "|---|---|---|---|"]
    for key, figure in results.items():
        if isinstance(figure, dict) and "value" in figure:
            shown = {k: v for k, v in figure.items() if k not in ("value", "goal") and not isinstance(v, list)}
            details = ", ".join(f"{k} {v}" for k, v in shown.items())
            rows.append(f"| `{key}` | {figure['value']} | {figure.get('goal', '')} | {details} |")
    machine = results["machine"]
    measured = (
        f"Measured {results['measured_at']} on {machine['cpus']} CPUs ({machine['processor']}), "
        f"Python {machine['python']}, {machine['platform']}."
    )
    update_readme_block(START, END, [*rows, "", measured])


if __name__ == "__main__":
    main()
