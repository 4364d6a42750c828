"""Airflow on several "machines" (production_stack in conftest.py): every successful DAG run is
pinged, once, whichever scheduler, DAG processor or Celery worker it lands on.

Run with ``-s`` to see the tables: requests per run for each heartbeat, and which host sent
which pings.
"""

from __future__ import annotations

import html
import http.client
import itertools
import json
import os
import re
import signal
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow_components import bearer

from opsgenie_heartbeat_emulator import EmulatorHandle
from production.conftest import (
    API_HOST,
    API_WORKERS,
    DAG_IDS,
    DAG_PROCESSORS,
    HEARTBEATS,
    RECORD_STORE,
    SCHEDULERS,
    WORKER_OPTIONS,
    WORKERS,
    ProductionStack,
    Watched,
)

pytestmark = [pytest.mark.production_stack, pytest.mark.timeout(900)]

ROUNDS = 3
#: successful scheduled (every minute) runs of prod_next_run to wait for
SCHEDULED_RUNS = 4
#: seconds one round of runs may take to finish on a loaded 2-core machine
ROUND_TIMEOUT = 300
#: seconds the callbacks may take to ping once the runs succeeded
PING_TIMEOUT = 180
#: seconds of quiet after the last expected ping: a second (stray) ping would arrive now
QUIET = 8
TERMINAL = ("success", "failed")


def _trigger_round(stack: ProductionStack) -> None:
    """``airflow dags trigger`` once per DAG, a few CLI processes at a time (each is a whole Airflow start-up)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda dag_id: stack.cli("dags", "trigger", dag_id), DAG_IDS))


def _manual_runs(stack: ProductionStack) -> dict[str, Counter[str]]:
    found: dict[str, Counter[str]] = {dag_id: Counter() for dag_id in DAG_IDS}
    for dag_id, state, count in stack.sql(
        "SELECT dag_id, state, count(*) FROM dag_run WHERE dag_id LIKE 'prod%%' AND run_type = 'manual' "
        "GROUP BY dag_id, state"
    ):
        found.setdefault(dag_id, Counter())[state] = count
    return found


def _round_done(stack: ProductionStack, round_: int) -> bool:
    every = stack.runs()
    failed = {dag_id: states["failed"] for dag_id, states in every.items() if states["failed"]}
    if failed:
        pytest.fail(f"DAG runs failed: {failed}\n{stack.log_tails()}", pytrace=False)
    manual = _manual_runs(stack)
    triggered = all(sum(manual[dag_id].values()) >= round_ for dag_id in DAG_IDS)
    settled = all(set(states) <= set(TERMINAL) for states in every.values())
    scheduled = every["prod_next_run"]["success"] > round_  # its own scheduled runs, besides the manual ones
    return triggered and settled and scheduled


def _by_name(requests_log: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {hb.name: [] for hb in HEARTBEATS}
    for entry in requests_log:
        if entry.get("name") in found:
            found[entry["name"]].append(entry)
    return found


def _pings(entries: list[dict[str, Any]]) -> int:
    return sum(1 for e in entries if e["endpoint"] == "ping" and e["status"] == 202)


def _expected_pings(hb: Watched, successes: int, entries: list[dict[str, Any]]) -> int:
    """One ping per successful run; an ensuring notifier that created its heartbeat pings once more after that."""
    created = sum(1 for e in entries if e["endpoint"] == "create" and e["status"] == 201)
    return successes + (created if hb.ensure else 0)


def test_every_successful_run_is_pinged_once_whichever_host_runs_it(
    production_stack: ProductionStack, opsgenie_emulator_server: EmulatorHandle
) -> None:
    stack = production_stack
    started = time.monotonic()
    for round_ in range(1, ROUNDS + 1):
        _trigger_round(stack)
        stack.wait_for(lambda round_=round_: _round_done(stack, round_), ROUND_TIMEOUT, f"round {round_} of runs")
    # prod_next_run runs every minute as well: enough scheduled runs for callbacks on both DAG processors.
    stack.wait_for(lambda: len(_scheduled_runs(stack)) >= SCHEDULED_RUNS, ROUND_TIMEOUT, "scheduled runs")
    runs_done = time.monotonic()
    successes = {dag_id: states["success"] for dag_id, states in stack.runs().items()}

    def all_pinged() -> bool:
        by_name = _by_name(opsgenie_emulator_server.requests()[stack.setup_requests :])
        return all(
            _pings(by_name[hb.name]) >= _expected_pings(hb, successes[hb.dag_id], by_name[hb.name]) for hb in HEARTBEATS
        )

    stack.wait_for(all_pinged, PING_TIMEOUT, "a ping for every successful run")
    pinged = time.monotonic()
    time.sleep(QUIET)
    assert {dag_id: states["success"] for dag_id, states in stack.runs().items()} == successes, "runs after the rounds"
    by_name = _by_name(opsgenie_emulator_server.requests()[stack.setup_requests :])
    by_host = stack.pinged_by_host()

    _report(stack, successes, by_name, by_host, rounds=runs_done - started, pings=pinged - runs_done)
    MEASURED["requests_per_run_multi_host"] = {
        hb.name: round(len(by_name[hb.name]) / successes[hb.dag_id], 2) for hb in HEARTBEATS
    }
    MEASURED["requests_besides_pings_beyond_the_first_run"] = {
        hb.name: _besides_pings_after_first_run(by_name[hb.name]) for hb in HEARTBEATS
    }

    problems = []
    for hb in HEARTBEATS:
        entries, runs = by_name[hb.name], successes[hb.dag_id]
        pings, expected = _pings(entries), _expected_pings(hb, runs, entries)
        sequence = [f"{e['endpoint']}:{e['status']}" for e in entries]
        if runs < ROUNDS:
            problems.append(f"{hb.name}: only {runs} successful runs")
        if pings < runs:
            problems.append(f"{hb.name}: {runs} successful runs but only {pings} pings (one went unpinged): {sequence}")
        elif hb.runs_on == "scheduler" and pings != runs:  # the listener: measured, at most twice allowed
            print(f"NOTE: the listener pinged {hb.name} {pings} times for {runs} successful runs: {sequence}")
            if pings > 2 * runs:
                problems.append(f"{hb.name}: {pings} listener pings for {runs} runs (more than twice): {sequence}")
        elif hb.runs_on != "scheduler" and not expected <= pings <= expected + _armed(hb, entries):
            problems.append(f"{hb.name}: {pings} pings, expected {expected} for {runs} runs: {sequence}")
        if any(e["status"] >= 500 for e in entries):
            problems.append(f"{hb.name}: the emulator answered an error: {sequence}")
    assert not problems, "\n".join(problems)

    # interval="next_run" across hosts: each scheduled run's callback, on either DAG processor, follows
    # the interval the run before set (the record is in the metadata database), so the interval is set
    # (PATCHed) only where the minute rhythm broke: the first run, or a minute the scheduler skipped.
    due = _scheduled_runs(stack)
    breaks = sum(1 for before, after in itertools.pairwise(due) if (after - before).total_seconds() > 60)
    updates = [e for e in by_name["prod_next_run"] if e["endpoint"] == "update"]
    held = opsgenie_emulator_server.heartbeats()["prod_next_run"]
    assert (held["interval"], held["intervalUnit"]) == (2, "minutes")  # the minute to the next run, plus grace
    assert len(updates) <= 2 + breaks, (
        f"{len(updates)} PATCHes of prod_next_run for {len(due)} scheduled runs a minute apart ({breaks} gaps): "
        f"{[e['endpoint'] for e in by_name['prod_next_run']]}"
    )


#: at most this many more runs of prod_listener, until the scheduler with the listener off has marked one
LISTENER_OFF_TRIES = 8


def test_a_scheduler_with_the_listener_off_pings_as_the_one_with_it_on(
    production_stack: ProductionStack, opsgenie_emulator_server: EmulatorHandle
) -> None:
    """The schedulers' [opsgenie_heartbeat] differ (conftest: the listener is off in the second, with another
    name template). The runs the second marks a success are pinged all the same, once each, under the name
    the first one's settings give: never zero times."""
    stack, emulator = production_stack, opsgenie_emulator_server
    off = SCHEDULERS[1]
    for _ in range(LISTENER_OFF_TRIES):  # which scheduler marks a run a success is Airflow's choice
        if stack.marked_successful("prod_listener")[off]:
            break
        before = _successes(stack, "prod_listener")
        stack.cli("dags", "trigger", "prod_listener")
        stack.wait_for(
            lambda before=before: _successes(stack, "prod_listener") > before, ROUND_TIMEOUT, "a run of prod_listener"
        )
    successes = _successes(stack, "prod_listener")
    marked = stack.marked_successful("prod_listener")
    assert sum(marked.values()) == successes, f"{successes} successful runs, marked by: {marked}"
    assert marked[off] >= 1, f"{off} (the listener off) marked none of {successes} runs successful: {marked}"
    stack.wait_for(lambda: _ping_count(emulator, "prod_listener") >= successes, PING_TIMEOUT, "a ping for every run")
    time.sleep(QUIET)
    by_host = stack.pinged_by_host()
    print(
        f"\nprod_listener: runs marked successful by {marked}, pinged by "
        f"{ {name: by_host[name]['prod_listener'] for name in SCHEDULERS} }"
    )
    assert _ping_count(emulator, "prod_listener") == successes
    assert {name: by_host[name]["prod_listener"] for name in SCHEDULERS} == marked
    assert not [r for r in emulator.requests() if str(r.get("name")).startswith("not-this-")]
    assert stack.sql("SELECT count(*) FROM variable WHERE key LIKE 'opsgenie_heartbeat.listener.%%'")[0][0] == 1


#: figures the tests measure, written by the last one for make bench
MEASURED: dict[str, Any] = {}


def _besides_pings_after_first_run(entries: list[dict[str, Any]]) -> int:
    """Requests other than pings beyond what a first run sends once: the existence check (a GET), and for an
    ensuring notifier the create (and, for next_run, the PATCH that found no heartbeat yet)."""
    once = Counter({"get": 1, "create": 1, "update:404": 1})
    seen: Counter[str] = Counter()
    extra = 0
    for e in entries:
        if e["endpoint"] == "ping":
            continue
        key = "update:404" if (e["endpoint"], e["status"]) == ("update", 404) else e["endpoint"]
        seen[key] += 1
        extra += seen[key] > once[key]
    return extra


def _scheduled_runs(stack: ProductionStack) -> list[Any]:
    """When each successful scheduled run of prod_next_run was due, in order."""
    rows = stack.sql(
        "SELECT run_after FROM dag_run WHERE dag_id = 'prod_next_run' AND run_type = 'scheduled' "
        "AND state = 'success' ORDER BY run_after"
    )
    return [row[0] for row in rows]


def _armed(hb: Watched, entries: list[dict[str, Any]]) -> int:
    """interval="next_run": a PATCH where the interval before is not known (a record slower than its wait,
    under load) is followed by a second ping that arms it - one more ping, never one fewer."""
    if hb.name != "prod_next_run":
        return 0
    return sum(1 for e in entries if (e["endpoint"], e["status"]) == ("update", 200))


def _report(
    stack: ProductionStack,
    successes: dict[str, int],
    by_name: dict[str, list[dict[str, Any]]],
    by_host: dict[str, Counter[str]],
    *,
    rounds: float,
    pings: float,
) -> None:
    lines = [
        "",
        f"===== {ROUNDS} rounds of runs took {rounds:.0f}s; the last pings came {pings:.0f}s after the last run =====",
        f"[opsgenie_heartbeat] record_store = {RECORD_STORE}; 'logged': the hosts' 'Pinged ...' log lines",
        f"{'heartbeat':<17}{'face':<30}{'runs':>5}{'pings':>6}{'logged':>7}{'reqs':>6}{'reqs/run':>9}  "
        "requests by endpoint:status",
    ]
    for hb in HEARTBEATS:
        entries, runs = by_name[hb.name], successes[hb.dag_id]
        endpoints = Counter(f"{e['endpoint']}:{e['status']}" for e in entries)
        ratio = len(entries) / runs if runs else float("nan")
        logged = sum(counts[hb.name] for counts in by_host.values())
        lines.append(
            f"{hb.name:<17}{hb.face:<30}{runs:>5}{_pings(entries):>6}{logged:>7}{len(entries):>6}{ratio:>9.2f}  "
            + ", ".join(f"{k} x{v}" for k, v in sorted(endpoints.items()))
        )
    lines.append("----- 'Pinged OpsGenie heartbeat' log lines per host (the component's output and its Airflow logs)")
    for host, counts in by_host.items():
        if counts:
            lines.append(f"{host:<17}" + ", ".join(f"{name} x{n}" for name, n in sorted(counts.items())))
    for kind in ("dag-processor", "worker", "scheduler"):
        names = {hb.name for hb in HEARTBEATS if hb.runs_on == kind}
        hosts = sorted(host for host, counts in by_host.items() if names & set(counts))
        lines.append(f"{kind} callbacks/pings came from {len(hosts)} host(s): {', '.join(hosts)}")
    lines.append("----- task instances per host (task_instance.hostname)")
    for dag_id, hostname, count in stack.sql(
        "SELECT dag_id, hostname, count(*) FROM task_instance WHERE dag_id LIKE 'prod%%' "
        "GROUP BY dag_id, hostname ORDER BY dag_id, hostname"
    ):
        lines.append(f"{dag_id:<17}{hostname or '?':<17}x{count}")
    lines.append("----- runs per run type and creating scheduler (job.hostname; manual runs: none)")
    for dag_id, run_type, hostname, count in stack.sql(
        "SELECT r.dag_id, r.run_type, j.hostname, count(*) FROM dag_run r LEFT JOIN job j ON j.id = r.creating_job_id "
        "WHERE r.dag_id LIKE 'prod%%' GROUP BY r.dag_id, r.run_type, j.hostname ORDER BY r.dag_id, r.run_type"
    ):
        lines.append(f"{dag_id:<17}{run_type:<12}{hostname or '-':<17}x{count}")
    lines.append("----- jobs")
    for job_type, hostname, state, count in stack.sql(
        "SELECT job_type, hostname, state, count(*) FROM job GROUP BY job_type, hostname, state ORDER BY 1, 2"
    ):
        lines.append(f"{job_type:<20}{hostname:<17}{state:<10}x{count}")
    print("\n".join(lines), flush=True)


# --------------------------------------------------------------------------- the Heartbeats page

PAGE = "/opsgenie-heartbeats/"


def _serving_pid(stack: ProductionStack, client_port: int) -> int | None:
    """Which of the API server's processes holds the server end of our connection from ``client_port``."""
    wanted = (f"0100007F:{stack.api_port:04X}", f"0100007F:{client_port:04X}")
    inode = None
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if (fields[1], fields[2]) == wanted:
                inode = fields[9]
    if inode is None:
        return None
    for pid in stack.api_pids():
        try:
            fds = [f"/proc/{pid}/fd/{fd}" for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def _request(
    stack: ProductionStack, path: str, headers: dict[str, str], *, form: dict[str, str] | None = None
) -> tuple[int, str, int | None]:
    """GET (or POST ``form``) on a connection of its own: the status, the body, and the API server worker
    (pid) that answered."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=120)
    try:
        if form is None:
            connection.request("GET", path, headers=headers)
        else:
            body = urllib.parse.urlencode(form)
            sent = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
            connection.request("POST", path, body=body, headers=sent)
        response = connection.getresponse()
        answer = response.read().decode("utf-8", errors="replace")
        assert connection.sock is not None
        pid = _serving_pid(stack, connection.sock.getsockname()[1])  # the server keeps the connection open
        return response.status, answer, pid
    finally:
        connection.close()


def _get(stack: ProductionStack, path: str, headers: dict[str, str]) -> tuple[int, str, int | None]:
    return _request(stack, path, headers)


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _page_summary(body: str) -> dict[str, Any]:
    rows = [
        dict(re.findall(r'data-([a-z-]+)="([^"]*)"', attributes))
        for attributes in re.findall(r"<tr\s+(data-name=[^>]*)>", body)
    ]
    banners = [_text(b) for b in re.findall(r'<div class="banner[^"]*"[^>]*>(.*?)</div>\s*(?=<|$)', body, re.S)]
    filters = re.findall(r'data-filter="([^"]+)">[^<]*?(\d+)</a>', body)
    empty = re.search(r'<td colspan="\d+" class="muted">([^<]*)</td>', body)
    return {
        "rows": rows,
        "filters": dict(filters),
        "banners": banners,
        "empty": empty.group(1) if empty else None,
        "unwatched": re.findall(r'data-dag="([^"]+)"', body),
    }


def _through_each_worker(stack: ProductionStack, path: str, auth: dict[str, str]) -> dict[int, tuple[str, float]]:
    """The page at ``path`` as each API server worker answers it (pid -> body, seconds)."""
    answers: dict[int, tuple[str, float]] = {}
    for _ in range(20 * API_WORKERS):
        started = time.monotonic()
        status, body, pid = _get(stack, path, auth)
        assert status == 200, body[:500]
        if pid is not None and pid not in answers:
            answers[pid] = (body, time.monotonic() - started)
        if len(answers) >= API_WORKERS:
            return answers
    pytest.fail(f"only {len(answers)} of the API server's {API_WORKERS} workers answered {path}", pytrace=False)


def _rows_by_name(body: str) -> dict[str, dict[str, str]]:
    return {row["name"]: row for row in _page_summary(body)["rows"]}


def test_the_heartbeats_page_of_an_api_server_without_dag_files(production_stack: ProductionStack) -> None:
    """The API server has no DAG files: before any sync it says so (and how to fix it); after a sync on a
    host with the DAG files, both of its workers show every declared heartbeat as declared, with its DAG; an
    action through one worker is seen through the other."""
    stack = production_stack
    auth = bearer(stack.api_url)
    names = {hb.name for hb in HEARTBEATS}
    before = _through_each_worker(stack, PAGE, auth)
    for body, _ in before.values():
        assert "none are recorded yet" in html.unescape(body)

    # The CLI host has the DAG files. Exit 1: prod_plain and prod_listener run unscheduled with no interval
    # given, so sync cannot create them (they exist already) and says so.
    synced = stack.cli("opsgenie-heartbeat", "sync", exits=(0, 1))
    assert "Plan: 0 to create" in synced
    assert stack.sql("SELECT 1 FROM variable WHERE key = %s", "opsgenie_heartbeat.declared"), synced

    def declared_everywhere() -> dict[int, tuple[str, float]] | None:
        answers = _through_each_worker(stack, PAGE, auth)
        for body, _ in answers.values():
            rows = _rows_by_name(body)
            if "recorded by sync on" not in body:  # this worker has not read the record yet (ui_cache_seconds)
                return None
            if not names <= set(rows) or any(rows[name]["orphaned"] != "false" for name in names):
                return None
        return answers

    after = stack.wait_for(declared_everywhere, 60, "both API server workers to show the recorded declarations")
    timings = {pid: round(seconds, 2) for pid, (_, seconds) in after.items()}
    for body, _ in after.values():
        assert "recorded by sync on" in body
        assert "none are recorded yet" not in html.unescape(body)
    for pid, (body, _) in _through_each_worker(stack, f"{PAGE}dags/prod_shared_a", auth).items():
        assert 'data-name="prod_shared_a"' in body, f"worker {pid}: the DAG tab shows no heartbeat"

    # Disable through one worker; the other shows it (after its list cache, ui_cache_seconds, runs out).
    status, body, acting = _request(
        stack,
        f"{PAGE}actions",
        auth,
        form={"conn_id": "opsgenie_heartbeat_default", "name": "prod_shared_a", "action": "disable"},
    )
    assert status < 400, body[:500]
    try:

        def disabled_elsewhere() -> bool:
            for pid, (page, _) in _through_each_worker(stack, PAGE, auth).items():
                if pid != acting and _rows_by_name(page)["prod_shared_a"]["status"] == "disabled":
                    return True
            return False

        stack.wait_for(disabled_elsewhere, 60, "the other worker to show the heartbeat disabled")
    finally:
        _request(
            stack,
            f"{PAGE}actions",
            auth,
            form={"conn_id": "opsgenie_heartbeat_default", "name": "prod_shared_a", "action": "enable"},
        )
    print(f"\n[production stack] the page's views through each worker after sync, seconds: {timings}", flush=True)


# --------------------------------------------------------------------------- faults of a real deployment


def _successes(stack: ProductionStack, dag_id: str) -> int:
    return int(stack.sql("SELECT count(*) FROM dag_run WHERE dag_id = %s AND state = 'success'", dag_id)[0][0])


def _queued_dag_callbacks(stack: ProductionStack) -> int:
    """The DAG callbacks waiting in the metadata database for a DAG processor (Airflow 3.3: ``callback`` rows)."""
    return int(stack.sql("SELECT count(*) FROM callback WHERE type = 'dag_processor'")[0][0])


def _ping_count(emulator: EmulatorHandle, name: str) -> int:
    return sum(1 for r in emulator.requests() if r["endpoint"] == "ping" and r["name"] == name and r["status"] == 202)


def test_callbacks_queued_while_a_dag_processor_is_killed_are_pinged_by_the_others(
    production_stack: ProductionStack, opsgenie_emulator_server: EmulatorHandle
) -> None:
    """DAG callbacks wait in the metadata database until a DAG processor takes them: with both DAG processors
    frozen, runs succeed and their callbacks queue up; one processor is killed (kill -9), the other thaws,
    the killed one restarts - and every run is pinged, once."""
    stack, emulator = production_stack, opsgenie_emulator_server
    dag_ids = ("prod_shared_a", "prod_shared_b", "prod_plain")
    before = {dag_id: (_successes(stack, dag_id), _ping_count(emulator, dag_id)) for dag_id in dag_ids}
    for name in DAG_PROCESSORS:
        stack.signal_group(name, signal.SIGSTOP)
    try:
        for dag_id in dag_ids:
            stack.cli("dags", "trigger", dag_id)
        stack.wait_for(
            lambda: all(_successes(stack, d) > before[d][0] for d in dag_ids), ROUND_TIMEOUT, "the runs to succeed"
        )
        queued = stack.wait_for(
            lambda: _queued_dag_callbacks(stack) >= len(dag_ids),
            60,
            "the success callbacks to wait in the metadata database",
        )
        assert queued
        assert all(_ping_count(emulator, d) == before[d][1] for d in dag_ids), "pinged while no DAG processor ran"
        stack.kill(DAG_PROCESSORS[0])
    finally:
        stack.signal_group(DAG_PROCESSORS[1], signal.SIGCONT)
    stack.start(stack.hosts[DAG_PROCESSORS[0]], "dag-processor")
    expected = {d: before[d][1] + (_successes(stack, d) - before[d][0]) for d in dag_ids}
    stack.wait_for(
        lambda: all(_ping_count(emulator, d) >= expected[d] for d in dag_ids), PING_TIMEOUT, "the queued pings"
    )
    time.sleep(QUIET)
    assert {d: _ping_count(emulator, d) for d in dag_ids} == expected


def test_a_celery_worker_killed_mid_task_pings_only_the_retry_that_succeeds(
    production_stack: ProductionStack, opsgenie_emulator_server: EmulatorHandle
) -> None:
    """kill -9 the worker in the middle of a task with a task-level notifier: Airflow fails the attempt (no
    heartbeat from it) and retries it on a worker; only the successful attempt pings, once. A run that never
    succeeds is never pinged: the heartbeat then alerts (it fails closed)."""
    from airflow_provider_opsgenie_hb.api.client import HeartbeatClient

    stack, emulator = production_stack, opsgenie_emulator_server
    HeartbeatClient.opsgenie(emulator.api_key, emulator.url).create_heartbeat(
        name="fault-slow", interval=1, interval_unit="hours"
    )
    stack.cli("dags", "trigger", "fault_slow")

    def running_on() -> str | None:
        rows = stack.sql("SELECT hostname FROM task_instance WHERE dag_id = 'fault_slow' AND state = 'running'")
        return next((row[0] for row in rows if row[0] in WORKERS), None)

    victim = stack.wait_for(running_on, ROUND_TIMEOUT, "the slow task to run on a worker")
    time.sleep(5)  # in the middle of its 25 seconds
    stack.kill(victim)
    killed_at = time.monotonic()
    stack.start(stack.hosts[victim], "celery", "worker", "--celery-hostname", victim, *WORKER_OPTIONS)
    stack.wait_for(lambda: _successes(stack, "fault_slow") == 1, 2 * ROUND_TIMEOUT, "the retried run to succeed")
    stack.wait_for(lambda: _ping_count(emulator, "fault-slow") >= 1, PING_TIMEOUT, "the retry's ping")
    time.sleep(QUIET)
    tries = stack.sql("SELECT try_number, hostname, state FROM task_instance WHERE dag_id = 'fault_slow'")
    print(
        f"\n[production stack] worker {victim} killed mid-task; the run succeeded "
        f"{time.monotonic() - killed_at:.0f}s later: {tries}",
        flush=True,
    )
    assert tries[0][0] >= 2, f"the task was not retried: {tries}"
    assert _ping_count(emulator, "fault-slow") == 1


# --------------------------------------------------------------------------- the page at scale

BIG_FOLDER_DAGS = 1000
BIG_DAGS = f"""
import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

hb = send_opsgenie_heartbeat(ensure=True, interval=1, interval_unit="hours")
for number in range({BIG_FOLDER_DAGS}):
    with DAG(dag_id=f"big_{{number:04d}}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
             on_success_callback=hb) as dag:
        EmptyOperator(task_id="work")
    globals()[dag.dag_id] = dag
"""
#: later views timed after the first
LATER_VIEWS = 10


def _views(stack: ProductionStack, **settings: str) -> tuple[float, float]:
    """Restart the API server with ``settings``; the first view of the page (seconds) and the median of the
    views after it (milliseconds)."""
    stack.kill(API_HOST)
    host = stack.hosts[API_HOST]
    host.env.update(settings)
    stack.start(host, "api-server", "--workers", str(API_WORKERS))
    stack.wait_for(lambda: _get(stack, "/api/v2/monitor/health", {})[0] == 200, 300, "the API server")
    auth = bearer(stack.api_url)
    started = time.monotonic()
    status, body, _ = _get(stack, PAGE, auth)
    first = time.monotonic() - started
    assert status == 200, body[:300]
    assert len(_page_summary(body)["rows"]) >= BIG_FOLDER_DAGS
    later = []
    for _ in range(LATER_VIEWS):
        started = time.monotonic()
        assert _get(stack, PAGE, auth)[0] == 200
        later.append(time.monotonic() - started)
    return first, 1000 * sorted(later)[len(later) // 2]


#: seconds PostgreSQL stays down in the middle of the runs
POSTGRES_DOWN = 15
#: one heartbeat of each face: a DAG callback (DAG processor), a task-level callback (worker), the listener
THROUGH_A_RESTART = ("prod_plain", "prod_task_level", "prod_listener")


def _runs_by_state(stack: ProductionStack, dag_id: str, after: int) -> Counter[str]:
    rows = stack.sql("SELECT state FROM dag_run WHERE dag_id = %s AND id > %s", dag_id, after)
    return Counter(str(row[0]) for row in rows)


def test_a_postgresql_restart_mid_run_loses_no_ping_that_airflow_keeps(
    production_stack: ProductionStack, opsgenie_emulator_server: EmulatorHandle
) -> None:
    """PostgreSQL restarts (its fast shutdown: every connection cut, open transactions rolled back, then down
    15 s) while runs of a DAG-callback DAG, a task-level-notifier DAG and a listener DAG are in flight. A
    component that exits is started again, as a supervisor would. Every run Airflow ends successful is
    pinged, once; a run it fails is not."""
    stack, emulator = production_stack, opsgenie_emulator_server
    watched = [hb for hb in HEARTBEATS if hb.dag_id in THROUGH_A_RESTART]
    last_run = int(stack.sql("SELECT coalesce(max(id), 0) FROM dag_run")[0][0])
    requests_before = len(emulator.requests())
    auth = bearer(stack.api_url)
    for hb in watched:  # through the REST API: the CLI's start-up takes longer than these runs
        answer = requests.post(
            f"{stack.api_url}/api/v2/dags/{hb.dag_id}/dagRuns", json={"logical_date": None}, headers=auth, timeout=60
        )
        assert answer.status_code == 200, answer.text
    at_restart = {hb.dag_id: _runs_by_state(stack, hb.dag_id, last_run) for hb in watched}
    stack.restart_postgres(POSTGRES_DOWN)
    in_flight = [d for d, states in at_restart.items() if set(states) - set(TERMINAL)]
    assert in_flight, f"every run had ended before PostgreSQL stopped: {at_restart}"
    revived: list[str] = []

    def ended() -> bool:
        revived.extend(stack.revive())
        states = [_runs_by_state(stack, hb.dag_id, last_run) for hb in watched]
        return all(set(s) <= set(TERMINAL) and s for s in states)

    stack.wait_for(ended, ROUND_TIMEOUT, "the runs to end after the restart")
    ends = {hb.dag_id: _runs_by_state(stack, hb.dag_id, last_run) for hb in watched}

    def since() -> dict[str, list[dict[str, Any]]]:
        return _by_name(emulator.requests()[requests_before:])

    def expected() -> dict[str, int]:  # an ensuring notifier that created its heartbeat pings once more
        by_name = since()
        return {hb.name: _expected_pings(hb, ends[hb.dag_id]["success"], by_name[hb.name]) for hb in watched}

    def pinged() -> bool:
        revived.extend(stack.revive())
        by_name = since()
        return all(_pings(by_name[name]) >= count for name, count in expected().items())

    stack.wait_for(pinged, PING_TIMEOUT, "a ping for every run that succeeded")
    time.sleep(QUIET)
    revived.extend(stack.revive())
    by_name = since()
    sent = {hb.name: [f"{e['endpoint']}:{e['status']}" for e in by_name[hb.name]] for hb in watched}
    print(
        f"\nPostgreSQL down {POSTGRES_DOWN}s while {in_flight} ran: runs {dict(ends)}, requests {sent}, "
        f"components started again: {revived or 'none'}"
    )
    assert {name: _pings(entries) for name, entries in by_name.items() if name in expected()} == expected()
    assert sum(ends[d]["success"] for d in ends) >= 1, f"no run survived the restart: {ends}"


def test_the_page_of_1000_heartbeats_without_dag_files_measured(
    production_stack: ProductionStack, opsgenie_emulator_server: EmulatorHandle
) -> None:
    """Measures (asserts no time): the first and later views of 1,000 declared heartbeats on an API server
    that reads sync's record, beside one that parses the same DAG folder itself. With
    BENCH_PRODUCTION_OUT set (make bench), the figures are written there."""
    stack = production_stack
    big = stack.root / "big-dags"
    big.mkdir()
    (big / "big.py").write_text(BIG_DAGS)
    stack.cli("opsgenie-heartbeat", "sync", "--dags-folder", str(big), timeout=900)
    assert sum(1 for name in opsgenie_emulator_server.heartbeats() if name.startswith("big_")) == BIG_FOLDER_DAGS
    # Each worker reads the declarations on its first view; the first page answer may come from either.
    first, later = _views(stack, AIRFLOW__OPSGENIE_HEARTBEAT__DECLARATIONS="metadata")
    baseline_first, baseline_later = _views(
        stack, AIRFLOW__OPSGENIE_HEARTBEAT__DECLARATIONS="dag_folder", AIRFLOW__CORE__DAGS_FOLDER=str(big)
    )
    figures = {
        "ui_first_view_s": round(first, 3),
        "ui_page_ms": round(later, 1),
        "ui_first_view_s_parsing_the_dag_folder": round(baseline_first, 3),
        "ui_page_ms_parsing_the_dag_folder": round(baseline_later, 1),
        "ui_first_view_ratio": round(first / baseline_first, 3),
        "heartbeats": BIG_FOLDER_DAGS,
        "api_server_workers": API_WORKERS,
        **MEASURED,
    }
    print(f"\n[production stack] the page of {BIG_FOLDER_DAGS} heartbeats: {figures}", flush=True)
    out = os.environ.get("BENCH_PRODUCTION_OUT")
    if out:
        Path(out).write_text(json.dumps(figures, indent=2) + "\n")
