"""The Heartbeats page's registration with Airflow, and how a heartbeat becomes a row.

The registration tests run on every Airflow of the matrix: from 3.1 the plugin brings a nav
entry, a DAG tab and the app behind them; on 3.0, which shows no plugin views, it loads
without them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import AIRFLOW_VERSION
from packaging.version import Version

from airflow_provider_opsgenie_hb.api.schema import Heartbeat
from airflow_provider_opsgenie_hb.core.reconcile import PlanItem
from airflow_provider_opsgenie_hb.plugin import OpsgenieHeartbeatPlugin
from airflow_provider_opsgenie_hb.ui.overview import STATUSES, HeartbeatRow

SHOWS_PLUGIN_VIEWS = Version("3.1") <= AIRFLOW_VERSION


def test_the_plugin_brings_the_page_where_airflow_shows_plugin_views() -> None:
    views = OpsgenieHeartbeatPlugin.external_views
    apps = OpsgenieHeartbeatPlugin.fastapi_apps
    if not SHOWS_PLUGIN_VIEWS:
        assert (views, apps) == ([], [])
        return
    assert [(v["name"], v["destination"], v["href"]) for v in views] == [
        ("Heartbeats", "nav", "/opsgenie-heartbeats/"),
        ("Heartbeat", "dag", "/opsgenie-heartbeats/dags/{DAG_ID}"),
    ]
    assert [app["url_prefix"] for app in apps] == ["/opsgenie-heartbeats"]


def test_airflow_loads_the_plugin_without_error() -> None:
    """``airflow plugins`` lists it with its listener, and with its views only where Airflow has them."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "plugins", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    listed = next(line for line in result.stdout.splitlines() if line.startswith("[{"))  # after any log lines
    plugins = {p["name"]: p for p in json.loads(listed)}
    ours = plugins["opsgenie_heartbeat"]
    assert ours["listeners"] == ["airflow_provider_opsgenie_hb.listeners.heartbeat._Listener"]
    if SHOWS_PLUGIN_VIEWS:
        assert [v["url_route"] for v in ours["external_views"]] == ["opsgenie-heartbeats", "opsgenie-heartbeat"]
        assert [app["app"] for app in ours["fastapi_apps"]] == ["airflow_provider_opsgenie_hb.ui.HeartbeatsApp"]
    else:
        assert not ours.get("external_views")
        assert not ours.get("fastapi_apps")
    assert "Failed to" not in result.stderr


def test_importing_the_plugin_stays_cheap() -> None:
    """Every Airflow process imports the plugin: the page's app, FastAPI and sync come only with a request."""
    code = (
        "import sys, json\n"
        "from airflow.providers.common.compat.sdk import AirflowPlugin, hookimpl\n"
        "before = set(sys.modules)\n"
        "import airflow_provider_opsgenie_hb.plugin\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    added = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(added) <= {
        "airflow_provider_opsgenie_hb",
        "airflow_provider_opsgenie_hb._version",
        "airflow_provider_opsgenie_hb.api",
        "airflow_provider_opsgenie_hb.api.policy",
        "airflow_provider_opsgenie_hb.core",
        "airflow_provider_opsgenie_hb.listeners",
        "airflow_provider_opsgenie_hb.settings",
        "airflow_provider_opsgenie_hb.version_compat",
        "airflow_provider_opsgenie_hb.core.declaration",
        "airflow_provider_opsgenie_hb.api.errors",
        "airflow_provider_opsgenie_hb.api.schema",
        "airflow_provider_opsgenie_hb.plugin",
        "airflow_provider_opsgenie_hb.ui",
        "airflow_provider_opsgenie_hb.listeners.heartbeat",
        "airflow_provider_opsgenie_hb.listeners.presence",  # json and threading: no Airflow, no database
    }, added


def heartbeat(**fields: Any) -> Heartbeat:
    return Heartbeat(**{"name": "hb", "interval": 25, "interval_unit": "hours", "enabled": True, **fields})


def row(hb: Heartbeat | None, declaration: PlanItem | None = None, **fields: Any) -> HeartbeatRow:
    return HeartbeatRow("conn", "OpsGenie", "hb", ("dag",), hb, declaration, **fields)


def declared(action: str, **fields: Any) -> PlanItem:
    return PlanItem(action, "hb", "dag", fields={"name": "hb", "interval": 25, "interval_unit": "hours", **fields})


@pytest.mark.parametrize(
    ("shown", "status"),
    [
        (row(heartbeat(expired=True)), "expired"),
        (row(None, declared("create")), "missing"),
        (row(None, declared("create"), listed=False), "unknown"),
        (row(heartbeat()), "ok"),
        (row(heartbeat(enabled=False, expired=True)), "disabled"),  # a disabled heartbeat cannot alert
    ],
)
def test_status(shown: HeartbeatRow, status: str) -> None:
    assert shown.status == status


def test_expired_heartbeats_come_first() -> None:
    rows = [
        HeartbeatRow("c", "OpsGenie", name, (), hb, declaration)
        for name, hb, declaration in [
            ("a-disabled", heartbeat(enabled=False), None),
            ("b-ok", heartbeat(), None),
            ("c-missing", None, declared("create")),
            ("d-expired", heartbeat(expired=True), None),
            ("A-expired", heartbeat(expired=True), None),
        ]
    ]
    assert [r.name for r in sorted(rows, key=HeartbeatRow.sort_key)] == [
        "A-expired",
        "d-expired",
        "c-missing",
        "b-ok",
        "a-disabled",
    ]
    assert STATUSES[0] == "expired"


@pytest.mark.parametrize(
    ("shown", "allowed"),
    [
        (row(heartbeat(), declared("unchanged"), managed=True), ["ping", "disable"]),
        (row(heartbeat(enabled=False), declared("update"), managed=True), ["ping", "enable", "ensure"]),
        # Declared here, but another deployment's (or made by hand): a DAG here pings it, nothing more.
        (row(heartbeat(), declared("conflict")), ["ping"]),
        (row(heartbeat(), declared("unchanged")), ["ping"]),
        (row(heartbeat(), managed=True), ["ping", "disable"]),
        (row(None, declared("create")), ["ensure"]),
        (row(None, declared("skipped")), []),  # a declaration that could not be built has nothing to ensure
        (row(None, declared("create"), listed=False), []),  # its connection could not be read
        (HeartbeatRow("c", "OpsGenie", "hb", (), heartbeat()), []),  # hand-made, or another deployment's
        (HeartbeatRow("c", "OpsGenie", "hb", (), heartbeat(), orphaned=True, managed=True), ["ping", "disable"]),
    ],
)
def test_allowed_actions(shown: HeartbeatRow, allowed: list[str]) -> None:
    assert [action for action in ("ping", "disable", "enable", "ensure") if shown.allows(action)] == allowed


def test_interval_reads_as_words() -> None:
    assert row(heartbeat(interval=1, interval_unit="hours")).interval == "1 hour"
    assert row(heartbeat(interval=10, interval_unit="minutes")).interval == "10 minutes"
    assert row(None, declared("create", interval=73)).interval == "73 hours"  # declared, as it does not exist


def test_drift_compares_each_declared_field_as_ensure_does() -> None:
    held = heartbeat(alert_priority="P3", alert_tags=("team-a", "managed-by-airflow:default"))
    wanted = declared("update", alert_priority="P1", alert_tags=["team-a"], description=None)
    assert [(d.field, d.declared, d.current, d.differs) for d in row(held, wanted).drift()] == [
        ("interval", 25, 25, False),
        ("interval_unit", "hours", "hours", False),
        ("alert_tags", ["team-a"], ["team-a", "managed-by-airflow:default"], False),  # markers are not drift
        ("alert_priority", "P1", "P3", True),
    ]
    missing = row(None, declared("create"))
    assert all(d.differs and d.current is None for d in missing.drift())


def test_an_interval_the_runs_set_is_not_drift() -> None:
    """interval="next_run": sync leaves the interval to the runs (compare_interval False), and so does the tab."""
    held = heartbeat(interval=1, interval_unit="hours", alert_priority="P3")
    wanted = declared("unchanged", interval=73, alert_priority="P3")
    wanted.runs_set_interval, wanted.compare_interval = True, False  # the policy, beside the fields
    assert [(d.field, d.differs, d.set_by_runs) for d in row(held, wanted).drift()] == [
        ("interval", False, True),  # the tab says "set by each run", not 73 against 1
        ("interval_unit", False, True),
        ("alert_priority", False, False),
    ]
    fixed = declared("update", interval=73, alert_priority="P3")  # a fixed interval: 1 hour is drift
    assert [(d.field, d.set_by_runs) for d in row(held, fixed).drift() if d.differs] == [("interval", False)]
