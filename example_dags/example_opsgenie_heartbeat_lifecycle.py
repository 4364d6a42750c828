"""A heartbeat's whole life, one operator per step.

Ensure it exists (created, or updated to match), read it, ping it, disable it for a
maintenance window so it cannot expire meanwhile, enable it again, ping, and delete it.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_opsgenie_hb.operators.heartbeat import (
    OpsgenieDeleteHeartbeatOperator,
    OpsgenieDisableHeartbeatOperator,
    OpsgenieEnableHeartbeatOperator,
    OpsgenieEnsureHeartbeatOperator,
    OpsgenieGetHeartbeatOperator,
    OpsgeniePingHeartbeatOperator,
)

HEARTBEAT = "{{ dag.dag_id }}"

with DAG(
    dag_id="example_opsgenie_heartbeat_lifecycle",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "opsgenie"],
):
    ensure = OpsgenieEnsureHeartbeatOperator(
        task_id="ensure",
        name=HEARTBEAT,
        interval=2,
        interval_unit="hours",
        description="Managed by the example_opsgenie_heartbeat_lifecycle DAG",
        alert_tags=["airflow", "example"],
        alert_priority="P4",
    )
    read = OpsgenieGetHeartbeatOperator(task_id="read", name=HEARTBEAT)
    first_ping = OpsgeniePingHeartbeatOperator(task_id="first_ping", name=HEARTBEAT)
    disable = OpsgenieDisableHeartbeatOperator(task_id="disable_for_maintenance", name=HEARTBEAT)

    @task
    def maintenance() -> str:
        return "the pipeline is down for maintenance; the heartbeat cannot expire meanwhile"

    enable = OpsgenieEnableHeartbeatOperator(task_id="enable", name=HEARTBEAT)
    second_ping = OpsgeniePingHeartbeatOperator(task_id="second_ping", name=HEARTBEAT)
    retire = OpsgenieDeleteHeartbeatOperator(task_id="delete", name=HEARTBEAT, missing_ok=True)

    ensure >> read >> first_ping >> disable >> maintenance() >> enable >> second_ping >> retire
