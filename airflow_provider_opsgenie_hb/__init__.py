"""OpsGenie heartbeats for Apache Airflow: a dead man's switch for your DAGs."""

from __future__ import annotations

from typing import Any

from airflow_provider_opsgenie_hb._version import __version__

__all__ = ["__version__", "get_provider_info"]


# The same timeout extras on both connection types (the hook reads them for either).
_TIMEOUT_FIELDS: dict[str, Any] = {
    "connect_timeout": {"label": "Connect timeout (s)", "schema": {"type": ["number", "null"], "default": 5}},
    "read_timeout": {"label": "Read timeout (s)", "schema": {"type": ["number", "null"], "default": 15}},
    "time_budget": {
        "label": "Time budget per call, retries included (s)",
        "schema": {"type": ["number", "null"], "default": 30},
    },
}


def get_provider_info() -> dict[str, Any]:
    """What Airflow's ProvidersManager reads (entry point ``apache_airflow_provider``)."""
    from airflow_provider_opsgenie_hb.settings import provider_config

    return {
        "package-name": "airflow-provider-opsgenie-hb",
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
        # The listener plugin is registered through the ``airflow.plugins`` entry point, not a
        # "plugins" key here: Airflow loads provider-declared plugins only when
        # [core] lazy_discover_providers is False (plugins_manager), i.e. not by default.
        "config": provider_config(),
        # ``airflow opsgenie-heartbeat ...`` on Airflow 3.2+ (earlier versions ignore the key).
        "cli": ["airflow_provider_opsgenie_hb.cli.definition.get_cli_commands"],
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
                    **_TIMEOUT_FIELDS,
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port", "extra"],
                    "relabeling": {"password": "API key (GenieKey)", "host": "Base URL"},
                    "placeholders": {
                        "host": "empty = https://api.opsgenie.com (or the EU host with region eu)",
                        "password": "the API key of an OpsGenie API or Heartbeat integration",
                    },
                },
            },
            {
                "connection-type": "jsm_ops_heartbeat",
                "hook-class-name": "airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat.JsmOpsHeartbeatHook",
                "hook-name": "JSM Operations Heartbeat",
                "conn-fields": {
                    "cloud_id": {"label": "Site cloud id", "schema": {"type": ["string", "null"]}},
                    "team_id": {"label": "Team id", "schema": {"type": ["string", "null"]}},
                    **_TIMEOUT_FIELDS,
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "extra"],
                    "relabeling": {"login": "Account email", "password": "API token", "host": "Base URL"},
                    "placeholders": {"host": "empty = https://api.atlassian.com"},
                },
            },
        ],
    }
