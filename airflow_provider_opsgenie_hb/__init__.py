"""OpsGenie heartbeats for Apache Airflow: a dead man's switch for your DAGs."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """What Airflow's ProvidersManager reads (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": "airflow-provider-opsgenie-heartbeat",
        "name": "OpsGenie Heartbeat",
        "description": "OpsGenie heartbeats as a dead man's switch for Airflow DAGs: "
        "a DAG that stops succeeding on schedule raises an OpsGenie alert.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "OpsGenie Heartbeat",
                "external-doc-url": "https://docs.opsgenie.com/docs/heartbeat-api",
                "tags": ["service"],
            }
        ],
        "operators": [
            {
                "integration-name": "OpsGenie Heartbeat",
                "python-modules": ["airflow_provider_opsgenie_hb.operators.heartbeat"],
            }
        ],
        "hooks": [
            {
                "integration-name": "OpsGenie Heartbeat",
                "python-modules": ["airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat"],
            }
        ],
        "notifications": ["airflow_provider_opsgenie_hb.notifications.heartbeat.OpsgenieHeartbeatNotifier"],
        "connection-types": [
            {
                "connection-type": "opsgenie_heartbeat",
                "hook-class-name": "airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat.OpsgenieHeartbeatHook",
                "hook-name": "OpsGenie Heartbeat",
                "conn-fields": {
                    "region": {
                        "label": "Region",
                        "description": "us or eu; used when Base URL is empty",
                        "schema": {"type": ["string", "null"], "enum": ["us", "eu", None]},
                    },
                    "connect_timeout": {
                        "label": "Connect timeout (s)",
                        "schema": {"type": ["number", "null"], "default": 5},
                    },
                    "read_timeout": {
                        "label": "Read timeout (s)",
                        "schema": {"type": ["number", "null"], "default": 15},
                    },
                    "time_budget": {
                        "label": "Time budget per call, retries included (s)",
                        "schema": {"type": ["number", "null"], "default": 30},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port", "extra"],
                    "relabeling": {"password": "API key (GenieKey)", "host": "Base URL"},
                    "placeholders": {
                        "host": "empty = https://api.opsgenie.com (or the EU host with region eu)",
                        "password": "the API key of an OpsGenie API or Heartbeat integration",
                    },
                },
            }
        ],
    }
