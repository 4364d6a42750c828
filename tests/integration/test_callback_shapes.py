"""The success callback in the shapes real DAG code gives it, and under servers that misbehave.

Every test asserts on what reached the emulator (its request log) or on the callback's log
lines: ``dag.test()`` reports success even when a DAG-level callback raises.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import time_machine
from conftest import DAGS_FOLDER, our_warnings
from faulty_servers import MODES, faulty_server

from airflow_provider_opsgenie_hb.core import record
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat
from opsgenie_heartbeat_emulator import EmulatorHandle

# Airflow 2 asks a scheduled DAG for a start date.
DAG_START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)

SHARED_NOTIFIER_FILE = """
import pendulum
from airflow.providers.common.compat.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

hb = send_opsgenie_heartbeat(ensure=True, interval=1, interval_unit="hours")
prod = send_opsgenie_heartbeat(name="prod-{{ dag.dag_id }}", alert_tags=["{{ dag.dag_id }}"], ensure=True,
                               interval=2, interval_unit="hours")
task_level = send_opsgenie_heartbeat(name="task-{{ dag.dag_id }}")

for dag_id in ("shared_a", "shared_b", "shared_c"):
    with DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
             on_success_callback=[hb, prod], default_args={"on_success_callback": task_level}) as dag:
        @task
        def work():
            return 1

        work()
    globals()[dag_id] = dag
"""


def _load(source: str, module_name: str) -> Any:
    path = DAGS_FOLDER / f"{module_name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pings(emulator: EmulatorHandle) -> list[str]:
    return [r["name"] for r in emulator.requests() if r["endpoint"] == "ping"]


def test_one_notifier_shared_by_the_dags_of_one_file_pings_each_dags_own_heartbeat(
    airflow_db: str, opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    module = _load(SHARED_NOTIFIER_FILE, "shared_notifier_dags")
    for dag_id in ("shared_a", "shared_b", "shared_c", "shared_b"):
        getattr(module, dag_id).test()
    pings = _pings(opsgenie_heartbeat_conn)
    for dag_id, runs in (("shared_a", 1), ("shared_b", 2), ("shared_c", 1)):
        # The DAG-level callback (plus one more ping after it created the heartbeat), the
        # templated one likewise, and the task-level one from default_args.
        assert pings.count(dag_id) == runs + 1, pings
        assert pings.count(f"prod-{dag_id}") == runs + 1, pings
        assert pings.count(f"task-{dag_id}") == runs, pings
    stored = opsgenie_heartbeat_conn.heartbeats()
    assert {name: hb["interval"] for name, hb in stored.items()} == {
        "shared_a": 1,
        "shared_b": 1,
        "shared_c": 1,
        "prod-shared_a": 2,
        "prod-shared_b": 2,
        "prod-shared_c": 2,
    }
    assert stored["prod-shared_c"]["alertTags"] == ["shared_c", "managed-by-airflow:default"]
    # Nothing learned in one call was written onto the shared instances.
    assert module.hb.name is None
    assert module.prod.name == "prod-{{ dag.dag_id }}"
    assert module.prod.alert_tags == ["{{ dag.dag_id }}"]


def test_one_notifier_called_for_many_dags_in_one_process_and_in_threads(
    opsgenie_heartbeat_conn: EmulatorHandle,
) -> None:
    """What the DAG processor does: every queued callback of a file, one after another, in one process."""
    from airflow.providers.common.compat.sdk import DAG

    hb = send_opsgenie_heartbeat(deadline=5)
    dags = [DAG(f"proc_{i}", schedule=None) for i in range(8)]
    for dag in dags[:3]:
        hb({"dag": dag, "run_id": "scheduled__1"})
    assert _pings(opsgenie_heartbeat_conn) == ["proc_0", "proc_1", "proc_2"]
    threads = [threading.Thread(target=hb, args=({"dag": dag, "run_id": "manual__1"},)) for dag in dags]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(_pings(opsgenie_heartbeat_conn)[3:]) == sorted(d.dag_id for d in dags)


def test_the_ping_goes_out_before_a_slow_ensure_and_the_deadline_holds(
    opsgenie_heartbeat_conn: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.providers.common.compat.sdk import DAG

    opsgenie_heartbeat_conn.set_faults({"kind": "latency", "seconds": 12, "endpoint": "get"})
    caplog.set_level(logging.INFO)
    deadline = 5.0
    started = time.monotonic()
    send_opsgenie_heartbeat(ensure=True, deadline=deadline)(
        {"dag": DAG("slow_get", start_date=DAG_START, schedule="@daily"), "run_id": "x"}
    )
    elapsed = time.monotonic() - started
    assert elapsed < deadline * 1.05
    first = opsgenie_heartbeat_conn.requests()[0]
    assert (first["endpoint"], first["status"]) == ("ping", 202)
    messages = [r.getMessage() for r in caplog.records]
    assert any("'slow_get' was pinged, but the ensure after the ping did not complete" in m for m in messages)
    opsgenie_heartbeat_conn.reset()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ensure", [False, True])
def test_the_callback_returns_within_its_deadline_whatever_the_server_does(
    mode: str, ensure: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.providers.common.compat.sdk import DAG

    deadline = 2.0
    with faulty_server(mode) as url:
        conn = {"conn_type": "opsgenie_heartbeat", "host": url, "password": "k" * 32}
        monkeypatch.setenv("AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", json.dumps(conn))
        caplog.set_level(logging.WARNING)
        started = time.monotonic()
        send_opsgenie_heartbeat(ensure=ensure, deadline=deadline)(
            {"dag": DAG("hang", start_date=DAG_START, schedule="@daily"), "run_id": "x"}
        )
        elapsed = time.monotonic() - started
    assert elapsed < deadline * 1.05, f"{mode}: returned after {elapsed:.2f}s"
    assert any("'hang' was not pinged" in r.getMessage() for r in caplog.records)


def test_raise_on_error_raises_the_deadline_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_opsgenie_hb.api.errors import HeartbeatTimeoutError

    with faulty_server("black_hole") as url:
        conn = {"conn_type": "opsgenie_heartbeat", "host": url, "password": "k" * 32}
        monkeypatch.setenv("AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", json.dumps(conn))
        with pytest.raises(HeartbeatTimeoutError):
            send_opsgenie_heartbeat(deadline=1, raise_on_error=True)({"dag": DAG("strict", schedule=None)})


@pytest.mark.parametrize("damage", ["corrupt", "unwritable", "concurrent"])
def test_a_damaged_record_never_breaks_the_callback_or_loses_a_ping(
    damage: str,
    opsgenie_heartbeat_conn: EmulatorHandle,
    heartbeat_record_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.providers.common.compat.sdk import DAG

    hb = send_opsgenie_heartbeat(ensure=True, interval=1, interval_unit="hours")
    context = {"dag": DAG("rec", schedule=None), "run_id": "scheduled__1"}
    hb(context)
    files = [p for p in heartbeat_record_dir.iterdir() if p.is_file() and not p.name.startswith(".")]
    assert len(files) == 1  # "ensured, with these settings" (beside the folder of ping logs)
    if damage == "corrupt":
        files[0].write_bytes(b"\xff\xfe not a record")
    elif damage == "unwritable":
        blocker = heartbeat_record_dir.parent / "a-file"
        blocker.write_text("")
        monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR", str(blocker / "records"))
    else:
        key = record.fact("concurrent", "x")
        writers = [threading.Thread(target=record.record, args=(key,)) for _ in range(8)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        assert record.is_recorded(key)
    caplog.set_level(logging.WARNING)
    before = len(opsgenie_heartbeat_conn.requests())
    hb(context)
    hb(context)
    operations = [r["endpoint"] for r in opsgenie_heartbeat_conn.requests()[before:]]
    assert operations.count("ping") == 2
    expected = {"corrupt": ["ping", "get", "ping"], "unwritable": ["ping", "get", "ping", "get"]}
    assert operations == expected.get(damage, ["ping", "ping"])
    assert not our_warnings(caplog.records)


def test_the_ping_log_keeps_the_last_pings_and_never_fails(
    heartbeat_record_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3 * record.PING_LOG_LENGTH):
        record.record_ping("conn", "hb", f"request-{n}", "listener")
    logged = record.recent_pings("conn", "hb")
    assert [entry["request_id"] for entry in logged] == [f"request-{n}" for n in range(59, 39, -1)]
    log_file = next((heartbeat_record_dir / "pings").iterdir())
    assert len(log_file.read_text().splitlines()) <= 2 * record.PING_LOG_LENGTH  # cut back as it grows
    with log_file.open("a") as torn:
        torn.write('{"at": 1, "sour')  # a writer stopped mid-line
    assert len(record.recent_pings("conn", "hb")) == record.PING_LOG_LENGTH - 1
    assert record.recent_pings("conn", "other") == []
    blocker = heartbeat_record_dir.parent / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR", str(blocker / "records"))
    record.record_ping("conn", "hb", "lost", "callback")  # unwritable: skipped, no error
    assert record.recent_pings("conn", "hb") == []


def test_a_record_expires(
    opsgenie_heartbeat_conn: EmulatorHandle, heartbeat_record_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A heartbeat deleted by hand comes back within the record's lifetime."""
    from airflow.providers.common.compat.sdk import DAG

    hb = send_opsgenie_heartbeat(ensure=True, interval=1, interval_unit="hours")
    context = {"dag": DAG("expires", schedule=None), "run_id": "scheduled__1"}
    hb(context)
    opsgenie_heartbeat_conn.reset()  # deleted by hand
    hb(context)
    assert "expires" not in opsgenie_heartbeat_conn.heartbeats()  # still trusted: one ping only
    with time_machine.travel(time.time() + 86_401, tick=True):  # a day later
        hb(context)
        assert "expires" in opsgenie_heartbeat_conn.heartbeats()


@pytest.fixture
def run_in_fresh_process(opsgenie_emulator: EmulatorHandle) -> Callable[[str, str], None]:
    """Call a notifier once in a new Python process, as the DAG processor does for every run."""

    def run(arguments: str, dag_id: str) -> None:
        code = (
            "from airflow.providers.common.compat.sdk import DAG\n"
            "from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat\n"
            f"context = {{'dag': DAG({dag_id!r}, schedule=None), 'run_id': 'scheduled__1'}}\n"
            f"send_opsgenie_heartbeat({arguments})(context)\n"
        )
        env = {**os.environ, "AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT": opsgenie_emulator.connection_json()}
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)

    return run


def test_steady_state_is_one_request_per_run_in_fresh_processes(
    opsgenie_emulator: EmulatorHandle, heartbeat_record_dir: Path, run_in_fresh_process: Callable[..., None]
) -> None:
    from airflow_provider_opsgenie_hb.api.client import HeartbeatClient

    HeartbeatClient.opsgenie(opsgenie_emulator.api_key, opsgenie_emulator.url).create_heartbeat(
        name="fresh_plain", interval=1, interval_unit="hours"
    )
    for _ in range(3):
        run_in_fresh_process("ensure=True, interval=1, interval_unit='hours'", "fresh_ensure")
        run_in_fresh_process("", "fresh_plain")
    calls = [(r["endpoint"], r["name"]) for r in opsgenie_emulator.requests()][1:]
    ensure_calls = [op for op, name in calls if name == "fresh_ensure"]
    plain_calls = [op for op, name in calls if name == "fresh_plain"]
    assert ensure_calls == ["ping", "get", "create", "ping", "ping", "ping"], calls
    assert plain_calls == ["ping", "get", "ping", "ping"]


TWO_TASKS = """
import pendulum
from airflow.providers.common.compat.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

with DAG(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         default_args={{"on_success_callback": send_opsgenie_heartbeat()}}) as dag:
    @task
    def extract():
        return 1

    @task
    def load(value):
        {load}

    load(extract())
"""


@pytest.mark.parametrize(("load", "pings"), [("raise RuntimeError('load failed')", 0), ("return value", 1)])
def test_a_task_level_notifier_pings_only_when_the_last_task_succeeds(
    load: str, pings: int, run_dag: Callable[..., Any], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    dag_id = f"two_tasks_{pings}"
    run_dag(TWO_TASKS.format(dag_id=dag_id, load=load), dag_id)
    # extract succeeded in both runs; only the last task's success says the run succeeded
    assert _pings(opsgenie_heartbeat_conn) == [dag_id] * pings


TWO_FINAL_TASKS = TWO_TASKS.replace(
    "    load(extract())",
    """    @task
    def load_b(value):
        raise RuntimeError("load_b failed")

    value = extract()
    load(value)
    load_b(value)""",
)


def test_one_of_several_final_tasks_pings_and_warns_that_the_others_may_fail(
    run_dag: Callable[..., Any], opsgenie_heartbeat_conn: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    run_dag(TWO_FINAL_TASKS.format(dag_id="two_final_tasks", load="return value"), "two_final_tasks")
    # load cannot know that load_b fails: it pings (when in doubt, ping), and says what to do instead.
    assert _pings(opsgenie_heartbeat_conn) == ["two_final_tasks"]
    warnings = [r.getMessage() for r in caplog.records if "final tasks of DAG" in r.getMessage()]
    assert warnings
    assert "'load', one of the 2 final tasks of DAG 'two_final_tasks'" in warnings[0]
    assert "on_success_callback" in warnings[0]


def test_the_record_tells_accounts_behind_one_url_apart_and_holds_no_key() -> None:
    from airflow_provider_opsgenie_hb.api.client import HeartbeatClient

    url = "http://127.0.0.1:9"
    first = HeartbeatClient.opsgenie("first-account-key", url).account_fingerprint()
    second = HeartbeatClient.opsgenie("second-account-key", url).account_fingerprint()
    assert first != second
    assert "account-key" not in first + second
    assert HeartbeatClient.opsgenie("first-account-key", url).account_fingerprint() == first


@pytest.mark.parametrize(
    ("host", "advice"),
    [
        ("http://exa mple.com", "fix the field named above in the connection"),
        ("https://127.0.0.1:{port}", "the TLS handshake with the host failed"),  # the emulator speaks plain HTTP
    ],
)
def test_a_faulty_connection_is_said_to_be_the_connections(
    host: str,
    advice: str,
    opsgenie_heartbeat_conn: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.providers.common.compat.sdk import DAG

    port = opsgenie_heartbeat_conn.url.rsplit(":", 1)[1]
    conn = {"conn_type": "opsgenie_heartbeat", "host": host.format(port=port), "password": "k" * 32}
    monkeypatch.setenv("AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", json.dumps(conn))
    caplog.set_level(logging.WARNING)
    send_opsgenie_heartbeat(deadline=5)({"dag": DAG("faulty_conn", schedule=None), "run_id": "manual__1"})
    said = " ".join(r.getMessage() for r in caplog.records)
    assert f"What to do: {advice}" in said
    assert "notifier's arguments" not in said
