"""The timetable classes a DAG file imports, on every supported Airflow.

Airflow 3.2 moved them to the Task SDK (``from airflow.sdk import CronTriggerTimetable``);
before 3.2 DAG files use the scheduler's own classes from ``airflow.timetables``.
"""

from __future__ import annotations

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
    from airflow.timetables.assets import AssetOrTimeSchedule  # type: ignore[no-redef]
    from airflow.timetables.events import EventsTimetable  # type: ignore[no-redef]
    from airflow.timetables.interval import (  # type: ignore[no-redef]
        CronDataIntervalTimetable,
        DeltaDataIntervalTimetable,
    )
    from airflow.timetables.trigger import (  # type: ignore[no-redef]
        CronTriggerTimetable,
        DeltaTriggerTimetable,
        MultipleCronTriggerTimetable,
    )

try:
    from airflow.sdk import CronPartitionTimetable  # noqa: F401 - Airflow 3.2+: runs per partition

    HAS_PARTITIONS = True
except ImportError:
    HAS_PARTITIONS = False

__all__ = [
    "HAS_PARTITIONS",
    "AssetOrTimeSchedule",
    "CronDataIntervalTimetable",
    "CronTriggerTimetable",
    "DeltaDataIntervalTimetable",
    "DeltaTriggerTimetable",
    "EventsTimetable",
    "MultipleCronTriggerTimetable",
]

#: The same imports, as source for DAG files that tests write.
DAG_FILE_IMPORTS = """
try:
    from airflow.sdk import CronDataIntervalTimetable, DeltaDataIntervalTimetable, MultipleCronTriggerTimetable
except ImportError:  # Airflow < 3.2
    from airflow.timetables.interval import CronDataIntervalTimetable, DeltaDataIntervalTimetable
    from airflow.timetables.trigger import MultipleCronTriggerTimetable
"""
