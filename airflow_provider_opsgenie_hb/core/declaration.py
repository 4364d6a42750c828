"""What a DAG declares about its heartbeat, in one place below every face that acts on it.

A DAG declares a heartbeat with :class:`~airflow_provider_opsgenie_hb.notifications.heartbeat.OpsgenieHeartbeatNotifier`
in its ``on_success_callback``, or with the tag ``opsgenie-heartbeat`` (the listener). The
notifier, the listener and ``sync`` read the same :class:`HeartbeatDeclaration` and compute
the heartbeat's desired settings with :meth:`HeartbeatDeclaration.desired_fields`, so they
never disagree about a name, a run type or an interval. Nothing here imports a face.
"""

from __future__ import annotations

import datetime
import functools
import logging
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_opsgenie_hb.api.schema import (
    MAX_ALERT_TAG_LENGTH,
    OWNER_MARKER_PREFIX,
    PAUSED_MARKER_PREFIX,
    is_template,
)

log = logging.getLogger(__name__)

DAG_TAG = "opsgenie-heartbeat"
SECTION = "opsgenie_heartbeat"
DEFAULT_CONN_ID = "opsgenie_heartbeat_default"
DEFAULT_NAME_TEMPLATE = "{{ dag.dag_id }}"
RUN_TYPES = ("scheduled", "manual", "asset_triggered", "operator_triggered", "asset_materialization", "backfill")
#: Backfills are left out: an old date succeeding says nothing about whether today's runs happen.
DEFAULT_RUN_TYPES = tuple(t for t in RUN_TYPES if t != "backfill")

#: ``interval="next_run"``: every run sets the interval to the time until the next run.
NEXT_RUN = "next_run"
INTERVAL_MODES = ("longest_gap", NEXT_RUN)

DEFAULT_DEPLOYMENT = "default"
_DEPLOYMENT_CHARS = re.compile(r"[A-Za-z0-9._-]+")

Renderer = Callable[[Any], Any]

log = logging.getLogger(__name__)


def conf_get(key: str, fallback: str) -> str:
    """An option of the ``[opsgenie_heartbeat]`` section of Airflow's configuration."""
    from airflow.providers.common.compat.sdk import conf

    return str(conf.get(SECTION, key, fallback=fallback))


def conf_seconds(key: str, fallback: float) -> float:
    """Seconds (at least 0) from the ``[opsgenie_heartbeat]`` section; ``fallback`` when it is not a number."""
    try:
        return max(0.0, float(conf_get(key, str(fallback))))
    except ValueError:
        log.warning("[%s] %s is not a number: using %s", SECTION, key, fallback)
        return fallback


def _conf_bool(key: str, fallback: bool) -> bool:
    return conf_get(key, str(fallback)).strip().lower() in ("true", "1", "yes", "on")


def _run_types(value: str) -> frozenset[str]:
    listed = frozenset(t.strip() for t in value.split(",") if t.strip())
    unknown = listed - set(RUN_TYPES)
    if unknown:
        raise ValueError(
            f"[{SECTION}] run_types: unknown {sorted(unknown)}; known are {', '.join(RUN_TYPES)} (comma-separated)"
        )
    return listed


@dataclass(frozen=True)
class ListenerSettings:
    """The listener's options, from the ``[opsgenie_heartbeat]`` section."""

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
    """Read the listener's options from Airflow's configuration (each call: options can change)."""
    return ListenerSettings(
        enabled=_conf_bool("listener_enabled", True),
        conn_id=conf_get("conn_id", DEFAULT_CONN_ID),
        name_template=conf_get("name_template", "") or DEFAULT_NAME_TEMPLATE,
        run_types=_run_types(conf_get("run_types", ",".join(DEFAULT_RUN_TYPES))),
        queue_size=int(conf_get("queue_size", "1000")),
        ping_deadline=float(conf_get("ping_deadline_seconds", "10")),
        flush_seconds=float(conf_get("shutdown_flush_seconds", "5")),
        interval_mode=_interval_mode(conf_get("interval_mode", "longest_gap")),
    )


def _interval_mode(value: str) -> str:
    """An unknown mode falls back to ``longest_gap`` (with a warning): a typo must not stop the pings."""
    mode = value.strip().lower()
    if mode not in INTERVAL_MODES:
        log.warning(
            "[%s] interval_mode must be one of %s, got %r: using longest_gap", SECTION, ", ".join(INTERVAL_MODES), value
        )
        return INTERVAL_MODES[0]
    return mode


def deployment() -> str:
    """This Airflow deployment's name, ``[opsgenie_heartbeat] deployment``: whose heartbeats these are.

    Two deployments sharing one OpsGenie account must each set their own, so that neither
    prunes nor takes over the other's heartbeats.
    """
    name = conf_get("deployment", DEFAULT_DEPLOYMENT).strip()
    longest = MAX_ALERT_TAG_LENGTH - max(len(OWNER_MARKER_PREFIX), len(PAUSED_MARKER_PREFIX))
    if not _DEPLOYMENT_CHARS.fullmatch(name) or len(name) > longest:
        raise ValueError(
            f"[{SECTION}] deployment must be 1 to {longest} letters, digits, '.', '_' or '-' "
            f"(it becomes part of an alert tag), got {name!r}"
        )
    return name


def owner_marker(name: str | None = None) -> str:
    """The alert tag that says a heartbeat is managed by this deployment."""
    return OWNER_MARKER_PREFIX + (name or deployment())


def paused_marker(name: str | None = None) -> str:
    """The alert tag that says sync disabled a heartbeat because its DAG is paused in this deployment."""
    return PAUSED_MARKER_PREFIX + (name or deployment())


def render_for_dag(value: Any, dag: Any) -> Any:
    """Render a template that needs only the DAG, not a run: ``{{ dag.dag_id }}`` works, ``{{ ds }}`` fails.

    Used wherever a heartbeat's settings are needed before (or without) a run: sync and the
    listener. ``dag_id`` is available as a shorthand.
    """
    if isinstance(value, (list, tuple)):
        return [render_for_dag(v, dag) for v in value]
    if not is_template(value) or not isinstance(value, str):
        return value
    return _dag_template(value).render(dag=dag, dag_id=dag.dag_id)


@functools.lru_cache(maxsize=256)
def _dag_template(source: str) -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined).from_string(source)


@dataclass(frozen=True)
class HeartbeatSettings:
    """The settings a declaration gives its heartbeat; ``None`` leaves a field to OpsGenie.

    ``interval`` and ``interval_unit`` go together; without them the interval is derived
    from the DAG's schedule, plus ``grace``. ``interval="next_run"`` (no unit) lets every
    run set the interval to the time until the next run, plus ``grace``; the heartbeat is
    created with the derived one. ``enabled=None`` leaves the enabled state alone (a
    heartbeat disabled for a maintenance window stays disabled).
    """

    interval: int | str | None = None
    interval_unit: str | None = None
    grace: datetime.timedelta | None = None
    enabled: bool | None = None
    description: str | None = None
    alert_message: str | None = None
    alert_tags: tuple[str, ...] | None = None
    alert_priority: str | None = None
    owner_team: str | Mapping[str, str] | None = None

    @property
    def follows_next_run(self) -> bool:
        """Runs set the interval (``interval="next_run"``): ensure and sync only create with one."""
        return self.interval == NEXT_RUN


@dataclass(frozen=True)
class HeartbeatDeclaration:
    """One heartbeat a DAG declares: its name (maybe a template), connection, run types and settings."""

    name: str
    conn_id: str = DEFAULT_CONN_ID
    run_types: frozenset[str] = frozenset(DEFAULT_RUN_TYPES)
    settings: HeartbeatSettings = field(default_factory=HeartbeatSettings)
    #: ``callback`` (a notifier) or ``tag`` (the listener's tag)
    origin: str = "callback"

    def pings(self, run_type: str | None) -> bool:
        """Whether a successful run of this type pings (an unknown type does: when in doubt, ping)."""
        return run_type is None or run_type in self.run_types

    def desired_fields(self, dag: Any, *, name: str, render: Renderer | None = None) -> dict[str, Any]:
        """The heartbeat's fields as ensure, sync and the listener want them (snake_case).

        ``name`` is the rendered name; ``render`` renders the templated settings (by default
        with the DAG alone). Raises ``ScheduleIntervalError`` when the interval must be
        derived and the schedule has no rhythm.
        """
        from airflow_provider_opsgenie_hb.core.schedule import interval_for_dag

        render = render or (lambda value: render_for_dag(value, dag))
        given = self.settings
        interval, unit = given.interval, given.interval_unit
        if interval is None or unit is None or given.follows_next_run:
            derived = interval_for_dag(dag, grace=given.grace)
            interval, unit = derived.interval, derived.interval_unit
        tags = render(list(given.alert_tags)) if given.alert_tags is not None else None
        return {
            "name": name,
            "interval": interval,
            "interval_unit": unit,
            "enabled": given.enabled,
            "description": render(given.description),
            "owner_team": given.owner_team,
            "alert_message": render(given.alert_message),
            "alert_tags": list(tags) if tags is not None else None,
            "alert_priority": given.alert_priority,
        }


def tag_declaration(dag: Any, settings: ListenerSettings | None = None) -> HeartbeatDeclaration | None:
    """The heartbeat the listener pings for ``dag``: None unless it is tagged and the listener is on."""
    settings = settings or listener_settings()
    if not settings.enabled or DAG_TAG not in (getattr(dag, "tags", None) or ()):
        return None
    return HeartbeatDeclaration(
        name=settings.name_template,
        conn_id=settings.conn_id,
        run_types=settings.run_types,
        settings=HeartbeatSettings(interval=NEXT_RUN if settings.interval_mode == NEXT_RUN else None),
        origin="tag",
    )


def dag_declarations(dag: Any, settings: ListenerSettings | None = None) -> list[HeartbeatDeclaration]:
    """Every heartbeat ``dag`` declares: its notifiers' (in callback order), then its tag's."""
    callbacks = getattr(dag, "on_success_callback", None) or []
    found = [
        declared
        for callback in (callbacks if isinstance(callbacks, list) else [callbacks])
        if isinstance(declared := getattr(callback, "heartbeat_declaration", None), HeartbeatDeclaration)
    ]
    tagged = tag_declaration(dag, settings)
    return [*found, tagged] if tagged is not None else found


def check_run_types(run_types: Collection[str]) -> str | None:
    """The problem with a ``run_types`` argument, or None."""
    unknown = set(run_types) - set(RUN_TYPES)
    return f"unknown {sorted(unknown)}; known are {', '.join(RUN_TYPES)}" if unknown else None
