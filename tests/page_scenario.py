"""One deployment as the Heartbeats page sees it: DAG files that declare heartbeats, and OpsGenie's side.

Shared by the page's overview tests and its API server and browser tests, so each checks the
same rows.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from airflow_provider_opsgenie_hb.api.client import HeartbeatClient
from opsgenie_heartbeat_emulator import EmulatorHandle

MARKER = "managed-by-airflow:default"
OTHER_CONN = "page_other_account"

DAG_FILES = {
    "page_dags.py": """
        import pendulum
        from airflow.providers.common.compat.sdk import DAG
        from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

        START = pendulum.datetime(2026, 1, 1, tz="UTC")
        shared = send_opsgenie_heartbeat(name="page-shared", interval=1, interval_unit="days")

        with DAG("page_nightly", schedule="0 3 * * *", start_date=START, on_success_callback=send_opsgenie_heartbeat(
            ensure=True, alert_priority="P2", alert_tags=["team-a"])):
            pass
        with DAG("page_hourly", schedule="@hourly", start_date=START, tags=["opsgenie-heartbeat"]):
            pass
        with DAG("page_declares_missing", schedule="@daily", start_date=START,
                 on_success_callback=send_opsgenie_heartbeat(name="page-missing")):
            pass
        with DAG("page_other_account", schedule="@daily", start_date=START, on_success_callback=send_opsgenie_heartbeat(
            name="page-elsewhere", opsgenie_heartbeat_conn_id="page_other_account")):
            pass
        with DAG("page_shared_a", schedule=None, start_date=START, on_success_callback=shared):
            pass
        with DAG("page_shared_b", schedule=None, start_date=START, on_success_callback=shared):
            pass
        with DAG("page_undeclared", schedule="@daily", start_date=START):
            pass
    """,
    "page_broken.py": "from airflow.providers.common.compat.sdk import DAG\n\nraise RuntimeError('a broken deploy')\n",
}

#: (name, status, DAGs, orphaned, drift) of each row on the default connection, in the page's order
DEFAULT_ROWS = [
    ("page_hourly", "expired", ("page_hourly",), False, False),
    ("page-missing", "missing", ("page_declares_missing",), False, False),
    ("page-elsewhere", "ok", (), False, False),  # declared on the other connection: never an orphan
    ("page-orphan", "ok", (), True, False),
    ("page-shared", "ok", ("page_shared_a", "page_shared_b"), False, False),
    ("page_nightly", "ok", ("page_nightly",), False, True),
    ("hand-made", "disabled", (), False, False),
]


def write_dag_files(folder: Path) -> None:
    for file_name, source in DAG_FILES.items():
        (folder / file_name).write_text(textwrap.dedent(source))


def seed_heartbeats(emulator: EmulatorHandle) -> None:
    """OpsGenie's side: one heartbeat expired, one drifted, one orphaned, one hand-made and disabled."""
    client = HeartbeatClient.opsgenie(emulator.api_key, emulator.url)
    for name, interval, unit, tags in [
        ("page_nightly", 25, "hours", ["team-a", MARKER]),  # declared with priority P2
        ("page_hourly", 2, "hours", [MARKER]),
        ("page-shared", 1, "days", [MARKER]),
        ("page-orphan", 1, "days", [MARKER]),
        ("page-elsewhere", 1, "days", [MARKER]),
    ]:
        client.create_heartbeat(name=name, interval=interval, interval_unit=unit, alert_tags=tags, alert_priority="P3")
        client.ping_heartbeat(name)
    client.create_heartbeat(name="hand-made", interval=10, interval_unit="minutes", enabled=False)
    emulator.advance(3 * 3600)  # past page_hourly's 2 hours
