"""A real Airflow: scheduler, DAG processor and API server (LocalExecutor, SQLite, 127.0.0.1).

A triggered DAG's DAG-level success callback runs in the DAG processor, and the emulator
must receive its ping from there.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from airflow_components import AirflowStack, bearer, new_stack, running, wait_for
from conftest import AIRFLOW_VERSION
from packaging.version import Version

from opsgenie_heartbeat_emulator import EmulatorHandle

pytestmark = [
    pytest.mark.e2e,
    # Airflow 3's api-server and DAG processor; Airflow 2's stack is test_airflow2_stack.py.
    pytest.mark.skipif(Version("3") > AIRFLOW_VERSION, reason="the e2e stack runs on Airflow 3"),
]

CALLBACK_DAG = """
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

with DAG(
    dag_id="e2e_callback",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    on_success_callback=send_opsgenie_heartbeat(name="e2e-{{ dag.dag_id }}", ensure=True, interval=1,
                                                interval_unit="hours"),
):
    @task
    def work():
        return "done"

    work()
"""


LISTENER_DAG = """
import pendulum
from airflow.sdk import DAG, task

with DAG(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), tags={tags}):
    @task
    def work():
        return "done"

    work()
"""
LISTENER_PING_DEADLINE = 60

# One notifier instance on three DAGs of one file (the DAG processor runs their callbacks in
# one process), and a plain notifier without ensure.
SHARED_NOTIFIER_DAGS = """
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

hb = send_opsgenie_heartbeat(ensure=True, interval=1, interval_unit="hours")

for dag_id in ("e2e_shared_a", "e2e_shared_b", "e2e_shared_c"):
    with DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
             on_success_callback=hb) as dag:
        @task
        def work():
            return 1

        work()
    globals()[dag_id] = dag

with DAG(dag_id="e2e_plain", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         on_success_callback=send_opsgenie_heartbeat()):
    @task
    def work():
        return 1

    work()
"""
SHARED_DAG_IDS = ("e2e_shared_a", "e2e_shared_b", "e2e_shared_c")

# Sync from a task, pause states read through the API server's REST API.
SYNC_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_opsgenie_hb.operators.heartbeat import OpsgenieSyncHeartbeatsOperator

with DAG(dag_id="e2e_sync", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    # A hang shows as a timeout, with the line it hung on in the task's log.
    OpsgenieSyncHeartbeatsOperator(task_id="sync", paused="disable", execution_timeout=pendulum.duration(seconds=150))
"""


@pytest.fixture(scope="module")
def airflow_stack(
    opsgenie_emulator_server: EmulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowStack]:
    stack = new_stack(
        tmp_path_factory.mktemp("airflow-e2e"),
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT=opsgenie_emulator_server.connection_json(),
        AIRFLOW__OPSGENIE_HEARTBEAT__PING_DEADLINE_SECONDS=str(LISTENER_PING_DEADLINE),
        # The UI's connection form and Test button, reached through the API server.
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
    )
    stack.env["AIRFLOW_CONN_AIRFLOW_API"] = json.dumps({"conn_type": "http", "host": stack.api_url})
    (stack.dags / "e2e_callback.py").write_text(textwrap.dedent(CALLBACK_DAG))
    (stack.dags / "e2e_shared.py").write_text(textwrap.dedent(SHARED_NOTIFIER_DAGS))
    (stack.dags / "e2e_sync.py").write_text(textwrap.dedent(SYNC_DAG))
    for dag_id, tags in (("e2e_tagged", ["opsgenie-heartbeat"]), ("e2e_untagged", []), ("e2e_other", [])):
        (stack.dags / f"{dag_id}.py").write_text(textwrap.dedent(LISTENER_DAG.format(dag_id=dag_id, tags=tags)))
    stack.cli("db", "migrate")
    with running(stack, "api-server", "scheduler", "dag-processor"):
        wait_for(
            lambda: {"e2e_callback", "e2e_plain", "e2e_sync", *SHARED_DAG_IDS} <= stack.serialized_dag_ids(),
            180,
            "the DAGs to be parsed",
            stack.logs,
        )
        yield stack


def test_dag_processor_pings_the_heartbeat_after_a_triggered_run(
    airflow_stack: AirflowStack, opsgenie_emulator_server: EmulatorHandle
) -> None:
    opsgenie_emulator_server.reset()
    airflow_stack.trigger("e2e_callback")

    def pinged() -> bool:
        return any(
            r["endpoint"] == "ping" and r["name"] == "e2e-e2e_callback" for r in opsgenie_emulator_server.requests()
        )

    wait_for(pinged, 240, "the DAG processor's ping", airflow_stack.logs)
    heartbeat = opsgenie_emulator_server.heartbeats()["e2e-e2e_callback"]
    assert heartbeat["lastPingTime"]
    assert (heartbeat["interval"], heartbeat["intervalUnit"]) == (1, "hours")
    # The callback ran in the DAG processor: its per-file log holds the notifier's line.
    processor_logs = "".join(p.read_text() for p in (airflow_stack.home / "logs" / "dag_processor").rglob("*.log"))
    assert "Pinged OpsGenie heartbeat 'e2e-e2e_callback'" in processor_logs


def test_a_shared_notifier_pings_each_dags_own_heartbeat_one_request_per_run(
    airflow_stack: AirflowStack, opsgenie_emulator_server: EmulatorHandle
) -> None:
    from airflow_provider_opsgenie_hb.api.client import HeartbeatClient

    opsgenie_emulator_server.reset()
    HeartbeatClient.opsgenie(opsgenie_emulator_server.api_key, opsgenie_emulator_server.url).create_heartbeat(
        name="e2e_plain", interval=1, interval_unit="hours"
    )
    created = len(opsgenie_emulator_server.requests())
    dag_ids = (*SHARED_DAG_IDS, "e2e_plain")
    for round_ in range(1, 4):
        for dag_id in dag_ids:
            airflow_stack.trigger(dag_id)
        # The first round's callbacks ping twice (before and after creating the heartbeat).
        expected = {d: round_ + (d != "e2e_plain") for d in dag_ids}

        def round_done(expected: dict[str, int] = expected) -> bool:
            pings = [r["name"] for r in opsgenie_emulator_server.requests() if r["endpoint"] == "ping"]
            return all(pings.count(d) >= n for d, n in expected.items())

        wait_for(round_done, 300, f"round {round_} of pings", airflow_stack.logs)
    time.sleep(3)  # a stray ping or check would arrive now
    calls = [(r["endpoint"], r["name"]) for r in opsgenie_emulator_server.requests()[created:]]
    assert {name for _, name in calls} == set(dag_ids), calls
    for dag_id in SHARED_DAG_IDS:
        assert [op for op, name in calls if name == dag_id] == ["ping", "get", "create", "ping", "ping", "ping"]
    assert [op for op, name in calls if name == "e2e_plain"] == ["ping", "get", "ping", "ping"]
    assert {r["status"] for r in opsgenie_emulator_server.requests() if r["endpoint"] == "ping"} == {202}


def test_listener_pings_tagged_dags_only(airflow_stack: AirflowStack, opsgenie_emulator_server: EmulatorHandle) -> None:
    opsgenie_emulator_server.reset()
    untagged_before = airflow_stack.successful_runs("e2e_untagged")
    airflow_stack.trigger("e2e_untagged")
    airflow_stack.trigger("e2e_tagged")
    wait_for(
        lambda: airflow_stack.successful_runs("e2e_untagged") > untagged_before,
        240,
        "e2e_untagged to succeed",
        airflow_stack.logs,
    )

    def tagged_pinged() -> bool:
        return any(r["endpoint"] == "ping" and r["name"] == "e2e_tagged" for r in opsgenie_emulator_server.requests())

    wait_for(tagged_pinged, 240, "the listener's ping of e2e_tagged", airflow_stack.logs)
    assert not [r for r in opsgenie_emulator_server.requests() if r["name"] == "e2e_untagged"]
    assert (
        "Pinged OpsGenie heartbeat 'e2e_tagged' from the listener" in (airflow_stack.logs / "scheduler.log").read_text()
    )


def test_the_ui_shows_the_connection_form_and_its_test_button_works(
    airflow_stack: AirflowStack, opsgenie_emulator_server: EmulatorHandle
) -> None:
    auth = bearer(airflow_stack.api_url)
    meta = requests.get(f"{airflow_stack.api_url}/ui/connections/hook_meta", headers=auth, timeout=60).json()
    forms = {m["connection_type"]: m for m in meta}
    ours = forms["opsgenie_heartbeat"]
    assert ours["hook_name"] == "OpsGenie Heartbeat"
    if Version("3.1") <= AIRFLOW_VERSION:  # 3.0 shows the form's fields only with flask-appbuilder
        assert {"region", "connect_timeout", "read_timeout", "time_budget"} <= set(ours["extra_fields"])
        assert {"cloud_id", "team_id"} <= set(forms["jsm_ops_heartbeat"]["extra_fields"])
        assert ours["standard_fields"]["password"]["title"] == "API key (GenieKey)"
        assert ours["standard_fields"]["login"]["hidden"] is True

    def test_button(password: str) -> dict[str, object]:
        body = {
            "connection_id": "ui_test",
            "conn_type": "opsgenie_heartbeat",
            "host": opsgenie_emulator_server.url,
            "password": password,
        }
        response = requests.post(
            f"{airflow_stack.api_url}/api/v2/connections/test", json=body, headers=auth, timeout=60
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    opsgenie_emulator_server.reset()
    ok = test_button(opsgenie_emulator_server.api_key)
    assert ok["status"] is True, ok
    assert "heartbeat(s) visible" in str(ok["message"])
    refused = test_button("not-the-key")
    assert refused["status"] is False
    assert "401" in str(refused["message"])


def test_sync_from_a_task_disables_the_heartbeats_of_paused_dags(
    airflow_stack: AirflowStack, opsgenie_emulator_server: EmulatorHandle
) -> None:
    opsgenie_emulator_server.reset()

    def sync_once() -> dict[str, Any]:
        done = airflow_stack.successful_runs("e2e_sync")
        airflow_stack.trigger("e2e_sync")
        try:
            wait_for(lambda: airflow_stack.successful_runs("e2e_sync") > done, 240, "e2e_sync", airflow_stack.logs)
        except pytest.fail.Exception as failed:
            task_logs = sorted((airflow_stack.home / "logs" / "dag_id=e2e_sync").rglob("*.log"))
            pytest.fail(f"{failed}\n--- the sync task's log\n{task_logs[-1].read_text()[-6000:] if task_logs else ''}")
        return opsgenie_emulator_server.heartbeats()

    assert sync_once()["e2e_shared_a"]["enabled"] is True
    airflow_stack.pause("e2e_shared_a", True)
    try:
        paused = sync_once()["e2e_shared_a"]
        assert paused["enabled"] is False
        assert "paused-in-airflow:default" in paused["alertTags"]
    finally:
        airflow_stack.pause("e2e_shared_a", False)
    assert sync_once()["e2e_shared_a"]["enabled"] is True


# Last in this module: the scheduler it leaves holds a ping the emulator answers minutes later, and
# tasks that LocalExecutor forks from that scheduler meanwhile have hung once in several loaded runs
# (not yet explained; see docs/development.md).
def test_a_hanging_opsgenie_does_not_hold_up_the_scheduler(
    airflow_stack: AirflowStack, opsgenie_emulator_server: EmulatorHandle
) -> None:
    opsgenie_emulator_server.reset()
    opsgenie_emulator_server.set_faults({"kind": "latency", "seconds": 3 * LISTENER_PING_DEADLINE, "endpoint": "ping"})
    tagged_before = airflow_stack.successful_runs("e2e_tagged")
    other_before = airflow_stack.successful_runs("e2e_other")
    airflow_stack.trigger("e2e_tagged")
    wait_for(
        lambda: airflow_stack.successful_runs("e2e_tagged") > tagged_before,
        240,
        "e2e_tagged to succeed",
        airflow_stack.logs,
    )
    # The listener's ping now hangs for up to its deadline. If it blocked the scheduler, the
    # next run of another DAG could not finish before that deadline passed.
    started = time.monotonic()
    airflow_stack.trigger("e2e_other")
    wait_for(
        lambda: airflow_stack.successful_runs("e2e_other") > other_before,
        240,
        "e2e_other to succeed",
        airflow_stack.logs,
    )
    assert time.monotonic() - started < LISTENER_PING_DEADLINE
    opsgenie_emulator_server.reset()
