"""An instance-wide canary: a tiny DAG every 10 minutes pings the heartbeat "airflow-canary".

DAG-level heartbeats say "this pipeline stopped". When the whole Airflow stops - the
scheduler is down, the metadata database is unreachable, the workers are gone - every
heartbeat expires at its own pace, a daily DAG's only after a day. The canary expires after
20 minutes of silence, whatever the other DAGs' schedules, so an outage pages someone
quickly and with one clear alert.

Each run also syncs the heartbeats that the DAG files declare, with ``paused="disable"``:
pausing a DAG for maintenance silences its heartbeat within 10 minutes, and unpausing it
turns the heartbeat back on. Pause states come from Airflow's REST API (tasks have no
database access) through the ``http`` connection ``airflow_api``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat
from airflow_provider_opsgenie_hb.operators.heartbeat import OpsgenieSyncHeartbeatsOperator

with DAG(
    dag_id="example_opsgenie_heartbeat_canary",
    schedule="*/10 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["example", "opsgenie", "canary"],
):
    # The ping hangs on the task that proves Airflow runs work, not on the whole DAG: a
    # failing sync must not silence the canary.
    @task(
        on_success_callback=send_opsgenie_heartbeat(
            name="airflow-canary",
            ensure=True,  # 10 minutes between runs + 10 minutes of grace = 20 minutes
            description="Airflow itself is alive: the scheduler schedules, the executor runs, callbacks fire.",
            alert_message="Airflow is down: the canary DAG has not succeeded for 20 minutes",
            alert_priority="P1",
            alert_tags=["airflow", "canary"],
        )
    )
    def alive() -> str:
        return "the scheduler scheduled this run and a worker ran it"

    # Pruning stays a deliberate, manual act.
    alive() >> OpsgenieSyncHeartbeatsOperator(task_id="sync_heartbeats", paused="disable")
