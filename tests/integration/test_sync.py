"""Heartbeats as code: `opsgenie-heartbeat sync` on a folder of DAGs with every kind of timetable."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow_timetables import DAG_FILE_IMPORTS, MultipleCronTriggerTimetable
from conftest import AIRFLOW_VERSION
from packaging.version import Version

from opsgenie_heartbeat_emulator import EmulatorHandle

# Airflow 2 asks a scheduled DAG for a start date.
DAG_START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)

MARKER = "managed-by-airflow:default"

HEADER = """
import datetime
import pendulum
from airflow.providers.common.compat.sdk import DAG, Asset, task
{timetables}
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

START = pendulum.datetime(2026, 1, 1, tz="UTC")
""".replace("{timetables}", DAG_FILE_IMPORTS)

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

if MultipleCronTriggerTimetable is None:  # Airflow 2
    del DAGS["multi_cron"], EXPECTED_CREATED["multi_cron"]


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


@pytest.fixture(autouse=True)
def no_earlier_sync(airflow_db: str) -> None:
    """Each test starts as a deployment no sync has run in: what earlier syncs saw declared (kept in the
    metadata database the session's tests share) is cleared, so another test's names are not this one's."""
    from airflow.models import Variable
    from airflow.utils.session import create_session

    from airflow_provider_opsgenie_hb.core.declared import VARIABLE

    with create_session() as session:
        session.query(Variable).filter(Variable.key == VARIABLE).delete(synchronize_session=False)


@pytest.fixture
def sync_cli(opsgenie_heartbeat_conn: EmulatorHandle, provider_main: Callable[..., str]) -> Callable[..., str]:
    """``opsgenie-heartbeat sync`` on a folder, in this process (the console script itself: ``provider_cli``)."""

    def run(folder: Path, *flags: str, expect_exit: int = 0) -> str:
        return provider_main("sync", "--dags-folder", str(folder), *flags, expect_exit=expect_exit)

    return run


def writes(emulator: EmulatorHandle) -> list[tuple[str, Any]]:
    return [(r["endpoint"], r["name"]) for r in emulator.requests() if r["method"] != "GET"]


def test_sync_creates_then_changes_nothing_then_follows_the_dags(
    dags_folder: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    OpsgenieHeartbeatHook().create_heartbeat(name="made-by-hand", interval=1, interval_unit="days")

    # A dry run plans everything and writes nothing.
    # Four DAGs declare heartbeats that cannot be built: exit code 1, on a dry run too.
    out = sync_cli(dags_folder, "--dry-run", expect_exit=1)
    assert "Dry run: nothing was changed." in out
    assert f"Plan: {len(EXPECTED_CREATED)} to create, 0 to update, 0 unchanged, 4 skipped." in out
    assert "each tag must be at most 50 characters" in out  # a rendered tag too long: skipped, named
    for skipped in ("once", "manual", "asset"):
        assert f"! {skipped}" in out
    assert "runs once (@once)" in out
    assert "triggered by assets" in out
    assert writes(opsgenie_heartbeat_conn) == [("create", "made-by-hand")]

    # First run: creates, with the marker tag.
    out = sync_cli(dags_folder, expect_exit=1)
    assert (
        f"Applied: {len(EXPECTED_CREATED)} created, 0 updated, 0 deleted, 0 in conflict (left alone), 0 failed." in out
    )
    stored = opsgenie_heartbeat_conn.heartbeats()
    assert {name: (hb["interval"], hb["intervalUnit"]) for name, hb in stored.items() if name != "made-by-hand"} == (
        EXPECTED_CREATED
    )
    assert all(MARKER in hb["alertTags"] for name, hb in stored.items() if name != "made-by-hand")
    assert stored["manual_with_interval"]["alertTags"] == ["etl", MARKER]
    assert stored["dw-cron_data_interval"]["alertPriority"] == "P2"
    assert "untagged" not in stored
    assert "other_connection" not in stored

    # Second run: nothing to do, nothing written.
    before = len(writes(opsgenie_heartbeat_conn))
    out = sync_cli(dags_folder, expect_exit=1)
    assert f"Plan: 0 to create, 0 to update, {len(EXPECTED_CREATED)} unchanged, 4 skipped." in out
    assert len(writes(opsgenie_heartbeat_conn)) == before

    # A schedule change updates the interval.
    write_dag(dags_folder, "cron_trigger", schedule="0 3 * * 1-5")
    out = sync_cli(dags_folder, expect_exit=1)
    assert "~ cron_trigger" in out
    assert "interval: 25 -> 73" in out
    assert opsgenie_heartbeat_conn.heartbeats()["cron_trigger"]["interval"] == 73

    # A retired DAG leaves an orphan; only --prune deletes it, and never an unmanaged heartbeat.
    (dags_folder / "delta.py").unlink()
    out = sync_cli(dags_folder, expect_exit=1)
    assert "- delta" in out
    assert "orphaned" in out
    assert "delta" in opsgenie_heartbeat_conn.heartbeats()
    # Four declarations could not be built (no rhythm, a bad tag): deleting is not safe.
    out = sync_cli(dags_folder, "--prune", expect_exit=1)
    assert "Prune refused" in out
    assert "DAG once: the declaration of 'once' could not be built" in out
    assert "delta" in opsgenie_heartbeat_conn.heartbeats()
    for incomplete in ("once", "manual", "asset", "bad_rendered_tag"):
        (dags_folder / f"{incomplete}.py").unlink()
    out = sync_cli(dags_folder, "--prune")
    assert "1 deleted" in out
    remaining = opsgenie_heartbeat_conn.heartbeats()
    assert "delta" not in remaining
    assert "made-by-hand" in remaining


def test_sync_from_python_and_as_an_operator(
    dags_folder: Path, run_dag: Callable[..., Any], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    from airflow_provider_opsgenie_hb.core.sync import sync_heartbeats
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    plan = sync_heartbeats(dags_folder, OpsgenieHeartbeatHook(), dry_run=True)
    assert plan.count("create") == len(EXPECTED_CREATED)
    assert opsgenie_heartbeat_conn.requests()[-1]["endpoint"] == "list"

    source = f"""
import pendulum
from airflow.providers.common.compat.sdk import DAG
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


TAGGED = """
import pendulum
from airflow.providers.common.compat.sdk import DAG, task

with DAG("{dag_id}", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         tags=["opsgenie-heartbeat"]):
    @task
    def work():
        return 1

    work()
"""


def tagged_folder(tmp_path: Path, *dag_ids: str, name: str = "dags") -> Path:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    for dag_id in dag_ids:
        (folder / f"{dag_id}.py").write_text(TAGGED.format(dag_id=dag_id))
    return folder


def test_a_dag_file_that_fails_to_import_blocks_the_prune_and_is_named(
    tmp_path: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    folder = tagged_folder(tmp_path, "export", "report")
    sync_cli(folder)
    assert set(opsgenie_heartbeat_conn.heartbeats()) == {"export", "report"}
    broken = TAGGED.format(dag_id="report").replace("def work():", "def work(:")  # a broken deploy
    (folder / "report.py").write_text(broken)
    (folder / "new_one.py").write_text(TAGGED.format(dag_id="new_one"))
    out = sync_cli(folder, "--prune", expect_exit=1)
    assert "report.py could not be imported" in out
    assert "Prune refused" in out
    stored = opsgenie_heartbeat_conn.heartbeats()
    assert set(stored) == {"export", "report", "new_one"}  # creates still apply; nothing deleted


def test_a_typo_in_the_folder_or_the_connection_is_a_usage_error(
    tmp_path: Path,
    sync_cli: Callable[..., str],
    provider_cli: Callable[..., str],
    opsgenie_heartbeat_conn: EmulatorHandle,
) -> None:
    folder = tagged_folder(tmp_path, "export")
    sync_cli(folder)
    out = sync_cli(tmp_path / "dgas", "--prune", expect_exit=2)
    assert "does not exist or is not a folder" in out
    assert "Traceback" not in out
    out = provider_cli("sync", "--dags-folder", str(folder), "--conn-id", "no_such_conn", expect_exit=2)
    assert out.strip().splitlines()[-1] == "error: connection 'no_such_conn' does not exist"
    assert "Traceback" not in out
    assert "export" in opsgenie_heartbeat_conn.heartbeats()


def test_an_empty_folder_never_prunes_and_no_declarations_needs_allow_empty(
    tmp_path: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    folder = tagged_folder(tmp_path, "export")
    sync_cli(folder)
    (folder / "export.py").unlink()
    out = sync_cli(folder, "--prune", "--allow-empty", expect_exit=1)
    assert "no DAG found" in out
    assert "export" in opsgenie_heartbeat_conn.heartbeats()
    (folder / "plain.py").write_text(TAGGED.format(dag_id="plain").replace('tags=["opsgenie-heartbeat"]', "tags=[]"))
    out = sync_cli(folder, "--prune", expect_exit=1)
    assert "no DAG declares a heartbeat (--allow-empty to prune all the same)" in out
    assert "export" in opsgenie_heartbeat_conn.heartbeats()
    out = sync_cli(folder, "--prune", "--allow-empty")
    assert "1 deleted" in out
    assert "export" not in opsgenie_heartbeat_conn.heartbeats()


def test_prune_deletes_only_what_a_sync_saw_a_dag_declare(
    tmp_path: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    # Marked as this deployment's (an OpsgenieEnsureHeartbeatOperator does so), pinged by a ping
    # operator: no DAG file shows sync who keeps it alive.
    OpsgenieHeartbeatHook().create_heartbeat(
        name="kept-by-operators", interval=1, interval_unit="hours", alert_tags=[MARKER]
    )
    folder = tagged_folder(tmp_path, "seen_export", "seen_report", name="seen")
    sync_cli(folder)
    (folder / "seen_report.py").unlink()
    out = sync_cli(folder, "--prune")
    assert "1 deleted" in out
    kept = next(line for line in out.splitlines() if "kept-by-operators" in line)
    assert "orphaned" in kept
    assert "no sync saw a DAG declare it" in kept
    assert set(opsgenie_heartbeat_conn.heartbeats()) >= {"seen_export", "kept-by-operators"}
    assert "seen_report" not in opsgenie_heartbeat_conn.heartbeats()


def test_prune_never_deletes_what_another_folder_declares(
    tmp_path: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    """Two teams' folders (or DAG bundles) synced on their own: a prune of one never deletes the other's."""
    first = tagged_folder(tmp_path, "team1_export", name="team1")
    second = tagged_folder(tmp_path, "team2_export", "team2_report", name="team2")
    sync_cli(first)
    sync_cli(second)
    (second / "team2_report.py").unlink()
    out = sync_cli(second, "--prune")
    assert "1 deleted" in out
    line = next(line for line in out.splitlines() if line.split()[1:2] == ["team1_export"])
    assert f"a DAG in {str(first)!r} (sync on " in line
    assert f"never pruned from {str(second)!r}" in line
    assert set(opsgenie_heartbeat_conn.heartbeats()) == {"team1_export", "team2_export"}


def test_a_folder_is_the_same_however_it_is_named_and_another_is_not(
    tmp_path: Path,
    sync_cli: Callable[..., str],
    opsgenie_heartbeat_conn: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each team's CI syncs ``--dags-folder dags`` from its own checkout: the same relative name is not the
    same folder, and a folder named relatively or absolutely is one folder."""
    team1, team2 = tmp_path / "team1", tmp_path / "team2"
    team1.mkdir()
    team2.mkdir()
    tagged_folder(team1, "t1_export", "t1_report")
    tagged_folder(team2, "t2_export")
    monkeypatch.chdir(team1)
    sync_cli(Path("dags"))
    monkeypatch.chdir(team2)
    out = sync_cli(Path("dags"), "--prune")
    assert "0 deleted" in out
    assert "never pruned from" in next(line for line in out.splitlines() if "t1_report" in line)
    (team1 / "dags" / "t1_report.py").unlink()
    # A symlink is a folder of its own (git-sync swaps what it points to): kept.
    (tmp_path / "link").symlink_to(team1 / "dags")
    assert "never pruned from" in sync_cli(tmp_path / "link", "--prune")
    assert "1 deleted" in sync_cli(team1 / "dags", "--prune")  # named absolutely: the same folder
    assert set(opsgenie_heartbeat_conn.heartbeats()) == {"t1_export", "t2_export"}


def test_a_name_two_folders_declare_is_pruned_by_neither_alone(
    tmp_path: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    first = tagged_folder(tmp_path, "shared_export", "only_first", name="first")
    second = tagged_folder(tmp_path, "shared_export", name="second")
    sync_cli(first)
    sync_cli(second)
    (second / "shared_export.py").unlink()
    (second / "other.py").write_text(TAGGED.format(dag_id="second_other"))
    out = sync_cli(second, "--prune")
    assert "0 deleted" in out
    assert f"a DAG in {str(first)!r}" in next(line for line in out.splitlines() if "shared_export" in line)
    (first / "only_first.py").unlink()
    assert "1 deleted" in sync_cli(first, "--prune")  # only_first; shared_export is still the first folder's
    assert set(opsgenie_heartbeat_conn.heartbeats()) == {"shared_export", "second_other"}


OPERATORS_KEEP = """
import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow_provider_opsgenie_hb.operators.heartbeat import (
    OpsgenieEnsureHeartbeatOperator,
    OpsgeniePingHeartbeatOperator,
)

with DAG("op_keeps", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    name = "{{ dag.dag_id }}-hb"
    ensure = OpsgenieEnsureHeartbeatOperator(task_id="ensure", name=name, interval=25, interval_unit="hours")
    ensure >> OpsgeniePingHeartbeatOperator(task_id="ping", name=name)
"""


def test_a_heartbeat_operators_keep_is_never_pruned(
    tmp_path: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    """A DAG that moved from the notifier to the ensure and ping operators, under the same name."""
    folder = tagged_folder(tmp_path, "op_other")
    (folder / "op_keeps.py").write_text(
        NOTIFIED.format(dag_id="op_keeps", schedule="@daily", args='name="op_keeps-hb"')
    )
    sync_cli(folder)
    (folder / "op_keeps.py").write_text(OPERATORS_KEEP)
    out = sync_cli(folder, "--prune")
    line = next(line for line in out.splitlines() if "op_keeps-hb" in line)
    assert "task ensure of DAG op_keeps uses it (an operator sync does not manage): never pruned" in line
    assert "op_keeps-hb" in opsgenie_heartbeat_conn.heartbeats()
    # A name that needs a run to render could be any heartbeat: nothing is pruned.
    (folder / "op_keeps.py").write_text(OPERATORS_KEEP.replace('"{{ dag.dag_id }}-hb"', '"{{ ds }}-hb"'))
    out = sync_cli(folder, "--prune", expect_exit=1)
    assert "Prune refused" in out
    assert "task ensure names its heartbeat '{{ ds }}-hb', which needs a run to render" in out
    assert "op_keeps-hb" in opsgenie_heartbeat_conn.heartbeats()
    # Mapped over names: they are known only when it runs.
    mapped = OPERATORS_KEEP.replace(
        'ensure >> OpsgeniePingHeartbeatOperator(task_id="ping", name=name)',
        'ensure >> OpsgeniePingHeartbeatOperator.partial(task_id="ping").expand(name=["a", "b"])',
    )
    (folder / "op_keeps.py").write_text(mapped)
    out = sync_cli(folder, "--prune", expect_exit=1)
    assert "task ping names its heartbeats only when it runs" in out
    assert "op_keeps-hb" in opsgenie_heartbeat_conn.heartbeats()


def test_a_host_with_the_listener_off_never_prunes_the_listeners_heartbeats(
    tmp_path: Path,
    sync_cli: Callable[..., str],
    opsgenie_heartbeat_conn: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tagged_folder(tmp_path, "heard_export", name="heard")
    (folder / "notified.py").write_text(NOTIFIED.format(dag_id="heard_notified", schedule="@daily", args=""))
    sync_cli(folder)  # on a host with the listener on: the tagged DAG's heartbeat is the listener's
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__LISTENER_ENABLED", "false")
    out = sync_cli(folder, "--prune")
    line = next(line for line in out.splitlines() if "heard_export" in line)
    assert "orphaned" in line
    assert "the listener declared it (name template '{{ dag.dag_id }}')" in line
    assert "here sync runs with the listener off: never pruned here" in line
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__LISTENER_ENABLED", "true")
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__NAME_TEMPLATE", "prod-{{ dag.dag_id }}")
    out = sync_cli(folder, "--prune")
    assert "never pruned here" in next(line for line in out.splitlines() if line.split()[1:2] == ["heard_export"])
    assert set(opsgenie_heartbeat_conn.heartbeats()) == {"heard_export", "heard_notified", "prod-heard_export"}
    # A delete that fails keeps what the record said of the name: still the listener's.
    (folder / "heard_export.py").unlink()
    opsgenie_heartbeat_conn.set_faults({"kind": "status", "status": 400, "endpoint": "delete", "times": 1})
    monkeypatch.delenv("AIRFLOW__OPSGENIE_HEARTBEAT__NAME_TEMPLATE")
    assert "1 failed" in sync_cli(folder, "--prune", expect_exit=1)
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__LISTENER_ENABLED", "false")
    out = sync_cli(folder, "--prune")
    assert "never pruned here" in next(line for line in out.splitlines() if line.split()[1:2] == ["heard_export"])
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__LISTENER_ENABLED", "true")
    (folder / "heard_export.py").write_text(TAGGED.format(dag_id="heard_export"))
    # The same settings as the sync that saw it declared (written another way): a retired tagged DAG's
    # heartbeat is pruned.
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__NAME_TEMPLATE", "{{dag_id}}")
    (folder / "heard_export.py").unlink()
    assert "1 deleted" in sync_cli(folder, "--prune")
    assert set(opsgenie_heartbeat_conn.heartbeats()) == {"heard_notified", "prod-heard_export"}


def test_two_deployments_on_one_account_never_prune_each_other(
    tmp_path: Path,
    sync_cli: Callable[..., str],
    opsgenie_heartbeat_conn: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__DEPLOYMENT", "prod-eu")
    sync_cli(tagged_folder(tmp_path, "eu_export", name="eu"))
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__DEPLOYMENT", "prod-us")
    us = tagged_folder(tmp_path, "us_export", "us_report", name="us")
    sync_cli(us)
    (us / "us_report.py").unlink()
    out = sync_cli(us, "--prune")
    assert "1 deleted" in out
    stored = opsgenie_heartbeat_conn.heartbeats()
    assert set(stored) == {"eu_export", "us_export"}
    assert stored["eu_export"]["alertTags"] == ["managed-by-airflow:prod-eu"]
    assert stored["us_export"]["alertTags"] == ["managed-by-airflow:prod-us"]


def test_a_heartbeat_made_by_hand_is_a_conflict_unless_adopted_and_keeps_its_tags(
    tmp_path: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook
    from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

    OpsgenieHeartbeatHook().create_heartbeat(
        name="export", interval=2, interval_unit="days", alert_tags=["team-data", "sev2"]
    )
    folder = tagged_folder(tmp_path, "export")
    out = sync_cli(folder, expect_exit=1)
    assert "? export" in out
    assert "not managed by deployment 'default' (no marker): left unchanged; --adopt to manage it" in out
    assert opsgenie_heartbeat_conn.heartbeats()["export"]["alertTags"] == ["team-data", "sev2"]

    sync_cli(folder, "--adopt")
    adopted = opsgenie_heartbeat_conn.heartbeats()["export"]
    assert adopted["alertTags"] == ["team-data", "sev2", MARKER]
    assert adopted["interval"] == 25

    # The callback's ensure, and a second sync, agree with it: nothing changes.
    before = len(writes(opsgenie_heartbeat_conn))
    notifier = send_opsgenie_heartbeat(ensure=True)
    notifier({"dag": DAG("export", start_date=DAG_START, schedule="@daily"), "run_id": "scheduled__1"})
    out = sync_cli(folder)
    assert "Plan: 0 to create, 0 to update, 1 unchanged." in out
    assert [w for w in writes(opsgenie_heartbeat_conn)[before:] if w[0] != "ping"] == []
    assert opsgenie_heartbeat_conn.heartbeats()["export"]["alertTags"] == ["team-data", "sev2", MARKER]


def test_a_heartbeat_the_callback_created_is_managed_and_sync_agrees(
    tmp_path: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

    send_opsgenie_heartbeat(ensure=True, alert_tags=["etl"])(
        {"dag": DAG("export", start_date=DAG_START, schedule="@daily")}
    )
    assert opsgenie_heartbeat_conn.heartbeats()["export"]["alertTags"] == ["etl", MARKER]
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "export.py").write_text(
        TAGGED.format(dag_id="export")
        .replace('tags=["opsgenie-heartbeat"]', 'on_success_callback=send_opsgenie_heartbeat(alert_tags=["etl"])')
        .replace(
            "from airflow.providers.common.compat.sdk import DAG, task",
            "from airflow.providers.common.compat.sdk import DAG, task\n"
            "from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat",
        )
    )
    assert "Plan: 0 to create, 0 to update, 1 unchanged." in sync_cli(folder)


def test_a_maintenance_window_survives_sync(
    tmp_path: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    folder = tagged_folder(tmp_path, "export")
    sync_cli(folder)
    OpsgenieHeartbeatHook().disable_heartbeat("export")
    out = sync_cli(folder)
    assert "disabled (left alone)" in out
    assert opsgenie_heartbeat_conn.heartbeats()["export"]["enabled"] is False


def test_the_marker_of_earlier_releases_is_upgraded_when_declared_and_never_pruned(
    tmp_path: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    legacy = "managed-by-airflow-heartbeat-sync"
    for name in ("export", "retired"):
        OpsgenieHeartbeatHook().create_heartbeat(name=name, interval=25, interval_unit="hours", alert_tags=[legacy])
    out = sync_cli(tagged_folder(tmp_path, "export"), "--prune")
    assert "never pruned" in out
    stored = opsgenie_heartbeat_conn.heartbeats()
    assert stored["export"]["alertTags"] == [MARKER]
    assert stored["retired"]["alertTags"] == [legacy]


def test_paused_dags_have_their_heartbeats_disabled_and_enabled_again(
    sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle, airflow_cli: Callable[..., None]
) -> None:
    """Pause states set through Airflow's own CLI commands (run in this process) and read from its metadata database."""
    from conftest import DAGS_FOLDER

    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    folder = tagged_folder(DAGS_FOLDER, "paused_export", "paused_report", name="paused_case")
    airflow_cli("dags", "reserialize")
    airflow_cli("dags", "unpause", "--treat-dag-id-as-regex", "--yes", "^paused_")  # DAGs start paused
    sync_cli(folder, "--paused", "disable")
    OpsgenieHeartbeatHook().disable_heartbeat("paused_report")  # a maintenance window, by hand
    airflow_cli("dags", "pause", "paused_export")
    out = sync_cli(folder, "--paused", "disable")
    assert "disabled: its DAG is paused" in out
    stored = opsgenie_heartbeat_conn.heartbeats()
    assert stored["paused_export"]["enabled"] is False
    assert stored["paused_report"]["enabled"] is False
    airflow_cli("dags", "unpause", "paused_export")
    out = sync_cli(folder, "--paused", "disable")
    assert "enabled again: its DAG is no longer paused" in out
    stored = opsgenie_heartbeat_conn.heartbeats()
    assert stored["paused_export"]["enabled"] is True
    assert stored["paused_export"]["alertTags"] == [MARKER]
    assert stored["paused_report"]["enabled"] is False  # disabled by hand: not sync's to undo


@pytest.mark.skipif(
    Version("3") <= AIRFLOW_VERSION,
    reason="from Airflow 3 a task reads pause states through the API server (tests/e2e)",
)
def test_on_airflow_2_the_sync_operator_reads_pause_states_from_the_database(
    run_dag: Callable[..., Any], opsgenie_heartbeat_conn: EmulatorHandle, airflow_cli: Callable[..., None]
) -> None:
    from conftest import DAGS_FOLDER

    folder = tagged_folder(DAGS_FOLDER, "op_paused_export", "op_paused_report", name="op_paused_case")
    airflow_cli("dags", "reserialize")
    airflow_cli("dags", "unpause", "op_paused_report")
    airflow_cli("dags", "pause", "op_paused_export")
    source = f"""
import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow_provider_opsgenie_hb.operators.heartbeat import OpsgenieSyncHeartbeatsOperator

with DAG("op_paused_sync", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    OpsgenieSyncHeartbeatsOperator(task_id="sync", dags_folder={str(folder)!r}, paused="disable")
"""
    assert run_dag(source, "op_paused_sync").state == "success"
    stored = opsgenie_heartbeat_conn.heartbeats()
    assert stored["op_paused_export"]["enabled"] is False
    assert "paused-in-airflow:default" in stored["op_paused_export"]["alertTags"]
    assert stored["op_paused_report"]["enabled"] is True


NOTIFIED = """
import pendulum
from airflow.providers.common.compat.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

with DAG("{dag_id}", schedule="{schedule}", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         on_success_callback=send_opsgenie_heartbeat({args})):
    @task
    def work():
        return 1

    work()
"""


def test_a_name_declared_on_another_connection_is_never_an_orphan(
    tmp_path: Path,
    sync_cli: Callable[..., str],
    opsgenie_heartbeat_conn: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OPSGENIE_ALIAS", opsgenie_heartbeat_conn.connection_json())  # same account
    folder = tagged_folder(tmp_path, "tagged_a")
    alias = NOTIFIED.format(dag_id="alias_dag", schedule="@daily", args='opsgenie_heartbeat_conn_id="opsgenie_alias"')
    (folder / "alias_dag.py").write_text(alias)
    sync_cli(folder, "--conn-id", "opsgenie_alias")
    out = sync_cli(folder, "--prune")
    assert "alias_dag" not in out  # neither orphaned nor deleted
    assert set(opsgenie_heartbeat_conn.heartbeats()) == {"tagged_a", "alias_dag"}


def test_one_heartbeat_that_cannot_be_brought_in_line_does_not_stop_the_others(
    tmp_path: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    tags = [f"t{i}" for i in range(20)]
    OpsgenieHeartbeatHook().create_heartbeat(name="crowded", interval=1, interval_unit="days", alert_tags=tags)
    folder = tagged_folder(tmp_path, "crowded", "new_one")
    out = sync_cli(folder, "--adopt", "--dry-run", expect_exit=1)  # the dry run says what the run will do
    assert "! crowded" in out
    out = sync_cli(folder, "--adopt", expect_exit=1)
    assert "alert_tags must have at most 20 tags" in out
    stored = opsgenie_heartbeat_conn.heartbeats()
    assert stored["crowded"]["alertTags"] == tags
    assert "new_one" in stored


def test_a_name_two_dags_declare_with_other_settings_names_both(
    tmp_path: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    for dag_id, schedule in (("dup1", "@daily"), ("dup2", "@hourly")):
        (folder / f"{dag_id}.py").write_text(NOTIFIED.format(dag_id=dag_id, schedule=schedule, args='name="shared"'))
    out = sync_cli(folder, expect_exit=1)
    assert "DAG dup1 declares 'shared' too, with other settings" in out
    assert "! shared" in out


@pytest.mark.skipif(Version("3.2") > AIRFLOW_VERSION, reason="Airflow adds provider CLI commands from 3.2 on")
def test_airflow_opsgenie_heartbeat_sync_is_airflows_own_command(
    tmp_path: Path, airflow_db: str, opsgenie_heartbeat_conn: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``airflow opsgenie-heartbeat sync``: the console script's options, Airflow's config (the DAG folder)."""
    folder = tagged_folder(tmp_path, "export")
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))

    def airflow(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(Path(sys.executable).parent / "airflow"), "opsgenie-heartbeat", *args]
        return subprocess.run(command, env={**os.environ}, capture_output=True, text=True, timeout=300, check=False)

    planned = airflow("sync", "--dry-run")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "+ export" in planned.stdout
    assert "Dry run: nothing was changed." in planned.stdout
    assert opsgenie_heartbeat_conn.heartbeats() == {}
    applied = airflow("sync", "--dags-folder", str(folder))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "managed-by-airflow:default" in opsgenie_heartbeat_conn.heartbeats()["export"]["alertTags"]
    missing = airflow("sync", "--conn-id", "no_such_conn")
    assert missing.returncode == 2
    assert "error: connection 'no_such_conn' does not exist" in missing.stderr
    healthy = airflow("status", "-o", "plain")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "export" in healthy.stdout
    assert "ok" in healthy.stdout
    assert "migrate" in airflow("--help").stdout


def test_status_shows_each_heartbeat_and_the_scheduled_dags_nothing_watches(
    tmp_path: Path, provider_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    folder = tagged_folder(tmp_path, "export")
    untagged = TAGGED.replace('tags=["opsgenie-heartbeat"]', "tags=[]")
    (folder / "forgotten.py").write_text(untagged.format(dag_id="forgotten"))
    (folder / "by_hand.py").write_text(untagged.format(dag_id="by_hand").replace('"@daily"', "None"))

    def status() -> dict[str, Any]:
        command = [str(Path(sys.executable).parent / "opsgenie-heartbeat"), "status", "--dags-folder", str(folder)]
        done = subprocess.run([*command, "-o", "json"], capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 1, done.stdout + done.stderr  # something is always wrong below
        report: dict[str, Any] = json.loads(done.stdout)  # nothing but the JSON on stdout
        return report

    before = status()
    assert [(row["name"], row["state"], row["in_opsgenie"]) for row in before["heartbeats"]] == [
        ("export", "missing", False)
    ]
    assert before["unwatched_dags"] == ["forgotten"]  # scheduled and unwatched; a manual DAG is not
    provider_cli("sync", "--dags-folder", str(folder))
    (row,) = status()["heartbeats"]
    assert (row["state"], row["in_opsgenie"], row["drift"]) == ("ok", True, [])
    opsgenie_heartbeat_conn.advance(26 * 3600)  # no run for longer than the interval (25 hours)
    (row,) = status()["heartbeats"]
    assert (row["state"], row["expired"]) == ("expired", True)
    (folder / "forgotten.py").unlink()
    table = provider_cli("status", "--dags-folder", str(folder), expect_exit=1)  # still expired
    assert "export" in table
    assert "expired" in table
    assert "forgotten" not in table


def test_a_folder_whose_dags_name_another_connection_says_which(
    tmp_path: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    callback = 'on_success_callback=send_opsgenie_heartbeat(opsgenie_heartbeat_conn_id="prod_og")'
    source = TAGGED.replace('tags=["opsgenie-heartbeat"]', callback).replace(
        "from airflow.providers.common.compat.sdk import DAG, task",
        "from airflow.providers.common.compat.sdk import DAG, task\n"
        "from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat",
    )
    (folder / "typo.py").write_text(source.format(dag_id="typo"))
    out = sync_cli(folder, "--dry-run", expect_exit=1)
    assert "no DAG declares a heartbeat on connection 'opsgenie_heartbeat_default'" in out
    assert "the DAGs name 'prod_og' (not defined)" in out
    assert opsgenie_heartbeat_conn.requests() == [] or all(
        r["method"] == "GET" for r in opsgenie_heartbeat_conn.requests()
    )


def test_a_wrong_key_says_what_to_do(
    tmp_path: Path,
    provider_cli: Callable[..., str],
    opsgenie_heartbeat_conn: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", opsgenie_heartbeat_conn.connection_json(api_key="WRONG-KEY-7f3a")
    )
    out = provider_cli("sync", "--dags-folder", str(tagged_folder(tmp_path, "export")), expect_exit=1)
    assert "HTTP 401" in out
    assert "What to do: check the API key in the connection" in out
    assert "WRONG-KEY-7f3a" not in out  # the key itself is never shown


TASK_LEVEL = """
import pendulum
from airflow.providers.common.compat.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

hb = send_opsgenie_heartbeat(name="task-level-{{ dag.dag_id }}", interval=2, interval_unit="hours")

with DAG("task_level", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task(on_success_callback=hb)
    def first():
        return 1

    @task(on_success_callback=[hb])
    def second():
        return 2

    @task(on_success_callback=send_opsgenie_heartbeat(name="never-pinged"))  # downstream tasks follow it
    def before():
        return 0

    before() >> first() >> second()
"""


def test_a_task_level_notifier_is_declared_so_sync_never_prunes_its_heartbeat(
    tmp_path: Path, sync_cli: Callable[..., str], opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    """A notifier on a task (it runs on the worker) declares its heartbeat as a DAG's does: sync creates it
    once, and --prune leaves it alone, as the page lists it as declared, not orphaned. One on a task that
    other tasks follow never pings: sync does not create it (it would alert though every run succeeds)."""
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "task_level.py").write_text(TASK_LEVEL)
    assert "Plan: 1 to create, 0 to update, 0 unchanged." in sync_cli(folder)
    assert (opsgenie_heartbeat_conn.heartbeats()["task-level-task_level"]["interval"]) == 2
    assert "Plan: 0 to create, 0 to update, 1 unchanged." in sync_cli(folder, "--prune")
    assert "task-level-task_level" in opsgenie_heartbeat_conn.heartbeats()
    assert "never-pinged" not in opsgenie_heartbeat_conn.heartbeats()
