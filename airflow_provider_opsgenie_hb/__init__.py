"""OpsGenie heartbeats for Apache Airflow: a dead man's switch for your DAGs."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


# The same timeout extras on both connection types (the hook reads them for either).
_TIMEOUT_FIELDS: dict[str, Any] = {
    "connect_timeout": {"label": "Connect timeout (s)", "schema": {"type": ["number", "null"], "default": 5}},
    "read_timeout": {"label": "Read timeout (s)", "schema": {"type": ["number", "null"], "default": 15}},
    "time_budget": {
        "label": "Time budget per call, retries included (s)",
        "schema": {"type": ["number", "null"], "default": 30},
    },
}


def _option(description: str, kind: str, default: str) -> dict[str, Any]:
    return {"description": description, "version_added": None, "type": kind, "example": None, "default": default}


def get_provider_info() -> dict[str, Any]:
    """What Airflow's ProvidersManager reads (entry point ``apache_airflow_provider``)."""
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
        "config": {
            "opsgenie_heartbeat": {
                "description": "The listener that pings the heartbeat of every DAG tagged opsgenie-heartbeat, "
                "what the success callback remembers between runs, and the Heartbeats page.",
                "options": {
                    "listener_enabled": _option("Ping tagged DAGs' heartbeats on success.", "boolean", "True"),
                    "conn_id": _option("The opsgenie_heartbeat connection.", "string", "opsgenie_heartbeat_default"),
                    "name_template": _option(
                        "Jinja template of the heartbeat name, seeing dag and dag_id, e.g. prod-{{ dag_id }}. "
                        "Empty: the DAG id.",
                        "string",
                        "",
                    ),
                    "interval_mode": _option(
                        "The interval of tagged DAGs' heartbeats: longest_gap (the schedule's longest gap "
                        "plus grace, fixed) or next_run (each run sets it to the time until the next run, "
                        "plus grace, so a missed run alerts within the grace).",
                        "string",
                        "longest_gap",
                    ),
                    "run_types": _option(
                        "Comma-separated kinds of DAG run whose success the listener pings.",
                        "string",
                        "scheduled,manual,asset_triggered,operator_triggered,asset_materialization",
                    ),
                    "queue_size": _option("Pings waiting at most; more are dropped with a warning.", "integer", "1000"),
                    "ping_deadline_seconds": _option("Seconds one ping may take, retries included.", "float", "10"),
                    "shutdown_flush_seconds": _option("Seconds to send queued pings at shutdown.", "float", "5"),
                    "deployment": _option(
                        "This Airflow deployment's name, part of the alert tag managed-by-airflow:<deployment> "
                        "that marks the heartbeats it manages. Deployments sharing one OpsGenie account must "
                        "each set their own.",
                        "string",
                        "default",
                    ),
                    "record_dir": _option(
                        "Where the success callback records heartbeats it has ensured or found to exist. "
                        "Empty: $XDG_CACHE_HOME (or ~/.cache)/airflow-provider-opsgenie-heartbeat.",
                        "string",
                        "",
                    ),
                    "record_ttl_seconds": _option(
                        "How long such a record holds before the callback checks again; 0 checks every run.",
                        "float",
                        "86400",
                    ),
                    "ui_cache_seconds": _option(
                        "How long the Heartbeats page keeps a connection's list of heartbeats (one list call "
                        "per connection) and waits before looking for changed DAG files; 0 reads on every view.",
                        "float",
                        "10",
                    ),
                },
            }
        },
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
