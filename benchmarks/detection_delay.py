"""How late a missed run is noticed: a fixed interval (the longest gap) against ``interval="next_run"``.

For every schedule of the corpus, every run of a year (2025, so that the callback sees runs
in the past as Airflow does) is missed once, at every position. The emulator's clock starts
at the year's first run and is moved with ``POST /_emulator/clock/advance``; nothing waits.

At each run ``R[j]`` the success callback itself is called (a real notifier, over HTTP, with
a DAG run due at ``R[j]``, and this process's clock moved to ``R[j]`` by time-machine) for:

- ``main``: the heartbeat of a DAG that never misses a run (it must never alert);
- ``next_run-<j+1>`` and ``fixed-<j+1>``: heartbeats whose next run, ``R[j+1]``, is missed.
  They are created just before, as the runs before would have left them (the fixed one with
  the longest gap, the other with the interval the run before set), pinged by this run's
  callback, and then never again.

The detection delay of a missed run is the time from its expected start to the alert the
emulator raises. The emulator applies a changed interval only from the next ping
(``--interval-change next_ping``), the stricter of the two readings.
"""

from __future__ import annotations

import logging
import os
import secrets
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum
import requests
import time_machine

from opsgenie_heartbeat_emulator import EmulatorHandle, emulator_process

#: scripts/interval_table.py builds a timetable from a schedule written as in the README's table.
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
YEAR_START = pendulum.datetime(2025, 1, 1, tz="UTC")
YEAR_END = pendulum.datetime(2026, 1, 1, tz="UTC")

#: (schedule, time zone, what it shows)
CORPUS: list[tuple[str, str, str]] = [
    ("30 6 * * 1-5", "UTC", "weekdays"),
    ("0 9,17 * * 1-5", "UTC", "twice on weekdays"),
    ("0 3 * * *", "UTC", "daily"),
    ("0 */6 * * *", "UTC", "every 6 hours"),
    ("0 8 * * 1", "UTC", "weekly"),
    ("0 0 1 * *", "UTC", "monthly"),
    ("0 0 1 1,4,7,10 *", "UTC", "quarterly"),
    ("30 2 * * *", "Europe/Berlin", "daily; 02:30 does not exist on the spring DST day"),
    ("0 8 * * 1-5", "America/New_York", "weekdays, DST"),
]


@dataclass
class ScheduleResult:
    schedule: str
    zone: str
    label: str
    runs: int
    fixed: list[float]  # detection delays, seconds
    next_run: list[float]
    #: of the DAG that never misses a run, after its first run: pings and PATCHes, PATCHes;
    #: and its alerts before its runs stopped
    requests: int
    updates: int
    false_alerts: int

    def summary(self) -> dict[str, Any]:
        def minutes(values: list[float]) -> dict[str, float]:
            return {
                "worst_min": round(max(values) / 60, 1),
                "median_min": round(statistics.median(values) / 60, 1),
            }

        return {
            "schedule": self.schedule,
            "zone": self.zone,
            "label": self.label,
            "runs": self.runs,
            "fixed": minutes(self.fixed),
            "next_run": minutes(self.next_run),
            "requests_per_run": round(self.requests / (self.runs - 1), 4),
            "interval_changes_per_run": round(self.updates / (self.runs - 1), 4),
            "false_alerts": self.false_alerts,
        }


def year_of_runs(timetable: Any) -> list[pendulum.DateTime]:
    """Every run Airflow's timetable schedules in the year, plus the first one after it."""
    from airflow.timetables.base import DataInterval, TimeRestriction

    from airflow_provider_opsgenie_hb.core.schedule import scheduler_timetable

    core = scheduler_timetable(timetable)
    restriction = TimeRestriction(earliest=YEAR_START, latest=None, catchup=True)
    runs: list[pendulum.DateTime] = []
    last: Any = None
    while not runs or runs[-1] < YEAR_END:
        info = core.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        assert info is not None
        runs.append(pendulum.instance(info.run_after).in_timezone("UTC"))
        last = info.data_interval or DataInterval.exact(info.run_after)
    return runs


class _Clock:
    """The emulators' clocks, moved forward together to simulated times."""

    def __init__(self, *emulators: EmulatorHandle) -> None:
        self.emulators = emulators
        self.now = [self._advance(e, 0) for e in emulators]

    @staticmethod
    def _advance(emulator: EmulatorHandle, seconds: float) -> float:
        answer = requests.post(f"{emulator.url}/_emulator/clock/advance", json={"seconds": seconds}, timeout=10)
        return float(answer.json()["now"])

    def to(self, moment: pendulum.DateTime) -> None:
        for i, emulator in enumerate(self.emulators):
            if moment.timestamp() > self.now[i]:
                self.now[i] = self._advance(emulator, moment.timestamp() - self.now[i])


class _Run:
    """What the callback reads off a DAG run: its type and when it was due."""

    def __init__(self, due: pendulum.DateTime) -> None:
        self.run_type = "scheduled"
        self.run_after = due
        self.data_interval_start = self.data_interval_end = due
        self.state = "success"


def simulate(
    main_line: EmulatorHandle, missed_runs: EmulatorHandle, schedule: str, zone: str, label: str
) -> ScheduleResult:
    """``main_line`` holds the DAG that never misses a run; ``missed_runs`` one heartbeat per missed run."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    from airflow.sdk import DAG
    from interval_table import example_timetable

    from airflow_provider_opsgenie_hb.api.client import HeartbeatClient
    from airflow_provider_opsgenie_hb.core.schedule import interval_for_dag, interval_until_next_run
    from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

    dag = DAG(f"bench_{abs(hash((schedule, zone)))}", schedule=example_timetable(schedule, zone), start_date=YEAR_START)
    runs = year_of_runs(dag.timetable)
    longest = interval_for_dag(dag, now=YEAR_START)
    clock = _Clock(main_line, missed_runs)
    main = send_opsgenie_heartbeat(name="main", opsgenie_heartbeat_conn_id="bench_main", interval="next_run")
    with HeartbeatClient.opsgenie(api_key=main_line.api_key, base_url=main_line.url) as client:
        client.create_heartbeat(
            name="main", interval=longest.interval, interval_unit=longest.interval_unit, enabled=True
        )
    first_run_requests = 0
    with HeartbeatClient.opsgenie(api_key=missed_runs.api_key, base_url=missed_runs.url) as client:
        for j, due in enumerate(runs[:-1]):
            clock.to(due)
            context = {"dag": dag, "dag_run": _Run(due), "run_id": f"scheduled__{due.isoformat()}"}
            # The next run, R[j+1], is missed: its heartbeats as run R[j-1] left them, then pinged by R[j].
            missed = j + 1
            left = interval_until_next_run(dag, run_after=runs[j - 1], now=runs[j - 1]).interval if j else longest
            client.create_heartbeat(
                name=f"next_run-{missed}", interval=left.interval, interval_unit=left.interval_unit, enabled=True
            )
            client.create_heartbeat(
                name=f"fixed-{missed}", interval=longest.interval, interval_unit=longest.interval_unit, enabled=True
            )
            with time_machine.travel(due, tick=False):  # the runs take no time: delays are the modes' own
                main(context)
                send_opsgenie_heartbeat(
                    name=f"next_run-{missed}", opsgenie_heartbeat_conn_id="bench", interval="next_run"
                )(context)
                send_opsgenie_heartbeat(name=f"fixed-{missed}", opsgenie_heartbeat_conn_id="bench")(context)
            if j == 0:  # steady state is what follows the first run (which remembers nothing yet)
                first_run_requests = len(main_line.requests())
        clock.to(runs[-1].add(seconds=longest.seconds + 3600))
    alerts = {a["name"]: pendulum.parse(a["time"]) for a in missed_runs.alerts()}
    delays: dict[str, list[float]] = {"fixed": [], "next_run": []}
    for missed in range(1, len(runs)):
        for mode, found in delays.items():
            alerted = alerts.get(f"{mode}-{missed}")
            if alerted is None:
                raise AssertionError(f"{schedule} ({zone}): the missed run {runs[missed]} raised no alert ({mode})")
            found.append(alerted.timestamp() - runs[missed].timestamp())
    sent = [r["endpoint"] for r in main_line.requests()[first_run_requests:]]
    # The DAG that runs every time alerts only once its runs stop: after the year's last run.
    early = [a for a in main_line.alerts() if pendulum.parse(a["time"]) < runs[-1]]
    return ScheduleResult(
        schedule,
        zone,
        label,
        len(runs) - 1,
        delays["fixed"],
        delays["next_run"],
        requests=sent.count("ping") + sent.count("update"),
        updates=sent.count("update"),
        false_alerts=len(early),
    )


def measure() -> list[dict[str, Any]]:
    """Every schedule of the corpus, each on a fresh emulator whose clock starts at the year's start."""
    results = []
    api_key = "bench-" + secrets.token_hex(8)
    args = ["--clock-start", YEAR_START.isoformat(), "--interval-change", "next_ping"]
    logging.getLogger("airflow_provider_opsgenie_hb").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as record_dir:
        os.environ["AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR"] = record_dir
        for schedule, zone, label in CORPUS:
            with (
                emulator_process(api_key, extra_args=args) as main,
                emulator_process(api_key, extra_args=args) as missed,
            ):
                os.environ["AIRFLOW_CONN_BENCH_MAIN"] = main.connection_json()
                os.environ["AIRFLOW_CONN_BENCH"] = missed.connection_json()
                results.append(simulate(main, missed, schedule, zone, label).summary())
        del os.environ["AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR"]
    return results


def _hours(minutes: float) -> str:
    return f"{minutes / 60:.1f} h" if minutes >= 120 else f"{minutes:.0f} min"


def readme_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| schedule | time zone | runs | fixed interval: worst / median | `next_run`: worst / median "
        "| `next_run`: requests per run (interval changes per run) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        fixed, exact = row["fixed"], row["next_run"]
        lines.append(
            f"| `{row['schedule']}` ({row['label']}) | {row['zone']} | {row['runs']} | "
            f"{_hours(fixed['worst_min'])} / {_hours(fixed['median_min'])} | "
            f"{_hours(exact['worst_min'])} / {_hours(exact['median_min'])} | "
            f"{row['requests_per_run']:.2f} ({row['interval_changes_per_run']:.2f}) |"
        )
    return lines
