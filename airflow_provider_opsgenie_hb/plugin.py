"""The Airflow plugin: the only module that puts faces together (the listener and the Heartbeats page).

Registered through the ``airflow.plugins`` entry point. Airflow loads provider-declared plugins
only when ``[core] lazy_discover_providers`` is False, so the entry point is the way that
works by default.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowPlugin

from airflow_provider_opsgenie_hb import ui
from airflow_provider_opsgenie_hb.listeners.heartbeat import heartbeat_listener


class OpsgenieHeartbeatPlugin(AirflowPlugin):
    """Registers the listener and, on Airflow 3.1+, the Heartbeats page and the DAG tab."""

    name = "opsgenie_heartbeat"
    listeners = [heartbeat_listener]
    fastapi_apps = ui.fastapi_apps()
    external_views = ui.external_views()
