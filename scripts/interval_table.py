"""The README's "Choosing the interval" table, computed by the provider's own schedule code.

``python scripts/interval_table.py`` prints it, between the marker comments that enclose it
in README.md; a test (``tests/unit/test_schedule.py``) fails when the two differ.
"""

from __future__ import annotations

import datetime
import importlib
from typing import Any

from airflow_provider_opsgenie_hb.core.schedule import default_grace, interval_for_gap, longest_gap
from airflow_provider_opsgenie_hb.version_compat import trigger_timetable_class

#: The README's "Choosing the interval" rows: (schedule as written in a DAG, time zone, note).
README_EXAMPLES: list[tuple[str, str, str]] = [
    ("@hourly", "UTC", ""),
    ("*/5 * * * *", "UTC", ""),
    ("*/5 * * * *", "Europe/Berlin", "every hour: Airflow runs it on elapsed time across DST"),
    ("0 * * * *", "America/New_York", "every hour: elapsed time"),
    ("0 3 * * *", "UTC", ""),
    ("0 3 * * *", "Europe/Berlin", "the autumn DST night is 25 hours long"),
    ("0 3 * * 1-5", "UTC", "the weekend"),
    ("@weekly", "UTC", ""),
    ("@monthly", "UTC", "the longest month"),
    ("@yearly", "UTC", "a leap year"),
    ("0 0 29 2 *", "UTC", "leap day to leap day"),
    ("MultipleCronTriggerTimetable('0 3 * * *', '0 15 * * *')", "Europe/Berlin", "15:00 to 03:00, autumn DST night"),
    ("timedelta(minutes=90)", "UTC", ""),
    ("relativedelta(months=1)", "UTC", "the longest month"),
]

README_START = "<!-- interval-table:start (generated: python scripts/interval_table.py) -->"
README_END = "<!-- interval-table:end -->"
#: The table's look-ahead starts here, so that it does not change from day to day.
README_NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def example_timetable(schedule: str, zone: str) -> Any:
    """The timetable a DAG file gets for ``schedule`` as written in the table, in ``zone``."""
    from airflow.sdk import DAG

    if schedule.startswith("MultipleCronTriggerTimetable("):
        crons = [part.strip(" '") for part in schedule[len("MultipleCronTriggerTimetable(") : -1].split(",")]
        return trigger_timetable_class("MultipleCronTriggerTimetable")(*crons, timezone=zone)
    if schedule.startswith(("timedelta(", "relativedelta(")):
        name, _, args = schedule[:-1].partition("(")
        unit, _, amount = args.partition("=")
        factory: Any = (
            datetime.timedelta
            if name == "timedelta"
            else importlib.import_module("dateutil.relativedelta").relativedelta
        )
        return DAG("example", schedule=factory(**{unit: int(amount)})).timetable
    return trigger_timetable_class("CronTriggerTimetable")(schedule, timezone=zone)


def _describe(span: datetime.timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    for size, unit in ((1440, "day"), (60, "hour"), (1, "minute")):
        if minutes % size == 0:
            count = minutes // size
            return f"{count:,} {unit}{'s' if count != 1 else ''}"
    return str(span)  # pragma: no cover


def readme_table() -> str:
    """The README's interval table, computed from :data:`README_EXAMPLES`."""
    rows = ["| schedule | time zone | longest gap | + grace | interval |", "|---|---|---|---|---|"]
    for schedule, zone, note in README_EXAMPLES:
        gap = longest_gap(example_timetable(schedule, zone), now=README_NOW)
        interval = interval_for_gap(gap)
        grace = _describe(default_grace(gap))
        shown = f"{_describe(gap)} ({note})" if note else _describe(gap)
        rows.append(f"| `{schedule}` | {zone} | {shown} | {grace} | `{interval}` |")
    rows.append(
        "| `@once`, `None`, `@continuous`, assets, events | - | - | - | error: give `interval`, `interval_unit` |"
    )
    return "\n".join([README_START, *rows, README_END])


if __name__ == "__main__":
    print(readme_table())
