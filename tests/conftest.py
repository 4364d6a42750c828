"""Test set-up: a throw-away AIRFLOW_HOME with a SQLite metadata DB, and the emulator."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import itertools
import logging
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
from packaging.version import Version  # noqa: E402

from opsgenie_heartbeat_emulator import EmulatorHandle  # noqa: E402
from opsgenie_heartbeat_emulator.control import start_emulator_cli as start_emulator_process  # noqa: E402

AIRFLOW_VERSION = Version(importlib.metadata.version("apache-airflow"))


def our_warnings(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """Warnings this provider logged (Airflow 3.0 itself warns about any connection type with "_")."""
    return [r for r in records if r.levelno >= logging.WARNING and r.name.startswith("airflow_provider_opsgenie_hb")]


# Tests of code that imports no Airflow (the client, the emulator): the Airflow version cannot
# change their outcome, so the version matrix runs them on one Airflow only (see .ci/run).
AIRFLOW_FREE_MODULES = {
    "test_client.py",
    "test_emulator.py",
    "test_emulator_jsm.py",
    "test_emulator_rules.py",
    "test_persistence.py",
    "test_deadline.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (
            item.path.name in AIRFLOW_FREE_MODULES
            or getattr(item, "originalname", "") == "test_fault_matrix"
            # The JSM backend differs from OpsGenie's only in the client: its Airflow side is the same.
            or (callspec is not None and callspec.params.get("backend") == "jsm")
        ):
            item.add_marker(pytest.mark.airflow_free)


@pytest.fixture(autouse=True)
def heartbeat_record_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test starts as a fresh deployment would: the callback has recorded nothing yet."""
    record_dir = tmp_path / "heartbeat-record"
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR", str(record_dir))
    return record_dir


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """A migrated metadata DB (once per session), for dag.test() and the CLI."""
    from airflow.utils.db import initdb

    initdb()
    return _home


def record_variables() -> dict[str, str]:
    """The Airflow Variables the record is kept in (``record_store = metadata``)."""
    from airflow.models import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(Variable).filter(Variable.key.startswith("opsgenie_heartbeat.")).all()
        return {row.key: row.val for row in rows}


@pytest.fixture
def metadata_record(airflow_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``record_store = metadata``, starting from no record (the Variables are cleared before and after)."""
    from airflow.models import Variable
    from airflow.utils.session import create_session

    def clear() -> None:
        with create_session() as session:
            session.query(Variable).filter(Variable.key.startswith("opsgenie_heartbeat.")).delete(
                synchronize_session=False
            )

    clear()
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_STORE", "metadata")
    yield
    clear()


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
        if Version("3") > AIRFLOW_VERSION and "logical_date" in test_kwargs:  # Airflow 2 named it execution_date
            test_kwargs["execution_date"] = test_kwargs.pop("logical_date")
        return dag.test(**test_kwargs)

    return run


@pytest.fixture
def start_emulator_cli() -> Iterator[Callable[[str, Path], tuple[subprocess.Popen[str], str]]]:
    """Start the emulator's CLI with a state file; returns (process, url). Stopped at teardown."""
    started: list[subprocess.Popen[str]] = []

    def start(api_key: str, state: Path) -> tuple[subprocess.Popen[str], str]:
        process, handle = start_emulator_process(api_key, state_file=str(state))
        started.append(process)
        return process, handle.url

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(10)


class Backend:
    """One of the two services the provider speaks to, both served by the emulator.

    ``heartbeats()`` and ``calls()`` read the emulator in a backend-neutral shape, so one
    test body checks either backend.
    """

    def __init__(self, name: str, emulator: EmulatorHandle) -> None:
        self.name = name
        self.emulator = emulator
        self.api_key = emulator.api_key

    def __repr__(self) -> str:
        return f"Backend({self.name})"

    def connection_json(self, **overrides: Any) -> str:
        if self.name == "jsm":
            return self.emulator.jsm_connection_json()
        return self.emulator.connection_json(**overrides)

    def heartbeats(self) -> dict[str, dict[str, Any]]:
        """name -> the stored fields, with intervalUnit in lower case and ``pinged``/``expired`` flags."""
        if self.name == "jsm":
            return {
                name: {
                    **hb,
                    "intervalUnit": hb["intervalUnit"].lower(),
                    "expired": hb["status"] == "Unresponsive",
                    "pinged": hb["status"] in ("Responsive", "Unresponsive"),
                }
                for name, hb in self.emulator.jsm_heartbeats().items()
            }
        return {name: {**hb, "pinged": bool(hb.get("lastPingTime"))} for name, hb in self.emulator.heartbeats().items()}

    def calls(self) -> list[tuple[str, str | None]]:
        """(operation, heartbeat name) per request; JSM's list filtered by name counts as a get."""
        calls = []
        for r in self.emulator.requests():
            operation = r["endpoint"]
            if self.name == "jsm" and operation == "list" and r["name"]:
                operation = "get"
            calls.append((operation, r["name"]))
        return calls

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls()]

    def pings(self) -> list[str | None]:
        return [name for operation, name in self.calls() if operation == "ping"]


@pytest.fixture(params=["opsgenie", "jsm"])
def backend(
    request: pytest.FixtureRequest, opsgenie_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> Backend:
    """The default connection pointed at one backend of the emulator: OpsGenie, then JSM Operations."""
    chosen = Backend(request.param, opsgenie_emulator)
    monkeypatch.setenv("AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", chosen.connection_json())
    return chosen


@pytest.fixture
def provider_cli(airflow_db: str) -> Callable[..., str]:
    """Run the ``opsgenie-heartbeat`` console script; fail the test on an unexpected exit code."""

    def run(*args: str, expect_exit: int = 0) -> str:
        """Stdout, and stderr after it; fails unless the exit code is ``expect_exit``."""
        result = subprocess.run(
            [str(Path(sys.executable).parent / "opsgenie-heartbeat"), *args],
            env={**os.environ},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == expect_exit, result.stdout + result.stderr
        return result.stdout + result.stderr

    return run


@pytest.fixture
def airflow_cli(airflow_db: str) -> Callable[..., None]:
    """Run one of Airflow's own CLI commands (``"dags", "pause", ...``) in this process."""
    from airflow.cli import cli_parser

    def run(*args: str) -> None:
        parsed = cli_parser.get_parser().parse_args(list(args))
        parsed.func(parsed)

    return run


@pytest.fixture
def provider_main(airflow_db: str) -> Callable[..., str]:
    """Run the ``opsgenie-heartbeat`` command's ``main`` in this process: what ``provider_cli`` checks, without
    the seconds of Airflow imports a new process costs. Its log lines of WARNING and above go to its stderr."""
    from airflow_provider_opsgenie_hb.cli.main import main

    def run(*args: str, expect_exit: int = 0) -> str:
        """Stdout, and stderr after it; fails unless the exit code is ``expect_exit``."""
        stdout, stderr = io.StringIO(), io.StringIO()
        handler = logging.StreamHandler(stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logging.getLogger().addHandler(handler)
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                try:
                    code: Any = main(list(args))
                except SystemExit as exc:  # argparse's usage errors
                    code = exc.code
        finally:
            logging.getLogger().removeHandler(handler)
        assert code == expect_exit, stdout.getvalue() + stderr.getvalue()
        return stdout.getvalue() + stderr.getvalue()

    return run
