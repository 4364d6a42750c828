"""Test set-up: a throw-away AIRFLOW_HOME with a SQLite metadata DB, and the emulator."""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_home = tempfile.mkdtemp(prefix="opsgenie-hb-airflow-home-")
DAGS_FOLDER = Path(_home) / "dags"
DAGS_FOLDER.mkdir()
# Before anything imports airflow: every test runs against this home, never the user's.
os.environ["AIRFLOW_HOME"] = _home
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# dag.test() finds a DAG through the DAG bundle: tests write their DAG files here.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home}/airflow.db"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.pop("AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", None)

import pytest  # noqa: E402

pytest_plugins = ["airflow_provider_opsgenie_hb.emulator.pytest_plugin"]


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """A migrated metadata DB (once per session), for dag.test() and the CLI."""
    from airflow.utils.db import initdb

    initdb()
    return _home


@pytest.fixture(scope="session")
def run_dag(airflow_db: str) -> Callable[..., Any]:
    """Write a DAG file into the DAGs folder, import it, run it with ``dag.test()``."""
    counter = itertools.count()

    def run(source: str, dag_id: str, **test_kwargs: Any) -> Any:
        path = DAGS_FOLDER / f"{dag_id}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(f"test_dag_{dag_id}_{next(counter)}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        dag = next(v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id)
        return dag.test(**test_kwargs)

    return run


@pytest.fixture
def start_emulator_cli() -> Iterator[Callable[[str, Path], tuple[subprocess.Popen[str], str]]]:
    """Start the emulator's CLI with a state file; returns (process, url). Stopped at teardown."""
    started: list[subprocess.Popen[str]] = []

    def start(api_key: str, state: Path) -> tuple[subprocess.Popen[str], str]:
        command = [sys.executable, "-m", "airflow_provider_opsgenie_hb.emulator", "--port", "0"]
        process = subprocess.Popen(
            [*command, "--api-key", api_key, "--state", str(state)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        started.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        return process, line.rsplit(" ", 1)[-1].strip()

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(10)
