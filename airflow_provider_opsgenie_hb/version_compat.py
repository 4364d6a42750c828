"""Every difference between the Airflow versions this provider supports, in one module: nothing else probes versions.

Names that ``apache-airflow-providers-common-compat`` already covers are imported from
there where they are used; what it does not cover lives here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag


def dag_bag(dag_folder: str) -> DagBag:
    """Airflow's DagBag of ``dag_folder`` (in ``airflow.dag_processing`` from 3.2, ``airflow.models`` before)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef,attr-defined,unused-ignore]
    return DagBag(dag_folder=dag_folder)


def _connection_type(conn_type: str) -> dict[str, Any]:
    from airflow_provider_opsgenie_hb import get_provider_info

    return next(c for c in get_provider_info()["connection-types"] if c["connection-type"] == conn_type)


def connection_form_widgets(hook_class: Any) -> dict[str, Any]:
    """The connection form's extra fields for Airflow < 3.2, from the ``conn-fields`` metadata that 3.2+ reads.

    Airflow 3.0 and 3.1 call the hook's ``get_connection_form_widgets()`` (with WTForms
    stand-ins in the API server); 3.2+ reads the metadata and no longer calls it.
    """
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import StringField
    from wtforms.validators import Optional, any_of

    widgets: dict[str, Any] = {}
    for name, field in _connection_type(hook_class.conn_type)["conn-fields"].items():
        allowed = [v for v in field["schema"].get("enum", []) if v is not None]
        validators = [Optional(), *([any_of(allowed)] if allowed else [])]
        widgets[name] = StringField(
            lazy_gettext(field["label"]),
            widget=BS3TextFieldWidget(),
            validators=validators,
            description=field.get("description", ""),
        )
    return widgets


def connection_field_behaviour(hook_class: Any) -> dict[str, Any]:
    """The connection form's standard fields for Airflow < 3.2, from the ``ui-field-behaviour`` metadata."""
    behaviour = _connection_type(hook_class.conn_type)["ui-field-behaviour"]
    return {key.replace("-", "_"): value for key, value in behaviour.items()}


HookClass = TypeVar("HookClass", bound=type)


def with_legacy_connection_form(hook_class: HookClass) -> HookClass:
    """Give a hook class the connection form methods Airflow 3.0 and 3.1 call (3.2+ reads the metadata).

    They are set on the class itself: Airflow looks in each hook class's own ``__dict__``, not its bases.
    """
    setattr(hook_class, "get_connection_form_widgets", classmethod(connection_form_widgets))  # noqa: B010
    setattr(hook_class, "get_ui_field_behaviour", classmethod(connection_field_behaviour))  # noqa: B010
    return hook_class


def template_env_dag(dag: Any) -> Any:
    """The DAG to build a template environment from: ``dag.test()`` hands DAG-level callbacks the
    scheduler's serialized DAG, which has no ``get_template_env`` (Airflow's default one is used then)."""
    return dag if hasattr(dag, "get_template_env") else None


def ui_plugins_supported() -> bool:
    """Whether this Airflow shows plugins' views (3.1 and later; 3.0 has no ``external_views``)."""
    from airflow.providers.common.compat.sdk import AirflowPlugin

    return hasattr(AirflowPlugin, "external_views")


def tasks_read_the_database() -> bool:
    """Whether a task may read Airflow's metadata database (Airflow 2; from 3.0 tasks talk to the API server)."""
    import airflow

    return int(airflow.__version__.split(".", 1)[0]) < 3


def core_timetable(timetable: Any) -> Any:
    """The scheduler-side timetable of ``timetable``: converted from the Task SDK's on Airflow 3.2+, itself before."""
    try:
        # Airflow 3.2+: DAG files hold Task-SDK timetables, which the scheduler converts by
        # serializing them. Before 3.2 DAGs hold scheduler-side timetables already.
        from airflow.serialization.encoders import coerce_to_core_timetable
    except ImportError:
        return timetable
    return coerce_to_core_timetable(timetable)


def events_timetable_from_fields(timetable: Any) -> Any | None:
    """A Task-SDK EventsTimetable rebuilt scheduler-side from its fields, as Airflow 3.3 fails to (None: not one)."""
    # Airflow 3.3's decoder reads a ``_summary`` that its encoder for the Task-SDK
    # EventsTimetable does not write: build the scheduler-side one from its fields.
    if type(timetable).__name__ != "EventsTimetable" or not hasattr(timetable, "event_dates"):
        return None
    from airflow.timetables.events import EventsTimetable

    return EventsTimetable(
        event_dates=list(timetable.event_dates),
        restrict_to_events=timetable.restrict_to_events,
        description=timetable.description,
    )


def timetable_encoder() -> Any:
    """Airflow's ``encode_timetable``: in ``encoders`` from 3.2, ``serialized_objects`` before (None: neither)."""
    import importlib

    for module in ("airflow.serialization.encoders", "airflow.serialization.serialized_objects"):
        try:
            encode = getattr(importlib.import_module(module), "encode_timetable", None)
        except ImportError:
            continue
        if encode is not None:
            return encode
    return None


def cron_timetable_parts(core: Any) -> Any:
    """A MultipleCronTriggerTimetable's crons: ``_timetables`` up to 3.3 at least, ``timetables`` if later renamed."""
    return getattr(core, "_timetables", None) or getattr(core, "timetables", None)


def trigger_timetable_class(name: str) -> Any:
    """The trigger timetable class ``name`` DAG files use: the Task SDK's from Airflow 3.2, the scheduler's before."""
    import importlib

    try:
        module = importlib.import_module("airflow.sdk.definitions.timetables.trigger")
    except ImportError:
        module = importlib.import_module("airflow.timetables.trigger")
    return getattr(module, name)


def _in_task_sdk_process() -> bool:
    """Whether this process talks to Airflow through a supervisor (a task, or a DAG processor's callback)."""
    import sys

    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None) is not None


def get_variable(key: str) -> str | None:
    """An Airflow Variable's value, None when there is none, through the API this process may use:
    the Task SDK in tasks and DAG processor callbacks, the metadata database elsewhere."""
    if _in_task_sdk_process():
        from airflow.sdk import Variable

        return Variable.get(key, default=None)  # type: ignore[no-any-return]
    from airflow.models import Variable as VariableModel

    return VariableModel.get(key, default_var=None)  # type: ignore[no-any-return]


def set_variable(key: str, value: str, description: str) -> None:
    """Write an Airflow Variable, through the same API as :func:`get_variable`."""
    if _in_task_sdk_process():
        from airflow.sdk import Variable

        Variable.set(key, value, description=description)
        return
    from airflow.models import Variable as VariableModel

    VariableModel.set(key, value, description=description)
