"""A scheduled DAG whose every successful run pings its OpsGenie heartbeat.

If a run does not happen (DAG paused, scheduler down, broken deploy) or does not
succeed, no ping arrives and OpsGenie raises the heartbeat's alert once the interval
has passed. ``ensure=True`` creates the heartbeat on the first run, with an interval
derived from the schedule: the longest gap between two runs (24 hours here) plus
grace (one hour), so ``25 hours``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

with DAG(
    dag_id="example_opsgenie_heartbeat_callback",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "opsgenie"],
    on_success_callback=send_opsgenie_heartbeat(
        ensure=True,
        alert_message="Nightly export has not succeeded for 25 hours",
        alert_tags=["airflow", "{{ dag.dag_id }}"],
        alert_priority="P2",
    ),
):

    @task
    def extract() -> int:
        return 42

    @task
    def load(rows: int) -> None:
        print(f"loaded {rows} rows")

    load(extract())
