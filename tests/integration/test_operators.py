"""Each operator through real Airflow (dag.test()) against the emulator, state checked after each step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import AIRFLOW_VERSION, Backend
from packaging.version import Version

from airflow_provider_opsgenie_hb.api.errors import HeartbeatValidationError
from airflow_provider_opsgenie_hb.operators import heartbeat as operators
from opsgenie_heartbeat_emulator import EmulatorHandle

ROOT = Path(__file__).resolve().parents[2]

ONE_TASK_DAG = """
import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow_provider_opsgenie_hb.operators.heartbeat import *

with DAG(dag_id="{dag_id}", schedule="{schedule}", start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    {operator}
"""

RunOp = Callable[..., tuple[str, Any]]


@pytest.fixture
def run_op(run_dag: Callable[..., Any], backend: Backend) -> RunOp:
    """Run one operator (source text, task_id "op") in its own DAG, on either backend; return (state, XCom)."""
    counter = iter(range(1000))

    def run(operator: str, schedule: str = "@daily") -> tuple[str, Any]:
        dag_id = f"op_{next(counter)}_{os.getpid()}"
        dag_run = run_dag(ONE_TASK_DAG.format(dag_id=dag_id, schedule=schedule, operator=operator), dag_id)
        ti = dag_run.get_task_instance("op")
        value = ti.xcom_pull(task_ids="op") if ti.state == "success" else None
        assert backend.api_key not in json.dumps(value)
        return ti.state, value

    return run


def test_create_with_a_templated_name(run_op: RunOp, backend: Backend) -> None:
    state, value = run_op(
        'OpsgenieCreateHeartbeatOperator(task_id="op", name="hb-{{ dag.dag_id }}", interval=3, '
        'interval_unit="hours", alert_tags=["{{ task.task_id }}"], alert_priority="P2")'
    )
    assert state == "success"
    name = value["name"]
    assert name.startswith("hb-op_")
    stored = backend.heartbeats()[name]
    assert (stored["interval"], stored["intervalUnit"], stored["alertTags"], stored["alertPriority"]) == (
        3,
        "hours",
        ["op"],
        "P2",
    )
    assert value["interval_unit"] == "hours"


def test_create_of_an_existing_name_fails_the_task(run_op: RunOp) -> None:
    create = 'OpsgenieCreateHeartbeatOperator(task_id="op", name="dup", interval=1, interval_unit="hours")'
    assert run_op(create)[0] == "success"
    assert run_op(create)[0] == "failed"


def test_get_list_update_enable_disable_ping(run_op: RunOp, backend: Backend) -> None:
    run_op('OpsgenieCreateHeartbeatOperator(task_id="op", name="hb", interval=1, interval_unit="hours")')

    assert run_op('OpsgenieGetHeartbeatOperator(task_id="op", name="hb")')[1]["interval"] == 1
    assert [h["name"] for h in run_op('OpsgenieListHeartbeatsOperator(task_id="op")')[1]] == ["hb"]

    state, value = run_op('OpsgenieUpdateHeartbeatOperator(task_id="op", name="hb", interval=4, alert_message="m")')
    assert state == "success"
    assert value == {"name": "hb", "enabled": True, "expired": False}
    assert backend.heartbeats()["hb"]["interval"] == 4
    assert backend.heartbeats()["hb"]["alertMessage"] == "m"

    assert run_op('OpsgenieDisableHeartbeatOperator(task_id="op", name="hb")')[1]["enabled"] is False
    assert backend.heartbeats()["hb"]["enabled"] is False
    assert run_op('OpsgenieEnableHeartbeatOperator(task_id="op", name="hb")')[1]["enabled"] is True
    assert backend.heartbeats()["hb"]["enabled"] is True

    state, value = run_op('OpsgeniePingHeartbeatOperator(task_id="op", name="hb")')
    assert state == "success"
    assert value["result"] == "PONG - Heartbeat received"
    assert backend.heartbeats()["hb"]["pinged"]


def test_ping_of_a_missing_heartbeat_fails_unless_unchecked(run_op: RunOp, backend: Backend) -> None:
    assert run_op('OpsgeniePingHeartbeatOperator(task_id="op", name="typo")')[0] == "failed"
    assert not [r for r in backend.emulator.requests() if r["endpoint"] == "ping"]
    assert run_op('OpsgeniePingHeartbeatOperator(task_id="op", name="typo", check_exists=False)')[0] == "success"
    (ping,) = [r for r in backend.emulator.requests() if r["endpoint"] == "ping"]
    assert ping["unknown_heartbeat"] is True


def test_delete_and_disable_with_missing_ok(run_op: RunOp, backend: Backend) -> None:
    run_op('OpsgenieCreateHeartbeatOperator(task_id="op", name="old", interval=1, interval_unit="hours")')
    assert run_op('OpsgenieDeleteHeartbeatOperator(task_id="op", name="old")')[1] == {"name": "old", "deleted": True}
    assert backend.heartbeats() == {}
    assert run_op('OpsgenieDeleteHeartbeatOperator(task_id="op", name="old")')[0] == "failed"
    assert run_op('OpsgenieDeleteHeartbeatOperator(task_id="op", name="old", missing_ok=True)')[1] == {
        "name": "old",
        "deleted": False,
    }
    assert run_op('OpsgenieDisableHeartbeatOperator(task_id="op", name="old")')[0] == "failed"
    assert run_op('OpsgenieDisableHeartbeatOperator(task_id="op", name="old", missing_ok=True)')[1] == {
        "name": "old",
        "missing": True,
    }


def test_ensure_creates_then_changes_nothing_then_updates(run_op: RunOp, backend: Backend) -> None:
    ensure = (
        'OpsgenieEnsureHeartbeatOperator(task_id="op", name="e", interval={}, interval_unit="hours", alert_tags=["a"])'
    )
    assert run_op(ensure.format(2))[1]["action"] == "created"
    writes = len([r for r in backend.emulator.requests() if r["method"] != "GET"])
    assert run_op(ensure.format(2))[1] == {"action": "unchanged", "name": "e", "changed": {}}
    assert len([r for r in backend.emulator.requests() if r["method"] != "GET"]) == writes
    assert run_op(ensure.format(5))[1] == {"action": "updated", "name": "e", "changed": {"interval": 5}}
    assert backend.heartbeats()["e"]["interval"] == 5


def test_ensure_derives_the_interval_from_the_schedule(run_op: RunOp, backend: Backend) -> None:
    run_op('OpsgenieEnsureHeartbeatOperator(task_id="op", name="derived")', schedule="0 3 * * 1-5")
    stored = backend.heartbeats()["derived"]
    assert (stored["interval"], stored["intervalUnit"]) == (73, "hours")


def test_ensure_marks_what_it_creates_and_keeps_the_mark_on_update(run_op: RunOp, backend: Backend) -> None:
    ensure = (
        'OpsgenieEnsureHeartbeatOperator(task_id="op", name="m", interval={}, interval_unit="hours", alert_tags=["a"])'
    )
    assert run_op(ensure.format(2))[1]["action"] == "created"
    assert backend.heartbeats()["m"]["alertTags"] == ["a", "managed-by-airflow:default"]
    assert run_op(ensure.format(3))[1]["action"] == "updated"
    assert backend.heartbeats()["m"]["alertTags"] == ["a", "managed-by-airflow:default"]
    assert backend.heartbeats()["m"]["interval"] == 3


def test_ensure_leaves_a_heartbeat_it_does_not_manage_unless_adopting(run_op: RunOp, backend: Backend) -> None:
    """Made by hand (or by another deployment): a conflict, not a takeover; adopt=True takes it over and marks it."""
    run_op('OpsgenieCreateHeartbeatOperator(task_id="op", name="theirs", interval=9, interval_unit="hours")')
    ensure = 'OpsgenieEnsureHeartbeatOperator(task_id="op", name="theirs", interval=2, interval_unit="hours"{})'
    state, value = run_op(ensure.format(""))
    assert (state, value["action"], value["changed"]) == ("success", "conflict", {"interval": 2})
    assert backend.heartbeats()["theirs"]["interval"] == 9
    assert not [r for r in backend.emulator.requests() if r["method"] == "PATCH"]
    state, value = run_op(ensure.format(", adopt=True"))
    assert (state, value["action"]) == ("success", "updated")
    stored = backend.heartbeats()["theirs"]
    assert (stored["interval"], stored["alertTags"]) == (2, ["managed-by-airflow:default"])


def test_adopting_replaces_another_deployments_marker_and_marks_a_matching_heartbeat(
    run_op: RunOp, backend: Backend
) -> None:
    """Adopted, a heartbeat is this deployment's alone (its former owner's sync would prune it otherwise),
    and adopting one that already matches still marks it."""
    create = (
        'OpsgenieCreateHeartbeatOperator(task_id="op", name="{}", interval=2, interval_unit="hours", alert_tags={})'
    )
    run_op(create.format("other", '["a", "managed-by-airflow:prod-us"]'))
    run_op(create.format("same", "[]"))
    ensure = 'OpsgenieEnsureHeartbeatOperator(task_id="op", name="{}", interval=2, interval_unit="hours", adopt=True{})'
    assert run_op(ensure.format("other", ', alert_tags=["a"]'))[1]["action"] == "updated"
    assert backend.heartbeats()["other"]["alertTags"] == ["a", "managed-by-airflow:default"]
    assert run_op(ensure.format("same", ""))[1] == {
        "action": "updated",
        "name": "same",
        "changed": {"alert_tags": ["managed-by-airflow:default"]},
    }
    assert backend.heartbeats()["same"]["alertTags"] == ["managed-by-airflow:default"]
    assert run_op(ensure.format("same", ""))[1]["action"] == "unchanged"  # marked now: nothing to do


def test_ensure_arguments_checked_at_parse_time() -> None:
    ensure = operators.OpsgenieEnsureHeartbeatOperator
    with pytest.raises(HeartbeatValidationError, match="adopt must be True or False"):
        ensure(task_id="x", name="x", adopt="no")
    with pytest.raises(HeartbeatValidationError, match="at most 19 tags"):
        ensure(task_id="x", name="x", alert_tags=[f"t{i}" for i in range(20)])
    ensure(task_id="x", name="x", interval="{{ params.hours }}", interval_unit="hours")  # rendered later
    ensure(task_id="x", name="x", enabled=None)  # leaves the enabled state alone


def test_ensure_with_enabled_none_leaves_a_disabled_heartbeat_disabled(run_op: RunOp, backend: Backend) -> None:
    ensure = 'OpsgenieEnsureHeartbeatOperator(task_id="op", name="quiet", interval_unit="hours", interval={})'
    assert run_op(ensure.format("2"))[1]["action"] == "created"
    run_op('OpsgenieDisableHeartbeatOperator(task_id="op", name="quiet")')
    state, value = run_op(ensure.format("3, enabled=None"))
    assert (state, value["changed"]) == ("success", {"interval": 3})
    assert backend.heartbeats()["quiet"]["interval"] == 3  # what reached the emulator, not only the XCom
    assert backend.heartbeats()["quiet"]["enabled"] is False


def test_ensure_keeps_grace_and_next_run_like_the_callback(run_op: RunOp, backend: Backend) -> None:
    run_op(
        'OpsgenieEnsureHeartbeatOperator(task_id="op", name="graced", grace=__import__("datetime").timedelta(hours=5))',
        schedule="0 3 * * *",
    )
    stored = backend.heartbeats()["graced"]
    assert (stored["interval"], stored["intervalUnit"]) == (29, "hours")  # 24 h between runs + 5 h of grace
    run_op('OpsgenieEnsureHeartbeatOperator(task_id="op", name="runs-set", interval="next_run")', schedule="0 3 * * *")
    assert backend.heartbeats()["runs-set"]["interval"] == 25  # created with the longest gap plus the default grace
    run_op('OpsgenieUpdateHeartbeatOperator(task_id="op", name="runs-set", interval=40)')  # as a run would set it
    state, value = run_op(
        'OpsgenieEnsureHeartbeatOperator(task_id="op", name="runs-set", interval="next_run")', schedule="0 3 * * *"
    )
    assert (state, value["action"]) == ("success", "unchanged")
    assert backend.heartbeats()["runs-set"]["interval"] == 40


def test_a_template_that_renders_to_a_bad_value_fails_before_sending(run_op: RunOp, backend: Backend) -> None:
    state, _ = run_op(
        'OpsgenieCreateHeartbeatOperator(task_id="op", name="{{ \\"x\\" * 201 }}", interval=1, interval_unit="hours")'
    )
    assert state == "failed"
    assert backend.emulator.requests() == []


@pytest.mark.parametrize(
    ("operator", "kwargs", "field"),
    [
        ("OpsgenieCreateHeartbeatOperator", {"name": "x", "interval": 0, "interval_unit": "hours"}, "interval"),
        ("OpsgenieCreateHeartbeatOperator", {"name": "x", "interval": 1}, "interval_unit"),
        ("OpsgenieEnsureHeartbeatOperator", {"name": "x", "interval": 1}, "interval"),
        ("OpsgenieUpdateHeartbeatOperator", {"name": "x"}, "fields"),
        ("OpsgenieUpdateHeartbeatOperator", {"name": "x", "alert_priority": "urgent"}, "alert_priority"),
        ("OpsgenieGetHeartbeatOperator", {"name": ""}, "name"),
        ("OpsgenieDeleteHeartbeatOperator", {"name": "a\nb"}, "name"),
        ("OpsgeniePingHeartbeatOperator", {"name": "x" * 201}, "name"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(operator: str, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(HeartbeatValidationError) as err:
        getattr(operators, operator)(task_id="t", **kwargs)
    assert field in err.value.errors
    assert "'t'" in str(err.value)


def test_every_operator_templates_its_name_and_configuration() -> None:
    for cls in (
        operators.OpsgenieCreateHeartbeatOperator,
        operators.OpsgenieEnsureHeartbeatOperator,
        operators.OpsgenieUpdateHeartbeatOperator,
    ):
        assert {"name", "interval", "interval_unit", "alert_message", "alert_tags", "description"} <= set(
            cls.template_fields
        )
    for cls in (
        operators.OpsgenieGetHeartbeatOperator,
        operators.OpsgenieDeleteHeartbeatOperator,
        operators.OpsgenieEnableHeartbeatOperator,
        operators.OpsgenieDisableHeartbeatOperator,
        operators.OpsgeniePingHeartbeatOperator,
    ):
        assert "name" in cls.template_fields


EXAMPLES_NEED_AIRFLOW_3 = pytest.mark.skipif(
    Version("3") > AIRFLOW_VERSION, reason="the example DAGs are written for Airflow 3 (airflow.sdk)"
)


@EXAMPLES_NEED_AIRFLOW_3
def test_lifecycle_example_dag_runs_end_to_end(opsgenie_emulator: EmulatorHandle, airflow_db: str) -> None:
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
        "AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT": opsgenie_emulator.connection_json(),
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "test", "example_opsgenie_heartbeat_lifecycle"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    steps = [(r["method"], r["endpoint"], r["status"]) for r in opsgenie_emulator.requests()]
    name = "example_opsgenie_heartbeat_lifecycle"
    assert steps == [
        ("GET", "get", 404),  # ensure: not there yet
        ("POST", "create", 201),  # ensure: created
        ("GET", "get", 200),  # read
        ("GET", "get", 200),  # first_ping checks it exists
        ("POST", "ping", 202),
        ("POST", "disable", 200),
        ("POST", "enable", 200),
        ("GET", "get", 200),
        ("POST", "ping", 202),
        ("DELETE", "delete", 200),
    ]
    assert {r["name"] for r in opsgenie_emulator.requests() if r["name"]} == {name}
    assert opsgenie_emulator.heartbeats() == {}


@EXAMPLES_NEED_AIRFLOW_3
def test_every_example_dag_imports_without_errors(airflow_db: str) -> None:
    from airflow_provider_opsgenie_hb.version_compat import dag_bag

    bag = dag_bag(str(ROOT / "example_dags"))
    assert bag.import_errors == {}
    assert len(bag.dags) == len(list((ROOT / "example_dags").glob("example_*.py")))
