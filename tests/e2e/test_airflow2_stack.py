"""Airflow 2.11's own components: the scheduler (with its DAG processor) and the webserver.

DAG files as a 2.11 user writes them (``from airflow import DAG``). The DAG-level callback
runs in the scheduler's DAG processor, the task-level one in the task, the listener in the
scheduler, and sync in a task that reads pause states from the metadata database; the
emulator's request log is what counts. On SQLite, Airflow 2 allows only the SequentialExecutor
and no standalone DAG processor.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator

import pytest
import requests
from airflow_components import BIN, AirflowStack, free_port, new_stack, running, wait_for
from conftest import AIRFLOW_VERSION
from packaging.version import Version

from opsgenie_heartbeat_emulator import EmulatorHandle

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(Version("3") <= AIRFLOW_VERSION, reason="Airflow 2's webserver and DAG processor"),
]

DAGS = """
import pendulum
from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat
from airflow_provider_opsgenie_hb.operators.heartbeat import OpsgenieSyncHeartbeatsOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
shared = send_opsgenie_heartbeat(ensure=True, interval=1, interval_unit="hours")

with DAG("a2_callback", schedule=None, start_date=START, on_success_callback=shared):
    EmptyOperator(task_id="work")

with DAG("a2_task_level", schedule=None, start_date=START):
    EmptyOperator(task_id="last", on_success_callback=send_opsgenie_heartbeat(name="a2-task-{{ dag.dag_id }}"))

with DAG("a2_tagged", schedule=None, start_date=START, tags=["opsgenie-heartbeat"]):
    EmptyOperator(task_id="work")

with DAG("a2_untagged", schedule=None, start_date=START):
    EmptyOperator(task_id="work")

with DAG("a2_paused", schedule="0 3 * * *", start_date=START, catchup=False, tags=["opsgenie-heartbeat"]):
    EmptyOperator(task_id="work")

with DAG("a2_sync", schedule=None, start_date=START):
    OpsgenieSyncHeartbeatsOperator(task_id="sync", paused="disable")
"""
DAG_IDS = {"a2_callback", "a2_task_level", "a2_tagged", "a2_untagged", "a2_paused", "a2_sync"}


@pytest.fixture(scope="module")
def airflow2_stack(
    opsgenie_emulator_server: EmulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowStack]:
    home = tmp_path_factory.mktemp("airflow2-e2e")
    stack = new_stack(
        home,
        AIRFLOW__CORE__EXECUTOR="SequentialExecutor",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL="5",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        AIRFLOW__WEBSERVER__SECRET_KEY="e2e-secret",
        AIRFLOW__WEBSERVER__WORKERS="1",
        AIRFLOW__API__AUTH_BACKENDS="airflow.api.auth.backend.basic_auth",
        AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT=opsgenie_emulator_server.connection_json(),
    )
    # The SequentialExecutor runs each task as ``airflow tasks run``, found on the PATH.
    stack.env["PATH"] = f"{BIN}{os.pathsep}{stack.env.get('PATH', '')}"
    port = stack.env["AIRFLOW__API__PORT"]
    stack.env.update(AIRFLOW__WEBSERVER__WEB_SERVER_HOST="127.0.0.1", AIRFLOW__WEBSERVER__WEB_SERVER_PORT=port)
    (stack.dags / "a2_dags.py").write_text(textwrap.dedent(DAGS))
    stack.cli("db", "migrate")
    stack.cli("users", "create", "-u", "admin", "-p", "admin", "-r", "Admin", "-f", "a", "-l", "b", "-e", "a@b.c")
    with running(stack, "webserver", "scheduler"):
        wait_for(lambda: _webserver_up(stack.api_url), 180, "the webserver", stack.logs)
        wait_for(lambda: stack.serialized_dag_ids() >= DAG_IDS, 180, "the DAGs to be parsed", stack.logs)
        yield stack


def _webserver_up(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _trigger(stack: AirflowStack, dag_id: str) -> None:
    answer = requests.post(
        f"{stack.api_url}/api/v1/dags/{dag_id}/dagRuns", json={}, auth=("admin", "admin"), timeout=60
    )
    assert answer.status_code == 200, answer.text


def _pinged(emulator: EmulatorHandle) -> list[str]:
    return [r["name"] for r in emulator.requests() if r["endpoint"] == "ping"]


def test_callbacks_and_the_listener_ping_their_own_heartbeats(
    airflow2_stack: AirflowStack, opsgenie_emulator_server: EmulatorHandle
) -> None:
    opsgenie_emulator_server.reset()
    for dag_id in ("a2_callback", "a2_task_level", "a2_tagged", "a2_untagged"):
        _trigger(airflow2_stack, dag_id)
    expected = {"a2_callback", "a2-task-a2_task_level", "a2_tagged"}
    wait_for(lambda: expected <= set(_pinged(opsgenie_emulator_server)), 300, "the pings", airflow2_stack.logs)
    wait_for(lambda: airflow2_stack.successful_runs("a2_untagged"), 120, "a2_untagged", airflow2_stack.logs)
    assert "a2_untagged" not in _pinged(opsgenie_emulator_server)
    stored = opsgenie_emulator_server.heartbeats()
    assert (stored["a2_callback"]["interval"], stored["a2_callback"]["intervalUnit"]) == (1, "hours")
    assert stored["a2_callback"]["lastPingTime"]
    # The listener ran in the scheduler.
    assert (
        "Pinged OpsGenie heartbeat 'a2_tagged' from the listener" in (airflow2_stack.logs / "scheduler.log").read_text()
    )


def test_the_webserver_loads_the_plugin_and_lists_the_connection_types(airflow2_stack: AirflowStack) -> None:
    answer = requests.get(f"{airflow2_stack.api_url}/api/v1/plugins", auth=("admin", "admin"), timeout=60)
    assert answer.status_code == 200, answer.text
    ours = [p for p in answer.json()["plugins"] if p["name"] == "opsgenie_heartbeat"]
    assert ours, answer.text
    assert ours[0]["listeners"] == ["airflow_provider_opsgenie_hb.listeners.heartbeat._Listener"]
    hooks = subprocess.run(
        [str(BIN / "airflow"), "providers", "hooks", "-o", "json"],
        env=airflow2_stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    listed = json.loads(hooks.stdout[hooks.stdout.index("[") :])
    assert {"opsgenie_heartbeat", "jsm_ops_heartbeat"} <= {row["connection_type"] for row in listed}


def test_sync_from_a_task_disables_the_heartbeat_of_a_paused_dag(
    airflow2_stack: AirflowStack, opsgenie_emulator_server: EmulatorHandle
) -> None:
    opsgenie_emulator_server.reset()
    airflow2_stack.cli("dags", "pause", "a2_paused")
    try:
        done = airflow2_stack.successful_runs("a2_sync")
        _trigger(airflow2_stack, "a2_sync")
        wait_for(lambda: airflow2_stack.successful_runs("a2_sync") > done, 240, "a2_sync", airflow2_stack.logs)
    finally:
        airflow2_stack.cli("dags", "unpause", "a2_paused")
    stored = opsgenie_emulator_server.heartbeats()
    assert stored["a2_paused"]["enabled"] is False
    assert "paused-in-airflow:default" in stored["a2_paused"]["alertTags"]
    assert stored["a2_callback"]["enabled"] is True  # its DAG runs: left enabled
