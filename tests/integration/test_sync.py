"""Heartbeats as code: `opsgenie-heartbeat sync` on a folder of DAGs with every kind of timetable."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_opsgenie_hb.emulator import EmulatorHandle
from airflow_provider_opsgenie_hb.sync import MANAGED_TAG

HEADER = """
import datetime
import pendulum
from airflow.sdk import DAG, Asset, task
from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable, DeltaDataIntervalTimetable
from airflow.sdk.definitions.timetables.trigger import MultipleCronTriggerTimetable
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

START = pendulum.datetime(2026, 1, 1, tz="UTC")
"""

DAGS = {
    "cron_trigger": 'DAG("cron_trigger", schedule="{schedule}", start_date=START, tags=["opsgenie-heartbeat"])',
    "cron_data_interval": (
        'DAG("cron_data_interval", schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"), start_date=START,'
        ' on_success_callback=send_opsgenie_heartbeat(name="dw-{{{{ dag.dag_id }}}}", alert_priority="P2"))'
    ),
    "delta": 'DAG("delta", schedule=datetime.timedelta(minutes=30), start_date=START, tags=["opsgenie-heartbeat"])',
    "delta_data_interval": (
        'DAG("delta_data_interval", schedule=DeltaDataIntervalTimetable(datetime.timedelta(hours=6)),'
        ' start_date=START, tags=["opsgenie-heartbeat"])'
    ),
    "multi_cron": (
        'DAG("multi_cron", schedule=MultipleCronTriggerTimetable("0 3 * * *", "0 15 * * *", timezone="UTC"),'
        ' start_date=START, tags=["opsgenie-heartbeat"])'
    ),
    "manual_with_interval": (
        'DAG("manual_with_interval", schedule=None, start_date=START,'
        ' on_success_callback=send_opsgenie_heartbeat(interval=3, interval_unit="hours", alert_tags=["etl"]))'
    ),
    "once": 'DAG("once", schedule="@once", start_date=START, tags=["opsgenie-heartbeat"])',
    "manual": 'DAG("manual", schedule=None, start_date=START, tags=["opsgenie-heartbeat"])',
    "asset": 'DAG("asset", schedule=[Asset("s3://bucket/data.csv")], start_date=START, tags=["opsgenie-heartbeat"])',
    "untagged": 'DAG("untagged", schedule="@daily", start_date=START)',
    "bad_rendered_tag": (
        'DAG("bad_rendered_tag", schedule="@daily", start_date=START,'
        ' on_success_callback=send_opsgenie_heartbeat(alert_tags=["{{{{ dag.dag_id * 5 }}}}"]))'
    ),
    "other_connection": (
        'DAG("other_connection", schedule="@daily", start_date=START,'
        ' on_success_callback=send_opsgenie_heartbeat(opsgenie_heartbeat_conn_id="elsewhere"))'
    ),
}

EXPECTED_CREATED = {
    "cron_trigger": (25, "hours"),
    "dw-cron_data_interval": (2, "hours"),
    "delta": (1, "hours"),  # 30 minutes plus 30 minutes of grace
    "delta_data_interval": (7, "hours"),
    "multi_cron": (13, "hours"),  # 03:00 and 15:00: 12 hours apart
    "manual_with_interval": (3, "hours"),
}


def write_dag(folder: Path, dag_id: str, schedule: str = "0 3 * * *") -> None:
    body = DAGS[dag_id].format(schedule=schedule)
    source = HEADER + f"\nwith {body}:\n    @task\n    def work():\n        return 1\n\n    work()\n"
    (folder / f"{dag_id}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def dags_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    for dag_id in DAGS:
        write_dag(folder, dag_id)
    return folder


@pytest.fixture
def sync_cli(opsgenie_heartbeat_conn: EmulatorHandle, provider_cli: Callable[..., str]) -> Callable[..., str]:
    def run(folder: Path, *flags: str) -> str:
        return provider_cli("sync", "--dags-folder", str(folder), *flags)

    return run


def writes(emulator: EmulatorHandle) -> list[tuple[str, Any]]:
    return [(r["endpoint"], r["name"]) for r in emulator.requests() if r["method"] != "GET"]


def test_sync_creates_then_changes_nothing_then_follows_the_dags(
    dags_folder: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    OpsgenieHeartbeatHook().create_heartbeat(name="made-by-hand", interval=1, interval_unit="days")

    # A dry run plans everything and writes nothing.
    out = sync_cli(dags_folder, "--dry-run")
    assert "Dry run: nothing was changed." in out
    assert "Plan: 6 to create, 0 to update, 0 unchanged, 4 skipped." in out
    assert "each tag must be at most 50 characters" in out  # a rendered tag too long: skipped, named
    for skipped in ("once", "manual", "asset"):
        assert f"! {skipped}" in out
    assert "runs once (@once)" in out
    assert "triggered by assets" in out
    assert writes(opsgenie_heartbeat_conn) == [("create", "made-by-hand")]

    # First run: creates, with the marker tag.
    out = sync_cli(dags_folder)
    assert "Applied: 6 created, 0 updated, 0 deleted, 0 failed." in out
    stored = opsgenie_heartbeat_conn.heartbeats()
    assert {name: (hb["interval"], hb["intervalUnit"]) for name, hb in stored.items() if name != "made-by-hand"} == (
        EXPECTED_CREATED
    )
    assert all(MANAGED_TAG in hb["alertTags"] for name, hb in stored.items() if name != "made-by-hand")
    assert stored["manual_with_interval"]["alertTags"] == ["etl", MANAGED_TAG]
    assert stored["dw-cron_data_interval"]["alertPriority"] == "P2"
    assert "untagged" not in stored
    assert "other_connection" not in stored

    # Second run: nothing to do, nothing written.
    before = len(writes(opsgenie_heartbeat_conn))
    out = sync_cli(dags_folder)
    assert "Plan: 0 to create, 0 to update, 6 unchanged, 4 skipped." in out
    assert len(writes(opsgenie_heartbeat_conn)) == before

    # A schedule change updates the interval.
    write_dag(dags_folder, "cron_trigger", schedule="0 3 * * 1-5")
    out = sync_cli(dags_folder)
    assert "~ cron_trigger" in out
    assert "interval: 25 -> 73" in out
    assert opsgenie_heartbeat_conn.heartbeats()["cron_trigger"]["interval"] == 73

    # A retired DAG leaves an orphan; only --prune deletes it, and never an unmanaged heartbeat.
    (dags_folder / "delta.py").unlink()
    out = sync_cli(dags_folder)
    assert "- delta" in out
    assert "orphaned" in out
    assert "delta" in opsgenie_heartbeat_conn.heartbeats()
    out = sync_cli(dags_folder, "--prune")
    assert "1 deleted" in out
    remaining = opsgenie_heartbeat_conn.heartbeats()
    assert "delta" not in remaining
    assert "made-by-hand" in remaining


def test_sync_from_python_and_as_an_operator(
    dags_folder: Path, run_dag: Callable[..., Any], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    from airflow_provider_opsgenie_hb.sync import sync_heartbeats

    plan = sync_heartbeats(dags_folder, dry_run=True)
    assert plan.count("create") == 6
    assert opsgenie_heartbeat_conn.requests()[-1]["endpoint"] == "list"

    source = f"""
import pendulum
from airflow.sdk import DAG
from airflow_provider_opsgenie_hb.operators.heartbeat import OpsgenieSyncHeartbeatsOperator

with DAG(dag_id="deploy_heartbeats", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    OpsgenieSyncHeartbeatsOperator(task_id="op", dags_folder="{dags_folder}")
"""
    dag_run = run_dag(source, "deploy_heartbeats")
    ti = dag_run.get_task_instance("op")
    assert ti.state == "success"
    summary = ti.xcom_pull(task_ids="op")
    assert sorted(summary["created"]) == sorted(EXPECTED_CREATED)
    assert sorted(summary["skipped"]) == ["asset", "bad_rendered_tag", "manual", "once"]
    assert set(opsgenie_heartbeat_conn.heartbeats()) == set(EXPECTED_CREATED)
