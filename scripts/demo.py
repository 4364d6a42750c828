"""`make demo`: a DAG pings its heartbeat, then a missed run raises an alert.

Everything runs locally: the OpsGenie emulator on 127.0.0.1, Airflow with a SQLite
database in .demo/, and the example DAG example_opsgenie_heartbeat_callback.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from opsgenie_heartbeat_emulator import emulator_process

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo"
DAG_ID = "example_opsgenie_heartbeat_callback"
BIN = Path(sys.executable).parent
# "2026-01-01T00:00:00.000000Z [info     ] the message [logger.name] loc=file.py:12"
LOG_LINE = re.compile(r"^\S+ \[\w+\s*\] (.*?) \[[\w.]+\]( loc=\S+)?$")


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run_quietly(args: list[str], env: dict[str, str], log_name: str) -> str:
    """Run a command with its output in .demo/<log_name>; show the log only if it fails."""
    log_path = WORK / log_name
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)
    log_path.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        print((result.stdout + result.stderr)[-4000:])
        sys.exit(f"'{' '.join(args[:3])}' failed (exit {result.returncode}); full log: {log_path}")
    return result.stdout + result.stderr


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir()
    api_key = "demo-" + secrets.token_hex(12)

    step("Starting the OpsGenie heartbeat emulator on 127.0.0.1")
    with emulator_process(api_key) as emulator:
        print(f"    listening on {emulator.url}")
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(WORK / "airflow-home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{WORK / 'airflow-home' / 'airflow.db'}",
            "AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT": emulator.connection_json(),
        }

        step("Preparing Airflow (SQLite metadata database in .demo/airflow-home)")
        run_quietly([str(BIN / "airflow"), "db", "migrate"], env, "db-migrate.log")
        print("    done")

        step(f"Running the DAG '{DAG_ID}' with `airflow dags test`")
        print("    its on_success_callback is send_opsgenie_heartbeat(ensure=True, ...)")
        output = run_quietly([str(BIN / "airflow"), "dags", "test", DAG_ID], env, "dags-test.log")
        for line in output.splitlines():
            message = LOG_LINE.match(line)
            if message and ("OpsGenie heartbeat" in line or "Marking run" in line):
                text = re.sub(r"Marking run <DagRun [^>]*> (\w+)", r"DAG run marked \1", message.group(1))
                print("    " + text)

        step("The heartbeat as OpsGenie (the emulator) now sees it")
        heartbeat = emulator.heartbeats()[DAG_ID]
        show(heartbeat, ["name", "interval", "intervalUnit", "enabled", "expired", "lastPingTime", "alertPriority"])
        if heartbeat["expired"] or not heartbeat.get("lastPingTime"):
            sys.exit("the DAG run did not ping its heartbeat; see .demo/dags-test.log")

        interval_hours = heartbeat["interval"] * {"minutes": 1 / 60, "hours": 1, "days": 24}[heartbeat["intervalUnit"]]
        step(f"No run for {interval_hours + 1:g} hours (the emulator's clock moves; nobody sleeps)")
        emulator.advance((interval_hours + 1) * 3600)
        alerts = emulator.alerts()
        if not alerts:
            sys.exit("no alert was raised for the missed run")
        print("    OpsGenie raised an alert:")
        show(alerts[0], ["name", "message", "priority", "tags", "time"])
        print("\nA DAG that stops succeeding on schedule now pages someone. See README.md to use it.")


def show(record: dict[str, object], keys: list[str]) -> None:
    for key in keys:
        print(f"      {key:<14} {record.get(key)}")


if __name__ == "__main__":
    main()
