"""Every option of the ``[opsgenie_heartbeat]`` section, with its default, stated once.

Options are read on every call (Airflow's configuration can change under a running process,
and tests change it): nothing here caches. The provider's metadata (``get_provider_info``)
lists the same options from :data:`OPTIONS`, so ``airflow config list`` shows them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airflow_provider_opsgenie_hb.api.policy import OWNER_MARKER_PREFIX, PAUSED_MARKER_PREFIX
from airflow_provider_opsgenie_hb.api.schema import MAX_ALERT_TAG_LENGTH

log = logging.getLogger(__name__)

SECTION = "opsgenie_heartbeat"
DEFAULT_CONN_ID = "opsgenie_heartbeat_default"
#: a heartbeat is named after its DAG unless told otherwise
DEFAULT_NAME_TEMPLATE = "{{ dag.dag_id }}"
RUN_TYPES = ("scheduled", "manual", "asset_triggered", "operator_triggered", "asset_materialization", "backfill")
#: Backfills are left out: an old date succeeding says nothing about whether today's runs happen.
DEFAULT_RUN_TYPES = tuple(t for t in RUN_TYPES if t != "backfill")
#: Airflow 2's names of the same run types
RUN_TYPE_ALIASES = {"dataset_triggered": "asset_triggered"}


def canonical_run_types(run_types: Iterable[str]) -> frozenset[str]:
    """``run_types`` with Airflow 2's names (``dataset_triggered``) given as this project's (``asset_triggered``)."""
    return frozenset(RUN_TYPE_ALIASES.get(t, t) for t in run_types)


#: ``longest_gap``: a fixed interval from the schedule; ``next_run``: each run sets it to the next run
INTERVAL_MODES = ("longest_gap", "next_run")
RECORD_STORES = ("directory", "metadata")
DECLARATION_SOURCES = ("auto", "dag_folder", "metadata")
DEFAULT_DEPLOYMENT = "default"
_DEPLOYMENT_CHARS = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Option:
    """One option: its key, type (as Airflow's config docs name it), default and description."""

    key: str
    type: str
    default: str
    description: str


OPTIONS: tuple[Option, ...] = (
    Option("listener_enabled", "boolean", "True", "Ping tagged DAGs' heartbeats on success."),
    Option("conn_id", "string", DEFAULT_CONN_ID, "The opsgenie_heartbeat connection."),
    Option(
        "name_template",
        "string",
        "",
        "Jinja template of the heartbeat name, seeing dag and dag_id, e.g. prod-{{ dag_id }}. Empty: the DAG id.",
    ),
    Option(
        "interval_mode",
        "string",
        "longest_gap",
        "The interval of tagged DAGs' heartbeats: longest_gap (the schedule's longest gap plus grace, fixed) or "
        "next_run (each run sets it to the time until the next run, plus grace, so a missed run alerts within "
        "the grace).",
    ),
    Option(
        "run_types",
        "string",
        ",".join(DEFAULT_RUN_TYPES),
        "Comma-separated kinds of DAG run whose success the listener pings.",
    ),
    Option("queue_size", "integer", "1000", "Pings waiting at most; more are dropped with a warning."),
    Option("ping_deadline_seconds", "float", "10", "Seconds one ping may take, retries included."),
    Option("shutdown_flush_seconds", "float", "5", "Seconds to send queued pings at shutdown."),
    Option(
        "deployment",
        "string",
        DEFAULT_DEPLOYMENT,
        "This Airflow deployment's name, part of the alert tag managed-by-airflow:<deployment> that marks the "
        "heartbeats it manages. Deployments sharing one OpsGenie account must each set their own.",
    ),
    Option(
        "record_dir",
        "string",
        "",
        "Where the success callback records heartbeats it has ensured or found to exist. "
        "Empty: $XDG_CACHE_HOME (or ~/.cache)/airflow-provider-opsgenie-heartbeat.",
    ),
    Option(
        "record_store",
        "string",
        "directory",
        "Where that record lives: directory (record_dir, one per host unless every host mounts it) or metadata "
        "(Airflow Variables in the metadata database, which every component reaches: use it when callbacks run "
        "on several hosts).",
    ),
    Option(
        "record_ttl_seconds",
        "float",
        "86400",
        "How long such a record holds before the callback checks again; 0 checks every run.",
    ),
    Option(
        "ui_cache_seconds",
        "float",
        "10",
        "How long the Heartbeats page keeps a connection's list of heartbeats (one list call per connection) "
        "and waits before looking for changed DAG files; 0 reads on every view.",
    ),
    Option(
        "declarations",
        "string",
        "auto",
        "Where the Heartbeats page reads what the DAGs declare: dag_folder (parses [core] dags_folder in a child "
        "process), metadata (what sync last recorded in the metadata database, for an API server without DAG "
        "files), or auto (dag_folder when it holds Python files, else metadata).",
    ),
)
_DEFAULTS = {option.key: option.default for option in OPTIONS}


def provider_config() -> dict[str, Any]:
    """The section as the provider's metadata declares it (``config`` in ``get_provider_info``)."""
    return {
        SECTION: {
            "description": "The listener that pings the heartbeat of every DAG tagged opsgenie-heartbeat, "
            "what the success callback remembers between runs, and the Heartbeats page.",
            "options": {
                option.key: {
                    "description": option.description,
                    "version_added": None,
                    "type": option.type,
                    "example": None,
                    "default": option.default,
                }
                for option in OPTIONS
            },
        }
    }


def get(key: str) -> str:
    """An option as text (its default when unset)."""
    from airflow.providers.common.compat.sdk import conf

    return str(conf.get(SECTION, key, fallback=_DEFAULTS[key]))


def get_bool(key: str) -> bool:
    return get(key).strip().lower() in ("true", "1", "yes", "on")


def get_seconds(key: str) -> float:
    """Seconds (at least 0); the default, with a warning, when the option is not a number."""
    try:
        return max(0.0, float(get(key)))
    except ValueError:
        log.warning("[%s] %s is not a number: using %s", SECTION, key, _DEFAULTS[key])
        return float(_DEFAULTS[key])


@dataclass(frozen=True)
class ListenerSettings:
    """The listener's options."""

    enabled: bool
    conn_id: str
    name_template: str
    run_types: frozenset[str]
    queue_size: int
    ping_deadline: float
    flush_seconds: float
    #: ``longest_gap`` (a fixed interval) or ``next_run`` (each run sets the interval to the next run)
    interval_mode: str = "longest_gap"


def listener_settings() -> ListenerSettings:
    """The listener's options, read now."""
    return ListenerSettings(
        enabled=get_bool("listener_enabled"),
        conn_id=get("conn_id"),
        name_template=get("name_template") or DEFAULT_NAME_TEMPLATE,
        run_types=run_types(get("run_types")),
        queue_size=int(get("queue_size")),
        ping_deadline=float(get("ping_deadline_seconds")),
        flush_seconds=float(get("shutdown_flush_seconds")),
        interval_mode=interval_mode(get("interval_mode")),
    )


def run_types(value: str) -> frozenset[str]:
    """``run_types`` as a set. Unknown ones are left out with a warning, and with none known left the
    default is used: a typo must not stop the pings."""
    listed = canonical_run_types(t.strip() for t in value.split(",") if t.strip())
    unknown = listed - set(RUN_TYPES)
    if unknown:
        known = listed - unknown
        log.warning(
            "[%s] run_types: unknown %s (known are %s, comma-separated): using %s",
            SECTION,
            sorted(unknown),
            ", ".join(RUN_TYPES),
            ", ".join(sorted(known or DEFAULT_RUN_TYPES)),
        )
        return known or frozenset(DEFAULT_RUN_TYPES)
    return listed


def interval_mode(value: str) -> str:
    """An unknown mode falls back to ``longest_gap`` (with a warning): a typo must not stop the pings."""
    mode = value.strip().lower()
    if mode not in INTERVAL_MODES:
        log.warning(
            "[%s] interval_mode must be one of %s, got %r: using longest_gap", SECTION, ", ".join(INTERVAL_MODES), value
        )
        return INTERVAL_MODES[0]
    return mode


def deployment() -> str:
    """This Airflow deployment's name: whose heartbeats these are.

    Two deployments sharing one OpsGenie account must each set their own, so that neither
    prunes nor takes over the other's heartbeats. Raises ``ValueError`` for a name that cannot
    be part of an alert tag.
    """
    name = get("deployment").strip()
    longest = MAX_ALERT_TAG_LENGTH - max(len(OWNER_MARKER_PREFIX), len(PAUSED_MARKER_PREFIX))
    if not _DEPLOYMENT_CHARS.fullmatch(name) or len(name) > longest:
        raise ValueError(
            f"[{SECTION}] deployment must be 1 to {longest} letters, digits, '.', '_' or '-' "
            f"(it becomes part of an alert tag), got {name!r}"
        )
    return name


def choice(key: str, allowed: tuple[str, ...]) -> str:
    """An option that takes one of ``allowed``; an unknown value falls back to the default, with a warning."""
    value = get(key).strip().lower()
    if value not in allowed:
        log.warning(
            "[%s] %s must be one of %s, got %r: using %s", SECTION, key, ", ".join(allowed), value, _DEFAULTS[key]
        )
        return _DEFAULTS[key]
    return value
