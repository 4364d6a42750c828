"""The timetable classes a DAG file imports, on every supported Airflow.

Airflow 3.2 moved them to the Task SDK (``from airflow.sdk import CronTriggerTimetable``);
before 3.2 DAG files use the scheduler's own classes from ``airflow.timetables``.
"""

from __future__ import annotations

from typing import Any

try:
    from airflow.sdk import (
        AssetOrTimeSchedule,
        CronDataIntervalTimetable,
        CronTriggerTimetable,
        DeltaDataIntervalTimetable,
        DeltaTriggerTimetable,
        EventsTimetable,
        MultipleCronTriggerTimetable,
    )
except ImportError:  # Airflow < 3.2
    from airflow.timetables.events import EventsTimetable  # type: ignore[no-redef]
    from airflow.timetables.interval import (  # type: ignore[no-redef]
        CronDataIntervalTimetable,
        DeltaDataIntervalTimetable,
    )
    from airflow.timetables.trigger import (  # type: ignore[no-redef]
        CronTriggerTimetable,
        DeltaTriggerTimetable,
    )

    try:
        from airflow.timetables.assets import AssetOrTimeSchedule  # type: ignore[no-redef]
        from airflow.timetables.trigger import MultipleCronTriggerTimetable  # type: ignore[no-redef]
    except ImportError:  # Airflow 2: datasets, and no timetable of several crons
        from airflow.timetables.datasets import (  # type: ignore[no-redef,import-not-found,unused-ignore]
            DatasetOrTimeSchedule as AssetOrTimeSchedule,
        )

        MultipleCronTriggerTimetable = None  # type: ignore[assignment,misc]

try:
    from airflow.sdk import CronPartitionTimetable  # noqa: F401 - Airflow 3.2+: runs per partition

    HAS_PARTITIONS = True
except ImportError:
    HAS_PARTITIONS = False


def asset_or_time(timetable: Any, uri: str = "s3://x") -> Any:
    """``AssetOrTimeSchedule`` of ``timetable`` or an asset (Airflow 2: ``DatasetOrTimeSchedule`` of a dataset)."""
    from airflow.providers.common.compat.sdk import Asset

    if AssetOrTimeSchedule.__name__.startswith("Dataset"):
        return AssetOrTimeSchedule(timetable=timetable, datasets=Asset(uri))
    return AssetOrTimeSchedule(timetable=timetable, assets=Asset(uri))


__all__ = [
    "HAS_PARTITIONS",
    "AssetOrTimeSchedule",
    "CronDataIntervalTimetable",
    "CronTriggerTimetable",
    "DeltaDataIntervalTimetable",
    "DeltaTriggerTimetable",
    "EventsTimetable",
    "MultipleCronTriggerTimetable",
    "asset_or_time",
]

#: The same imports, as source for DAG files that tests write.
DAG_FILE_IMPORTS = """
try:
    from airflow.sdk import CronDataIntervalTimetable, DeltaDataIntervalTimetable, MultipleCronTriggerTimetable
except ImportError:  # Airflow < 3.2
    from airflow.timetables.interval import CronDataIntervalTimetable, DeltaDataIntervalTimetable
    try:
        from airflow.timetables.trigger import MultipleCronTriggerTimetable
    except ImportError:  # Airflow 2
        MultipleCronTriggerTimetable = None
"""
