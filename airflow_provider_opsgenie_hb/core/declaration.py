"""What a DAG declares about its heartbeat, in one place below every face that acts on it.

A DAG declares a heartbeat with a notifier in its ``on_success_callback``, or with the tag
``opsgenie-heartbeat`` (the listener). The notifier, the listener, sync, the ensure operator
and the page read the same :class:`HeartbeatDeclaration` and compute the heartbeat's settings
with :meth:`HeartbeatDeclaration.desired_fields`, so they never disagree about a name, a run
type or an interval. How the interval is set is an explicit policy beside the fields:
:class:`FixedInterval`, :class:`LongestGap` (derived from the schedule) or
:class:`NextRunInterval` (each run sets it to the time until the next run).
"""

from __future__ import annotations

import datetime
import functools
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_opsgenie_hb.api.policy import EnsurePolicy
from airflow_provider_opsgenie_hb.api.schema import (
    CONFIG_FIELDS,
    MAX_ALERT_TAGS,
    TEMPLATED_FIELDS,
    field_problems,
    is_template,
)
from airflow_provider_opsgenie_hb.settings import (
    DEFAULT_CONN_ID,
    DEFAULT_RUN_TYPES,
    RUN_TYPE_ALIASES,
    RUN_TYPES,
    ListenerSettings,
    canonical_run_types,
    listener_settings,
)

DAG_TAG = "opsgenie-heartbeat"
#: ``interval="next_run"``: every run sets the interval to the time until the next run.
NEXT_RUN = "next_run"
#: the fields a declaration may set beside its name and interval
DECLARED_FIELDS = tuple(f for f in CONFIG_FIELDS if f not in ("interval", "interval_unit"))


@dataclass(frozen=True)
class FixedInterval:
    """The interval as given: ``interval`` ``interval_unit``."""

    interval: int
    interval_unit: str


@dataclass(frozen=True)
class LongestGap:
    """The schedule's longest gap between two runs plus ``grace`` (default: one more gap, at most an hour)."""

    grace: datetime.timedelta | None = None


@dataclass(frozen=True)
class NextRunInterval:
    """Each run sets the interval to the time until the next run plus ``grace``; created with the longest gap."""

    grace: datetime.timedelta | None = None


IntervalPolicy = FixedInterval | LongestGap | NextRunInterval


def interval_problems(interval: Any, interval_unit: Any) -> dict[str, str]:
    """``interval`` and ``interval_unit`` together, neither (derived), or ``interval="next_run"`` alone."""
    if interval == NEXT_RUN:
        if interval_unit is not None:
            return {"interval_unit": "must not be given with interval='next_run' (each run sets the interval)"}
        return {}
    if isinstance(interval, str) and not is_template(interval):
        return {"interval": f"must be a whole number (with interval_unit) or 'next_run', got {interval!r}"}
    if (interval is None) != (interval_unit is None):
        return {"interval": "give interval and interval_unit together (or neither, to derive them)"}
    return {}


def interval_policy(interval: Any, interval_unit: Any, grace: datetime.timedelta | None = None) -> IntervalPolicy:
    """The policy a face's ``interval``, ``interval_unit`` and ``grace`` ask for (see :func:`interval_problems`)."""
    if interval == NEXT_RUN:
        return NextRunInterval(grace)
    if interval is None or interval_unit is None:
        return LongestGap(grace)
    return FixedInterval(interval, interval_unit)


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
class HeartbeatDeclaration:
    """One heartbeat a DAG declares: its name (maybe a template), connection, run types, interval policy
    and the other fields (:data:`DECLARED_FIELDS`; absent or ``None`` leaves a field to OpsGenie, and
    ``enabled=None`` leaves a heartbeat disabled for a maintenance window disabled)."""

    name: str
    conn_id: str = DEFAULT_CONN_ID
    run_types: frozenset[str] = frozenset(DEFAULT_RUN_TYPES)
    interval: IntervalPolicy = field(default_factory=LongestGap)
    fields: Mapping[str, Any] = field(default_factory=dict)
    #: the listener's (a tagged DAG's, named by ``[opsgenie_heartbeat] name_template``), not a notifier's
    by_listener: bool = False

    @property
    def follows_next_run(self) -> bool:
        """Runs set the interval (``interval="next_run"``): ensure and sync only create with one."""
        return isinstance(self.interval, NextRunInterval)

    def pings(self, run_type: str | None) -> bool:
        """Whether a successful run of this type pings (an unknown type does: when in doubt, ping)."""
        return run_type is None or run_type in self.run_types

    def ensure_policy(self, marker: str | None, *, adopt: bool = False) -> EnsurePolicy:
        """What ensure may do for this declaration: never compare an interval the runs set."""
        return EnsurePolicy(marker=marker, adopt=adopt, compare_interval=not self.follows_next_run)

    def desired_fields(self, dag: Any, *, name: str, render: Any = None) -> dict[str, Any]:
        """The heartbeat's fields as ensure, sync and the page want them (snake_case).

        ``name`` is the rendered name; ``render`` renders the templated fields (by default with
        the DAG alone). The interval is the one to create with. Raises ``ScheduleIntervalError``
        when the interval must be derived and the schedule has no rhythm.
        """
        from airflow_provider_opsgenie_hb.core.schedule import interval_for_dag

        render = render or (lambda value: render_for_dag(value, dag))
        policy = self.interval
        if isinstance(policy, FixedInterval):
            interval, unit = policy.interval, policy.interval_unit
        else:
            derived = interval_for_dag(dag, grace=policy.grace)
            interval, unit = derived.interval, derived.interval_unit
        declared: dict[str, Any] = {key: self.fields.get(key) for key in DECLARED_FIELDS}
        for key in ("description", "alert_message", "alert_tags"):
            if declared[key] is not None:
                declared[key] = render(list(declared[key]) if key == "alert_tags" else declared[key])
        if declared["alert_tags"] is not None:
            declared["alert_tags"] = list(declared["alert_tags"])
        return {"name": name, "interval": interval, "interval_unit": unit, **declared}


def tag_declaration(dag: Any, settings: ListenerSettings | None = None) -> HeartbeatDeclaration | None:
    """The heartbeat the listener pings for ``dag``: None unless it is tagged and the listener is on."""
    settings = settings or listener_settings()
    if not settings.enabled or DAG_TAG not in (getattr(dag, "tags", None) or ()):
        return None
    return HeartbeatDeclaration(
        name=settings.name_template,
        conn_id=settings.conn_id,
        run_types=settings.run_types,
        interval=NextRunInterval() if settings.interval_mode == NEXT_RUN else LongestGap(),
        by_listener=True,
    )


def dag_declarations(dag: Any, settings: ListenerSettings | None = None) -> list[HeartbeatDeclaration]:
    """Every heartbeat ``dag`` declares: its notifiers' (in callback order), its last tasks' notifiers'
    (a task-level ``on_success_callback``, once each), then its tag's. A notifier on a task with
    downstream tasks never pings (see :func:`task_level_holds_ping`): it declares nothing."""
    found: list[HeartbeatDeclaration] = []
    last_tasks = [t for t in getattr(dag, "tasks", None) or () if not getattr(t, "downstream_task_ids", None)]
    for owner in (dag, *last_tasks):
        callbacks = getattr(owner, "on_success_callback", None) or []
        for callback in callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]:
            declared = getattr(callback, "heartbeat_declaration", None)
            if isinstance(declared, HeartbeatDeclaration) and not any(declared is seen for seen in found):
                found.append(declared)
    tagged = tag_declaration(dag, settings)
    return [*found, tagged] if tagged is not None else found


def check_run_types(run_types: Collection[str]) -> str | None:
    """The problem with a ``run_types`` argument, or None."""
    unknown = canonical_run_types(run_types) - set(RUN_TYPES)
    return f"unknown {sorted(unknown)}; known are {', '.join(RUN_TYPES)}" if unknown else None


def run_types_of(run_types: Collection[str]) -> frozenset[str]:
    """A ``run_types`` argument as a set, with Airflow 2's ``dataset_triggered`` as ``asset_triggered``."""
    return canonical_run_types(run_types)


def run_type_of(dag_run: Any, run_id: str | None = None) -> str | None:
    """The run's type from the DAG run, or from the prefix of a generated run id (None: unknown)."""
    run_type = getattr(dag_run, "run_type", None)
    if run_type is not None:
        value = str(getattr(run_type, "value", run_type))
        return RUN_TYPE_ALIASES.get(value, value)
    run_id = str(run_id or "")
    prefix = run_id.split("__", 1)[0]
    prefix = RUN_TYPE_ALIASES.get(prefix, prefix)
    return prefix if "__" in run_id and prefix in RUN_TYPES else None


def declaration_problems(
    *,
    name: Any,
    conn_id: Any,
    run_types: Any,
    interval: Any,
    interval_unit: Any,
    grace: Any,
    fields: Mapping[str, Any],
    marked: bool = False,
) -> dict[str, str]:
    """Everything wrong with a face's declaring arguments, ``{argument: problem}`` (templates are
    checked for syntax now, for their rules once rendered). One place for the notifier and the ensure
    operator; ``marked``: what it creates carries this deployment's marker, which takes one alert tag."""
    problems = interval_problems(interval, interval_unit)
    if not isinstance(conn_id, str) or not conn_id.strip():
        problems["opsgenie_heartbeat_conn_id"] = f"must name a connection, got {conn_id!r}"
    if isinstance(run_types, str):
        problems["run_types"] = f"must be a list of run types such as ['scheduled'], not the string {run_types!r}"
    elif not run_types:
        problems["run_types"] = "must name at least one run type (an empty list would never ping)"
    elif run_types_problem := check_run_types(run_types):
        problems["run_types"] = run_types_problem
    if grace is not None and (not isinstance(grace, datetime.timedelta) or grace < datetime.timedelta(0)):
        problems["grace"] = f"must be a timedelta >= 0, got {grace!r}"
    checked = {
        "name": name,
        "interval": None if isinstance(interval, str) else interval,
        "interval_unit": interval_unit,
    }
    checked |= fields
    problems |= _template_syntax_problems({key: checked.get(key) for key in ("name", *TEMPLATED_FIELDS)})
    problems |= field_problems({k: v for k, v in checked.items() if not is_template(v)})
    tags = fields.get("alert_tags")
    if marked and "alert_tags" not in problems and isinstance(tags, (list, tuple)) and len(tags) >= MAX_ALERT_TAGS:
        problems["alert_tags"] = (
            f"must have at most {MAX_ALERT_TAGS - 1} tags, got {len(tags)}: one of OpsGenie's {MAX_ALERT_TAGS} "
            "is kept for this deployment's marker"
        )
    return problems


def _template_syntax_problems(fields: Mapping[str, Any]) -> dict[str, str]:
    """Templated fields that Jinja cannot even parse: refused at parse time, not on every run."""
    problems: dict[str, str] = {}
    for key, value in fields.items():
        for text in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(text, str) and is_template(text):
                import jinja2

                try:
                    jinja2.Environment().parse(text)
                except jinja2.TemplateSyntaxError as exc:
                    problems[key] = f"is not a valid template ({exc.message}): {text!r}"
    return problems


MID_RUN_WARNING = (
    "Not pinging OpsGenie heartbeat on the success of task %r: tasks downstream of it still have to run, so it "
    "does not mean the DAG run succeeded. Give the notifier to the DAG's on_success_callback (or to its last "
    "task), not to every task through default_args."
)
FINAL_TASKS_WARNING = (
    "Pinging OpsGenie heartbeat on the success of task %r, one of the %d final tasks of DAG %r: each pings on "
    "its own success, so a run whose other final task fails is pinged all the same. Give the notifier to the "
    "DAG's on_success_callback."
)


def task_level_holds_ping(context: Mapping[str, Any], log: logging.Logger) -> bool:
    """For a task-level callback: whether its task's success is no DAG success yet (then nothing is pinged).

    A task with downstream tasks, while the DAG run still runs, is not the run's success: held, with a
    warning. One of several final tasks pings (when in doubt, ping), with a warning that another final
    task's failure would not hold it back.
    """
    task, dag_run = context.get("task"), context.get("dag_run")
    state = getattr(dag_run, "state", None)
    state = str(getattr(state, "value", state) or "")
    if task is None or state != "running":
        return False
    if getattr(task, "downstream_task_ids", None):
        log.warning(MID_RUN_WARNING, getattr(task, "task_id", "?"))
        return True
    dag = context.get("dag") or getattr(task, "dag", None)
    final = [t for t in getattr(dag, "tasks", None) or () if not getattr(t, "downstream_task_ids", None)]
    if len(final) > 1:
        log.warning(FINAL_TASKS_WARNING, getattr(task, "task_id", "?"), len(final), getattr(dag, "dag_id", "?"))
    return False
