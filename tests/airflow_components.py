"""Real Airflow components for the end-to-end tests: a home of their own on 127.0.0.1, started and stopped."""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

BIN = Path(sys.executable).parent


class AirflowStack:
    """The components' settings, their logs, and the CLI against their metadata database."""

    def __init__(self, home: Path, env: dict[str, str], api_url: str) -> None:
        self.home = home
        self.env = env
        self.api_url = api_url
        self.dags = Path(env["AIRFLOW__CORE__DAGS_FOLDER"])
        self.logs = home / "logs-e2e"
        self.dags.mkdir(exist_ok=True)
        self.logs.mkdir(exist_ok=True)

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def query(self, sql: str, *params: str) -> list[tuple[Any, ...]]:
        """Rows from the stack's SQLite metadata database, read-only.

        Polling this costs a millisecond; polling through ``airflow`` costs seconds of CPU that the scheduler needs.
        """
        database = self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
            return connection.execute(sql, params).fetchall()

    def trigger(self, dag_id: str) -> None:
        """Trigger a run of ``dag_id`` through the API server (an ``airflow dags trigger`` costs seconds of CPU)."""
        answer = requests.post(
            f"{self.api_url}/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": None},
            headers=bearer(self.api_url),
            timeout=60,
        )
        assert answer.status_code == 200, answer.text

    def pause(self, dag_id: str, paused: bool) -> None:
        """Pause or unpause ``dag_id`` through the API server."""
        answer = requests.patch(
            f"{self.api_url}/api/v2/dags/{dag_id}", json={"is_paused": paused}, headers=bearer(self.api_url), timeout=60
        )
        assert answer.status_code == 200, answer.text

    def successful_runs(self, dag_id: str) -> int:
        """How many runs of ``dag_id`` Airflow has marked successful."""
        return int(self.query("SELECT count(*) FROM dag_run WHERE dag_id = ? AND state = 'success'", dag_id)[0][0])

    def serialized_dag_ids(self) -> set[str]:
        """The DAGs a DAG processor has put in the database (what the scheduler can run)."""
        return {row[0] for row in self.query("SELECT dag_id FROM serialized_dag")}


def new_stack(home: Path, **settings: str) -> AirflowStack:
    """A stack in ``home`` (DAG files in ``home/dags``), its API server on a free port; ``settings``: more variables."""
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR": str(home / "heartbeat-record"),
        **settings,
    }
    return AirflowStack(home, env, api_url)


@contextmanager
def running(stack: AirflowStack, *components: str) -> Iterator[None]:
    """Run ``airflow <component>`` for each component (logs in ``stack.logs``) until the block ends.

    Returns once the API server answers, when it is one of them.
    """
    processes = []
    for component in components:
        log = (stack.logs / f"{component}.log").open("w")
        processes.append(
            subprocess.Popen([str(BIN / "airflow"), component], env=stack.env, stdout=log, stderr=subprocess.STDOUT)
        )
    try:
        if "api-server" in components:
            wait_for(lambda: healthy(stack.api_url), 180, "the API server", stack.logs)
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str, logs: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(1)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.glob("*.log")))
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{tails}")


def bearer(api_url: str) -> dict[str, str]:
    """The token the simple auth manager hands out when all users are admins (3.0 and 3.1 ask for one)."""
    answer = requests.get(f"{api_url}/auth/token", timeout=60)
    return {"Authorization": f"Bearer {answer.json()['access_token']}"} if answer.status_code == 201 else {}


def healthy(api_url: str) -> bool:
    try:
        return requests.get(f"{api_url}/api/v2/monitor/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False
