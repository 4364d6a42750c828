"""A production-shaped Airflow, started and stopped by pytest: several "machines" on one.

- PostgreSQL (Debian's binaries, a cluster of its own in a temporary folder, run as the
  ``postgres`` user) on 127.0.0.1, the metadata database and Celery's result backend;
- Redis (Debian's ``redis-server``) on 127.0.0.1, Celery's broker;
- Airflow on the CeleryExecutor: two schedulers, two DAG processors, two Celery workers and
  one API server with two workers. Each component is a "host" of its own: its own HOME and
  AIRFLOW_HOME (so its own logs and its own ``[opsgenie_heartbeat] record_dir``) and its own
  host name through ``[core] hostname_callable`` (``stack_hostname.hostname``). What they share
  is what machines share: the database, the broker, the JWT secret and the DAG files - except
  the API server, whose DAG folder is empty (as where only the DAG processors and the workers
  get the DAG files).

Every process runs in a process group of its own, and each group is killed at teardown,
also when a test or the start-up failed.

Needs ``apache-airflow-providers-celery``, ``psycopg2-binary`` and ``asyncpg`` in the venv (``make install``,
pins in constraints/production-3.3.txt), and Debian's ``postgresql`` and ``redis-server``
(README-stack.txt beside this file).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from airflow_components import BIN, free_port, healthy

from opsgenie_heartbeat_emulator import EmulatorHandle

HERE = Path(__file__).resolve().parent

#: ``[opsgenie_heartbeat] record_store`` of every component: where the success callback's record lives.
RECORD_STORE = "metadata"

INSTALL_HINT = (
    "`make install` installs it (apache-airflow-providers-celery, psycopg2-binary and asyncpg, pinned in "
    "constraints/production-3.3.txt)"
)
APT_HINT = (
    "as root: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
    "postgresql redis-server (see tests/production/README-stack.txt)"
)

SCHEDULERS = ("scheduler-1", "scheduler-2")
#: the second scheduler's own [opsgenie_heartbeat]: the listener off, and another name template
LISTENER_OFF = {
    "AIRFLOW__OPSGENIE_HEARTBEAT__LISTENER_ENABLED": "False",
    "AIRFLOW__OPSGENIE_HEARTBEAT__NAME_TEMPLATE": "not-this-{{ dag_id }}",
}
DAG_PROCESSORS = ("dag-processor-1", "dag-processor-2")
WORKERS = ("worker-1", "worker-2")
API_HOST = "api-server"
CLI_HOST = "cli"
WORKER_CONCURRENCY = 2
API_WORKERS = 2
INITDB_OPTIONS = (
    "-U",
    "postgres",
    "--auth-local=trust",
    "--auth-host=scram-sha-256",
    "--no-locale",
    "-E",
    "UTF8",
    "--no-sync",
)
#: a throw-away cluster: no durability, room for every component's connection pool
POSTGRES_SETTINGS = tuple(
    arg
    for setting in ("listen_addresses=127.0.0.1", "max_connections=300", "fsync=off", "synchronous_commit=off")
    for arg in ("-c", setting)
)
REDIS_SETTINGS = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no")
#: No log server: each would bind every interface, and no other host could reach a made-up host name.
WORKER_OPTIONS = ("--concurrency", str(WORKER_CONCURRENCY), "--skip-serve-logs")


# --------------------------------------------------------------------------- the DAG files

START = "pendulum.datetime(2026, 1, 1, tz='UTC')"

SHARED_DAGS = f"""
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

# One notifier instance on three DAGs of one file.
hb = send_opsgenie_heartbeat(ensure=True, interval=1, interval_unit="hours")

for dag_id in ("prod_shared_a", "prod_shared_b", "prod_shared_c"):
    with DAG(dag_id=dag_id, schedule=None, start_date={START}, on_success_callback=hb) as dag:
        @task
        def work():
            return 1

        work()
    globals()[dag_id] = dag
"""

PLAIN_DAG = f"""
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

with DAG(dag_id="prod_plain", schedule=None, start_date={START}, on_success_callback=send_opsgenie_heartbeat()):
    @task
    def work():
        return 1

    work()
"""

NEXT_RUN_DAG = f"""
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

with DAG(
    dag_id="prod_next_run",
    schedule="* * * * *",
    start_date={START},
    catchup=False,
    on_success_callback=send_opsgenie_heartbeat(ensure=True, interval="next_run"),
):
    @task
    def work():
        return 1

    work()
"""

TASK_LEVEL_DAG = f"""
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

with DAG(dag_id="prod_task_level", schedule=None, start_date={START}):
    # The task's own callback: it runs on the Celery worker that ran the task.
    @task(on_success_callback=send_opsgenie_heartbeat(name="prod-task-level", ensure=True, interval=1,
                                                      interval_unit="hours"))
    def work():
        return 1

    work()
"""

LISTENER_DAG = f"""
import pendulum
from airflow.sdk import DAG, task

# No callback: the listener pings DAGs tagged opsgenie-heartbeat (in the scheduler that marks the run a success).
with DAG(dag_id="prod_listener", schedule=None, start_date={START}, tags={{"opsgenie-heartbeat"}}):
    @task
    def work():
        return 1

    work()
"""

# A slow task with a task-level notifier and one retry: its Celery worker is killed in the middle of it.
FAULT_DAG = f"""
import datetime
import time
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

with DAG(dag_id="fault_slow", schedule=None, start_date={START},
         default_args={{"retries": 1, "retry_delay": datetime.timedelta(seconds=5)}}):
    @task(on_success_callback=send_opsgenie_heartbeat(name="fault-slow"))
    def slow():
        time.sleep(25)
        return 1

    slow()
"""

DAG_FILES = {
    "fault_slow.py": FAULT_DAG,
    "prod_shared.py": SHARED_DAGS,
    "prod_plain.py": PLAIN_DAG,
    "prod_next_run.py": NEXT_RUN_DAG,
    "prod_task_level.py": TASK_LEVEL_DAG,
    "prod_listener.py": LISTENER_DAG,
}


@dataclass(frozen=True)
class Watched:
    """One heartbeat of the stack's DAGs, and which face pings it where."""

    name: str
    dag_id: str
    face: str
    #: the notifier ensures it (so its first run also creates it, and pings once more after that)
    ensure: bool
    #: the kind of host its pings come from
    runs_on: str


HEARTBEATS = (
    *(Watched(f"prod_shared_{x}", f"prod_shared_{x}", "shared notifier, ensure", True, "dag-processor") for x in "abc"),
    Watched("prod_plain", "prod_plain", "plain notifier", False, "dag-processor"),
    Watched("prod_next_run", "prod_next_run", "notifier, interval=next_run", True, "dag-processor"),
    Watched("prod-task-level", "prod_task_level", "task-level notifier, ensure", True, "worker"),
    Watched("prod_listener", "prod_listener", "listener (tag)", False, "scheduler"),
)
DAG_IDS = tuple(hb.dag_id for hb in HEARTBEATS)
#: the DAG of the worker-kill test (no heartbeat of its own among HEARTBEATS)
FAULT_DAG_ID = "fault_slow"
#: made in the emulator before the stack starts: their DAGs do not ensure them
PRECREATED = ("prod_plain", "prod_listener")


# --------------------------------------------------------------------------- the stack


@dataclass
class Host:
    """One "machine": a HOME of its own, its environment, the log of the component it runs."""

    name: str
    home: Path
    env: dict[str, str]

    @property
    def airflow_home(self) -> Path:
        return Path(self.env["AIRFLOW_HOME"])

    @property
    def log(self) -> Path:
        return self.home / f"{self.name}.log"

    def log_files(self) -> list[Path]:
        """The component's own output, then every log Airflow wrote under its AIRFLOW_HOME."""
        files = [self.log] if self.log.exists() else []
        logs = self.airflow_home / "logs"
        return files + (sorted(p for p in logs.rglob("*") if p.is_file()) if logs.exists() else [])


@dataclass
class ProductionStack:
    root: Path
    dags: Path
    api_url: str
    api_port: int
    pg_dsn: dict[str, Any]
    hosts: dict[str, Host] = field(default_factory=dict)
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    services: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    #: how many of the emulator's logged requests the set-up made (creating PRECREATED), not the runs
    setup_requests: int = 0
    #: starts PostgreSQL on its cluster and waits until it accepts connections
    serve_postgres: Callable[[], None] | None = None

    # ------------------------------------------------------------------ running things

    def start(self, host: Host, *args: str) -> subprocess.Popen[bytes]:
        """Run ``airflow <args>`` on ``host``, in a process group of its own, output to the host's log."""
        with host.log.open("ab") as log:
            process = subprocess.Popen(
                [str(BIN / "airflow"), *args],
                env=host.env,
                cwd=host.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((host.name, process))
        return process

    def cli(self, *args: str, host: str = CLI_HOST, timeout: float = 300, exits: tuple[int, ...] = (0,)) -> str:
        """``airflow <args>`` from the CLI host (against the shared PostgreSQL); fails the test on an exit code
        not in ``exits``."""
        result = subprocess.run(
            [str(BIN / "airflow"), *args],
            env=self.hosts[host].env,
            cwd=self.hosts[host].home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode not in exits:
            pytest.fail(f"airflow {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a query on the metadata database (read-only use)."""
        import psycopg2

        with contextlib.closing(psycopg2.connect(**self.pg_dsn, connect_timeout=10)) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(query, params)
                return list(cursor.fetchall()) if cursor.description else []

    def wait_for(
        self, condition: Callable[[], Any], timeout: float, what: str, every: float = 2.0, *, watch: bool = True
    ) -> Any:
        """Poll ``condition`` until it is truthy; fail with every component's log tail after ``timeout`` s (or
        as soon as an Airflow component exits, when ``watch``)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = condition()
            except Exception as exc:  # a database still starting, say: try again until the deadline
                result, last_error = None, exc
            else:
                last_error = None
            if result:
                return result
            dead = [name for name, process in self.processes if process.poll() is not None] if watch else []
            if dead or time.monotonic() > deadline:
                why = f"components exited: {dead}" if dead else f"timed out after {timeout:g}s"
                pytest.fail(f"{why} waiting for {what} (last error: {last_error!r})\n{self.log_tails()}", pytrace=False)
            time.sleep(every)

    def kill(self, name: str) -> None:
        """kill -9 the component ``name`` (its whole process group: task runners and pools too)."""
        for entry in [entry for entry in self.processes if entry[0] == name]:
            _kill_group(entry[1], signal.SIGKILL)
            entry[1].wait(30)
            self.processes.remove(entry)

    def restart_postgres(self, down: float) -> None:
        """Stop PostgreSQL with its fast shutdown (every connection cut, open transactions rolled back), keep it
        down ``down`` seconds, start it again on the same cluster."""
        assert self.serve_postgres is not None
        for entry in [entry for entry in self.services if entry[0] == "postgres"]:
            _kill_group(entry[1], signal.SIGINT)
            entry[1].wait(60)
            self.services.remove(entry)
        time.sleep(down)
        self.serve_postgres()

    def revive(self) -> list[str]:
        """Start again every Airflow component whose process has exited, as a supervisor (Kubernetes, systemd)
        would; the names of those started."""
        revived = []
        for entry in [entry for entry in self.processes if entry[1].poll() is not None]:
            self.processes.remove(entry)
            self.start(self.hosts[entry[0]], *[str(arg) for arg in entry[1].args[1:]])
            revived.append(entry[0])
        return revived

    def signal_group(self, name: str, sig: int) -> None:
        """Send ``sig`` (SIGSTOP, SIGCONT) to the component ``name``'s process group."""
        for host_name, process in self.processes:
            if host_name == name:
                _kill_group(process, sig)

    # ------------------------------------------------------------------ what happened

    def log_tails(self, chars: int = 2500) -> str:
        """The end of every component's log and of each host's Airflow logs (the last few files)."""
        parts = []
        for host in self.hosts.values():
            files = host.log_files()
            for path in files[:1] + files[1:][-4:]:
                with contextlib.suppress(OSError):
                    text = path.read_text(errors="replace")
                    parts.append(f"----- {host.name}: {path.relative_to(self.root)}\n{text[-chars:]}")
        for name in ("postgres", "redis"):
            path = self.root / f"{name}.log"
            if path.exists():
                parts.append(f"----- {name}\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)

    def pinged_by_host(self) -> dict[str, Counter[str]]:
        """Per host, how many "Pinged OpsGenie heartbeat 'NAME'" lines its logs hold, per heartbeat name."""
        found: dict[str, Counter[str]] = {}
        for host in self.hosts.values():
            counts: Counter[str] = Counter()
            for path in host.log_files():
                with contextlib.suppress(OSError):
                    counts.update(PINGED.findall(path.read_text(errors="replace")))
            found[host.name] = counts
        return found

    def marked_successful(self, dag_id: str) -> dict[str, int]:
        """Per scheduler, how many runs of ``dag_id`` its log says it marked successful."""
        marked = re.compile(rf"Marking run <DagRun {re.escape(dag_id)} @")
        return {name: len(marked.findall(self.hosts[name].log.read_text(errors="replace"))) for name in SCHEDULERS}

    def runs(self) -> dict[str, Counter[str]]:
        """Per DAG, its runs by state."""
        found: dict[str, Counter[str]] = {dag_id: Counter() for dag_id in DAG_IDS}
        for dag_id, state, count in self.sql(
            "SELECT dag_id, state, count(*) FROM dag_run WHERE dag_id LIKE 'prod%%' GROUP BY dag_id, state"
        ):
            found.setdefault(dag_id, Counter())[state] = count
        return found

    def api_pids(self) -> set[int]:
        """The API server's processes (its process group: the main one and its workers)."""
        leader = next(process.pid for name, process in self.processes if name == API_HOST)
        return {pid for pid in _pids() if _pgid(pid) == leader}

    # ------------------------------------------------------------------ stopping

    def stop(self) -> None:
        """Stop the Airflow components, then Redis and PostgreSQL: SIGTERM (PostgreSQL: SIGINT, its fast
        shutdown) to each process group, then SIGKILL to whatever of the group is left."""
        for group, first_signal in ((self.processes, signal.SIGTERM), (self.services, None)):
            for name, process in reversed(group):
                _kill_group(process, signal.SIGINT if name == "postgres" else (first_signal or signal.SIGTERM))
            deadline = time.monotonic() + 30
            for _, process in reversed(group):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(max(0.1, deadline - time.monotonic()))
                _kill_group(process, signal.SIGKILL)  # forked children (Celery's pool, task runners) too
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(10)
            group.clear()


PINGED = re.compile(r"Pinged OpsGenie heartbeat '([^']+)'")


def _kill_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


# --------------------------------------------------------------------------- services


def require_python_packages() -> None:
    """The CeleryExecutor's packages; a clear failure (never a skip) when they are missing."""
    missing = []
    for distribution in ("apache-airflow-providers-celery", "celery", "redis"):
        try:
            importlib.metadata.distribution(distribution)
        except importlib.metadata.PackageNotFoundError:
            missing.append(distribution)
    for module, distribution in (("psycopg2", "psycopg2-binary"), ("asyncpg", "asyncpg")):
        if importlib.util.find_spec(module) is None:
            missing.append(distribution)
    if missing:
        pytest.fail(f"The production stack needs {', '.join(missing)} in {sys.prefix}: {INSTALL_HINT}.", pytrace=False)


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's binaries (/usr/lib/postgresql/<major>/bin)."""
    found = sorted(
        (p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        pytest.fail(f"PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): {APT_HINT}", pytrace=False)
    return found[-1]


def postgres_user() -> dict[str, Any]:
    """How to run PostgreSQL's programs: as ``postgres`` when root (it refuses to run as root), else as we are."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
            check=True,
        )
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def start_postgres(stack: ProductionStack, folder: Path, port: int, password: str) -> None:
    """initdb a cluster in ``folder``, serve it on 127.0.0.1:``port``, create the airflow role and database."""
    bin_dir = postgres_bin()
    as_user = postgres_user()
    folder.mkdir()
    if as_user:
        shutil.chown(folder, "postgres", "postgres")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(folder)}
    data, sockets = folder / "data", folder / "sockets"

    def run(*args: str) -> None:
        result = subprocess.run(
            args, env=env, cwd=folder, capture_output=True, text=True, timeout=180, check=False, **as_user
        )
        if result.returncode != 0:
            pytest.fail(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}", pytrace=False)

    run(str(bin_dir / "initdb"), "-D", str(data), *INITDB_OPTIONS)
    run("mkdir", str(sockets))
    command = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets), *POSTGRES_SETTINGS]
    local = ("-h", str(sockets), "-p", str(port), "-U", "postgres")

    def serve() -> None:
        process = start_service(stack, "postgres", command, folder, env=env, **as_user)

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"PostgreSQL exited:\n{(stack.root / 'postgres.log').read_text()[-3000:]}", pytrace=False)
            isready = [str(bin_dir / "pg_isready"), *local, "-q"]
            return subprocess.run(isready, env=env, check=False, timeout=30, **as_user).returncode == 0

        # Airflow's components may exit meanwhile (PostgreSQL restarted): the test starts them again.
        stack.wait_for(ready, 120, "PostgreSQL to accept connections", every=0.5, watch=False)

    serve()
    stack.serve_postgres = serve
    psql = (str(bin_dir / "psql"), *local, "-v", "ON_ERROR_STOP=1", "-d", "postgres")
    run(*psql, "-c", f"CREATE ROLE airflow LOGIN PASSWORD '{password}'", "-c", "CREATE DATABASE airflow OWNER airflow")


def start_service(
    stack: ProductionStack, name: str, command: list[str], folder: Path, **popen: Any
) -> subprocess.Popen[bytes]:
    """Start a service (PostgreSQL, Redis) in a process group of its own, its output in ``<name>.log``."""
    with (stack.root / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **popen,
        )
    stack.services.append((name, process))
    return process


def start_redis(stack: ProductionStack, folder: Path, port: int) -> None:
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(redis_server).exists():
        pytest.fail(f"redis-server is not installed: {APT_HINT}", pytrace=False)
    folder.mkdir()
    start_service(stack, "redis", [redis_server, "--port", str(port), "--dir", str(folder), *REDIS_SETTINGS], folder)

    def pong() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")

    stack.wait_for(pong, 60, "Redis to answer PING", every=0.5)


# --------------------------------------------------------------------------- the fixture


def airflow_env(
    stack: ProductionStack, name: str, *, emulator: EmulatorHandle, shared: dict[str, str], **more: str
) -> Host:
    """A host: its HOME, its AIRFLOW_HOME and record folder inside it, its name; and what every host shares."""
    home = stack.root / "hosts" / name
    (home / "airflow").mkdir(parents=True)
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env = {
        **inherited,
        "HOME": str(home),
        "AIRFLOW_HOME": str(home / "airflow"),
        "STACK_HOSTNAME": name,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "stack_hostname.hostname",
        "AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR": str(home / "heartbeat-record"),
        "AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_STORE": RECORD_STORE,
        "AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT": emulator.connection_json(),
        **shared,
        **more,
    }
    host = Host(name, home, env)
    stack.hosts[name] = host
    return host


@pytest.fixture(scope="module")
def production_stack(
    opsgenie_emulator_server: EmulatorHandle, request: pytest.FixtureRequest
) -> Iterator[ProductionStack]:
    require_python_packages()
    from cryptography.fernet import Fernet

    from airflow_provider_opsgenie_hb.api.client import HeartbeatClient

    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="airflow-production-stack-"))
    root.chmod(0o711)  # PostgreSQL (another user) reaches its folder inside
    pg_port, redis_port, api_port = free_port(), free_port(), free_port()
    password = secrets.token_hex(12)
    api_url = f"http://127.0.0.1:{api_port}"
    stack = ProductionStack(
        root=root,
        dags=root / "dags",
        api_url=api_url,
        api_port=api_port,
        pg_dsn={"host": "127.0.0.1", "port": pg_port, "user": "airflow", "password": password, "dbname": "airflow"},
    )
    atexit.register(stack.stop)  # pytest itself interrupted: still no process left behind
    failed_before = request.session.testsfailed
    try:
        start_postgres(stack, root / "postgres", pg_port, password)
        start_redis(stack, root / "redis", redis_port)
        stack.dags.mkdir()
        for file_name, source in DAG_FILES.items():
            (stack.dags / file_name).write_text(textwrap.dedent(source))
        (root / "no-dags").mkdir()

        opsgenie_emulator_server.reset()
        client = HeartbeatClient.opsgenie(opsgenie_emulator_server.api_key, opsgenie_emulator_server.url)
        for name in PRECREATED:
            client.create_heartbeat(name=name, interval=1, interval_unit="hours")
        stack.setup_requests = len(opsgenie_emulator_server.requests())

        sync_database = f"postgresql+psycopg2://airflow:{password}@127.0.0.1:{pg_port}/airflow"
        shared = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sync_database,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "5",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(stack.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + sync_database,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            "AIRFLOW__CELERY__OPERATION_TIMEOUT": "10",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": api_url,
            "AIRFLOW__API__WORKERS": str(API_WORKERS),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
            # A task whose worker was killed is failed (and retried) after this long without a heartbeat.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "45",
            # A task whose Celery result was lost (PostgreSQL, Celery's result backend, restarted while it ran)
            # stays queued; Airflow queues it again after this long (the default is 10 minutes).
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
        }

        def host(name: str, **more: str) -> Host:
            return airflow_env(stack, name, emulator=opsgenie_emulator_server, shared=shared, **more)

        host(CLI_HOST)
        api = host(
            API_HOST,
            AIRFLOW__CORE__DAGS_FOLDER=str(root / "no-dags"),
            AIRFLOW__OPSGENIE_HEARTBEAT__DECLARATIONS="metadata",
        )
        stack.cli("db", "migrate", timeout=600)
        # The API server first: the workers' task runners reach it (the Execution API), and a run scheduled
        # before it answers fails after a few connection retries. The DAG processors parse meanwhile.
        stack.start(api, "api-server", "--workers", str(API_WORKERS))
        # One DAG processor first: two that find the same new DAG at once both insert it, and one of them
        # exits on the duplicate key (Airflow's own race; a supervisor would start it again). The second
        # starts once the DAGs are in the database.
        stack.start(host(DAG_PROCESSORS[0]), "dag-processor")
        stack.wait_for(
            lambda: {*DAG_IDS, FAULT_DAG_ID} <= {row[0] for row in stack.sql("SELECT dag_id FROM serialized_dag")},
            300,
            "the DAGs to be parsed by the first DAG processor",
        )
        for name in DAG_PROCESSORS[1:]:
            stack.start(host(name), "dag-processor")
        stack.wait_for(lambda: healthy(api_url), 300, "the API server")
        # The schedulers' [opsgenie_heartbeat] differ (say, one host's config file): the listener is on in
        # the first, off in the second, whose name template would be another. Every run is pinged all the
        # same, with the first one's settings.
        stack.start(host(SCHEDULERS[0]), "scheduler")
        stack.start(host(SCHEDULERS[1], **LISTENER_OFF), "scheduler")
        for name in WORKERS:
            stack.start(host(name), "celery", "worker", "--celery-hostname", name, *WORKER_OPTIONS)

        def jobs_running() -> bool:
            rows = stack.sql("SELECT job_type, hostname FROM job WHERE state = 'running'")
            running = {hostname for _, hostname in rows}
            return set(SCHEDULERS) | set(DAG_PROCESSORS) <= running

        stack.wait_for(jobs_running, 300, "both schedulers' and both DAG processors' jobs (by host name)")
        stack.wait_for(
            lambda: all(" ready." in stack.hosts[name].log.read_text(errors="replace") for name in WORKERS),
            300,
            "both Celery workers to be ready",
        )
        print(f"\n[production stack] up in {time.monotonic() - started:.0f}s at {root}", flush=True)
        yield stack
    except BaseException:
        failed_before = -1  # the start-up failed: keep what it left for a look
        raise
    finally:
        stack.stop()
        atexit.unregister(stack.stop)
        if request.session.testsfailed == failed_before:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"\n[production stack] kept for a look: {root}", flush=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def dump_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """The tail of every component's log after a failed test (the stack's own waits print them too)."""
    yield
    if request.node.stash.get(FAILED, False) and "production_stack" in request.fixturenames:
        stack: ProductionStack = request.getfixturevalue("production_stack")
        print(f"\n===== the production stack's logs =====\n{stack.log_tails()}", flush=True)
