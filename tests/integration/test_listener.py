"""The listener's queue and worker against the emulator, and one ping per run for tag + callback."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from conftest import record_variables

from airflow_provider_opsgenie_hb.core.record import recent_pings
from airflow_provider_opsgenie_hb.listeners import heartbeat as listener
from airflow_provider_opsgenie_hb.listeners import presence
from airflow_provider_opsgenie_hb.listeners.heartbeat import HeartbeatPinger
from airflow_provider_opsgenie_hb.settings import listener_settings
from opsgenie_heartbeat_emulator import EmulatorHandle

# Airflow 2 asks a scheduled DAG for a start date.
DAG_START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def pings(emulator: EmulatorHandle) -> list[str]:
    return [r["name"] for r in emulator.requests() if r["endpoint"] == "ping"]


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_pinger_sends_in_the_background(opsgenie_heartbeat_conn: EmulatorHandle) -> None:
    pinger = HeartbeatPinger("opsgenie_heartbeat_default", maxsize=10, ping_deadline=5)
    started = time.monotonic()
    assert pinger.submit("a")
    assert pinger.submit("b")
    assert time.monotonic() - started < 0.5  # submitting never waits for OpsGenie
    assert pinger.flush(5)
    assert pings(opsgenie_heartbeat_conn) == ["a", "b"]
    assert [entry["source"] for entry in recent_pings("opsgenie_heartbeat_default", "a")] == ["listener"]


def test_a_heartbeat_that_does_not_exist_is_said_on_every_run(
    opsgenie_heartbeat_conn: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    """OpsGenie answers PONG to a ping for any name: the listener checks (once per record TTL) that the
    heartbeat exists, and warns on every run while it does not."""
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    OpsgenieHeartbeatHook().create_heartbeat(name="exists", interval=1, interval_unit="days")
    caplog.set_level(logging.WARNING)
    pinger = HeartbeatPinger("opsgenie_heartbeat_default", maxsize=10, ping_deadline=5)
    for _ in range(2):
        assert pinger.submit("never-created")
        assert pinger.submit("exists")
        assert pinger.flush(5)
    warnings = [r.getMessage() for r in caplog.records if "does not exist" in r.getMessage()]
    assert len(warnings) == 2
    assert "'never-created'" in warnings[0]
    assert "`airflow opsgenie-heartbeat sync` where the DAG files are" in warnings[0]
    calls = [(r["endpoint"], r["name"]) for r in opsgenie_heartbeat_conn.requests() if r["name"] == "exists"]
    assert calls[1:] == [("ping", "exists"), ("get", "exists"), ("ping", "exists")]  # checked once, remembered


def test_a_full_queue_drops_with_a_warning_and_flush_is_bounded(
    opsgenie_heartbeat_conn: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    opsgenie_heartbeat_conn.set_faults({"kind": "latency", "seconds": 30, "endpoint": "ping"})
    pinger = HeartbeatPinger("opsgenie_heartbeat_default", maxsize=2, ping_deadline=30)
    caplog.set_level(logging.WARNING)
    accepted = [pinger.submit(f"p{i}") for i in range(6)]
    # One ping is in flight (hanging), two wait in the queue, the rest are dropped.
    assert accepted.count(False) >= 3
    assert any("queue is full" in r.getMessage() for r in caplog.records)
    started = time.monotonic()
    assert pinger.flush(0.5) is False
    assert time.monotonic() - started < 1.0
    assert any("still queued at shutdown" in r.getMessage() for r in caplog.records)
    opsgenie_heartbeat_conn.reset()  # ends the hanging request; the queued pings then go out
    assert pinger.flush(10)  # before the next test starts


TAGGED_WITH_CALLBACK = """
import pendulum
from airflow.providers.common.compat.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

with DAG(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         tags={tags}, on_success_callback=send_opsgenie_heartbeat()) as dag:
    @task
    def work():
        return 1
    work()
"""


@pytest.mark.parametrize(("tags", "expected_pings"), [(["opsgenie-heartbeat"], 2), ([], 1)])
def test_tag_and_callback_both_ping(
    run_dag: Callable[..., Any],
    opsgenie_heartbeat_conn: EmulatorHandle,
    tags: list[str],
    expected_pings: int,
) -> None:
    listener._pinger = None  # a fresh worker bound to this test's connection
    dag_id = "tag_and_callback" if tags else "callback_only"
    dag_run = run_dag(TAGGED_WITH_CALLBACK.format(dag_id=dag_id, tags=tags), dag_id)
    assert dag_run.state == "success"
    if listener._pinger is not None:
        assert listener._pinger.flush(5)
    assert wait_until(lambda: len(pings(opsgenie_heartbeat_conn)) >= expected_pings)
    time.sleep(0.3)  # a second, duplicate ping would arrive now
    assert pings(opsgenie_heartbeat_conn) == [dag_id] * expected_pings
    # Tagged: the listener pinged (in this process, as dag.test() runs no scheduler).
    assert (listener._pinger is not None) == bool(tags)


def test_the_listener_pings_the_run_types_of_its_declaration(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.common.compat.sdk import DAG

    tagged = DAG("nightly", start_date=DAG_START, schedule="@daily", tags=["opsgenie-heartbeat"])
    assert listener.pinged_by_listener(tagged, "scheduled") == "nightly"
    assert listener.pinged_by_listener(tagged, "backfill") is None  # an old date says nothing about today
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__RUN_TYPES", "scheduled, backfill")
    assert listener.pinged_by_listener(tagged, "backfill") == "nightly"
    assert listener.pinged_by_listener(tagged, "manual") is None


class _Run:
    """What the scheduler hands ``on_dag_run_success``: a DAG run with its DAG and run type."""

    def __init__(self, dag: Any, run_type: str) -> None:
        self.dag, self.run_type, self.run_id = dag, run_type, f"{run_type}__1"


def test_on_dag_run_success_skips_backfills(opsgenie_heartbeat_conn: EmulatorHandle) -> None:
    from airflow.providers.common.compat.sdk import DAG

    listener._pinger = None
    tagged = DAG("bf_listener", start_date=DAG_START, schedule="@daily", tags=["opsgenie-heartbeat"])
    listener.heartbeat_listener.on_dag_run_success(_Run(tagged, "backfill"), "success")
    listener.heartbeat_listener.on_dag_run_success(_Run(tagged, "scheduled"), "success")
    assert listener._pinger is not None
    assert listener._pinger.flush(5)
    assert pings(opsgenie_heartbeat_conn) == ["bf_listener"]


def test_a_rotated_key_works_without_a_restart(
    opsgenie_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", opsgenie_emulator.connection_json(api_key="old"))
    pinger = HeartbeatPinger("opsgenie_heartbeat_default", maxsize=10, ping_deadline=5)
    caplog.set_level(logging.WARNING)
    assert pinger.submit("rotated")
    assert pinger.flush(5)
    assert any("401" in r.getMessage() for r in caplog.records)
    monkeypatch.setenv("AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", opsgenie_emulator.connection_json())
    assert pinger.submit("rotated")
    assert pinger.flush(5)
    assert [(r["name"], r["status"]) for r in opsgenie_emulator.requests() if r["endpoint"] == "ping"] == [
        ("rotated", 401),
        ("rotated", 202),
    ]


def test_an_unknown_run_type_in_the_settings_is_left_out_and_never_stops_the_pings(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A typo (or Airflow 2's ``dataset_triggered``) in ``run_types`` must not silence every tagged DAG."""
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_opsgenie_hb.settings import DEFAULT_RUN_TYPES, listener_settings

    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__RUN_TYPES", "scheduled, dataset_triggered, nightly")
    assert listener_settings().run_types == {"scheduled", "asset_triggered"}
    assert "run_types: unknown ['nightly']" in caplog.text
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__RUN_TYPES", "nightly")
    assert listener_settings().run_types == set(DEFAULT_RUN_TYPES)  # none known: the default, not none
    tagged = DAG("typo_in_run_types", start_date=DAG_START, schedule="@daily", tags=["opsgenie-heartbeat"])
    assert listener.pinged_by_listener(tagged, "scheduled") == "typo_in_run_types"


def test_listener_settings_come_from_airflow_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.common.compat.sdk import DAG

    tagged = DAG("nightly", start_date=DAG_START, schedule="@daily", tags=["opsgenie-heartbeat"])
    assert listener.pinged_by_listener(tagged) == "nightly"
    assert listener.pinged_by_listener(DAG("untagged", start_date=DAG_START, schedule="@daily")) is None
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__NAME_TEMPLATE", "prod-{{ dag_id }}")
    assert listener.pinged_by_listener(tagged) == "prod-nightly"
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__LISTENER_ENABLED", "False")
    assert listener.pinged_by_listener(tagged) is None


@pytest.fixture
def scheduler_job(airflow_db: str) -> Iterator[Callable[[], Any]]:
    """Start (in the metadata database) scheduler jobs as a running scheduler has: returns each job."""
    from airflow.jobs.job import Job, JobState
    from airflow.models import Variable
    from airflow.utils.session import create_session

    started: list[int] = []

    def start() -> Any:
        # Built as a scheduler's job is, without the recorder its on_starting would start here (tests record).
        with create_session() as session, mock.patch.dict(os.environ, LISTENER_OFF):
            job = Job()
            job.job_type, job.state, job.latest_heartbeat = (
                "SchedulerJob",
                JobState.RUNNING,
                datetime.datetime.now(datetime.UTC),
            )
            session.add(job)
            session.flush()
            started.append(job.id)
        return job

    listener._pinger = None
    presence.forget()
    yield start
    presence.stop_recording()
    stop_scheduler_jobs(started)
    with create_session() as session:
        session.query(Variable).filter(Variable.key.startswith(presence.PREFIX)).delete(synchronize_session=False)
    listener._pinger = None
    presence.forget()


LISTENER_OFF = {"AIRFLOW__OPSGENIE_HEARTBEAT__LISTENER_ENABLED": "False"}


def stop_scheduler_jobs(job_ids: list[int]) -> None:
    from airflow.jobs.job import Job, JobState
    from airflow.utils.session import create_session

    with create_session() as session:
        for job in session.query(Job).filter(Job.id.in_(job_ids)):
            job.state = JobState.SUCCESS


def listener_records() -> list[str]:
    return sorted(k for k in record_variables() if k.startswith(presence.PREFIX))


def test_a_component_with_the_listener_off_pings_while_a_scheduler_with_it_on_runs(
    opsgenie_heartbeat_conn: EmulatorHandle,
    scheduler_job: Callable[[], Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two schedulers whose [opsgenie_heartbeat] differ: every run is pinged, with the settings of
    the one that has the listener on, whichever of them marks it a success."""
    from airflow.providers.common.compat.sdk import DAG

    tagged = DAG("differs_per_scheduler", start_date=DAG_START, schedule="@daily", tags=["opsgenie-heartbeat"])
    # Scheduler B: the listener off, and no name template. Before A starts, its runs are not pinged.
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__LISTENER_ENABLED", "False")
    listener.heartbeat_listener.on_starting(scheduler_job())
    listener.heartbeat_listener.on_dag_run_success(_Run(tagged, "scheduled"), "success")
    assert listener._pinger is not None
    assert listener._pinger.flush(5)
    assert pings(opsgenie_heartbeat_conn) == []
    # Scheduler A starts: the listener on, its own name template. It records so as its job starts.
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__LISTENER_ENABLED", "True")
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__NAME_TEMPLATE", "prod-{{ dag_id }}")
    on_job = scheduler_job()
    listener.heartbeat_listener.on_starting(on_job)
    assert wait_until(lambda: listener_records() == [f"{presence.PREFIX}{on_job.id}"])
    listener.heartbeat_listener.on_dag_run_success(_Run(tagged, "scheduled"), "success")
    # B's runs are pinged from now on, by A's settings.
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__LISTENER_ENABLED", "False")
    monkeypatch.delenv("AIRFLOW__OPSGENIE_HEARTBEAT__NAME_TEMPLATE")
    caplog.set_level(logging.INFO)
    listener.heartbeat_listener.on_dag_run_success(_Run(tagged, "scheduled"), "success")
    listener.heartbeat_listener.on_dag_run_success(_Run(tagged, "backfill"), "success")  # not A's run types
    listener.heartbeat_listener.on_dag_run_success(
        _Run(DAG("untagged", start_date=DAG_START, schedule="@daily"), "scheduled"), "success"
    )
    assert listener._pinger.flush(5)
    assert pings(opsgenie_heartbeat_conn) == ["prod-differs_per_scheduler"] * 2
    assert any("the listener is off here, and pinged all the same" in r.getMessage() for r in caplog.records)
    assert listener_records() == [f"{presence.PREFIX}{on_job.id}"]  # B recorded nothing

    # A stops (or restarts with the listener off): off everywhere is off.
    stop_scheduler_jobs([on_job.id])
    presence.forget()
    listener.heartbeat_listener.on_dag_run_success(_Run(tagged, "scheduled"), "success")
    assert listener._pinger.flush(5)
    time.sleep(0.3)
    assert pings(opsgenie_heartbeat_conn) == ["prod-differs_per_scheduler"] * 2


def test_a_record_counts_only_for_its_own_scheduler_job(scheduler_job: Callable[[], Any]) -> None:
    """Stopped schedulers' records are cleared; a record of another host or start (an earlier job of that
    id, a Variable copied from another deployment) is not taken for a running scheduler's."""
    stopped, running = scheduler_job(), scheduler_job()
    settings = listener_settings()
    assert presence.record(presence.identity_of(stopped), settings)  # type: ignore[arg-type]
    stop_scheduler_jobs([stopped.id])
    identity = presence.identity_of(running)
    assert identity is not None
    assert presence.record(identity, settings)
    assert listener_records() == [f"{presence.PREFIX}{running.id}"]
    assert presence.listener_on_elsewhere() == settings
    for other in (
        dataclasses.replace(identity, hostname="another-host"),
        dataclasses.replace(identity, started=identity.started - datetime.timedelta(hours=1)),
    ):
        presence.forget()
        assert presence.record(other, settings)
        assert presence.listener_on_elsewhere() is None


def test_only_a_scheduler_with_the_listener_on_records_itself(
    scheduler_job: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__LISTENER_ENABLED", "False")
    assert presence.keep_recorded(scheduler_job()) is None
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__LISTENER_ENABLED", "True")
    processor = scheduler_job()
    processor.job_type = "DagProcessorJob"
    thread = presence.keep_recorded(processor)
    assert thread is not None
    thread.join(5)
    assert not thread.is_alive()  # gave up: not a scheduler
    assert listener_records() == []
    assert presence.listener_on_elsewhere() is None


def test_when_the_database_cannot_be_read_a_listener_that_is_off_pings_all_the_same(
    opsgenie_heartbeat_conn: EmulatorHandle,
    scheduler_job: Callable[[], Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When in doubt, ping: with the settings read before, or (none read yet) this component's own."""
    from airflow.providers.common.compat.sdk import DAG
    from sqlalchemy.exc import OperationalError

    tagged = DAG("db_unreadable", start_date=DAG_START, schedule="@daily", tags=["opsgenie-heartbeat"])
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__NAME_TEMPLATE", "prod-{{ dag_id }}")
    assert presence.record(presence.identity_of(scheduler_job()), listener_settings())  # type: ignore[arg-type]
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__LISTENER_ENABLED", "False")
    monkeypatch.delenv("AIRFLOW__OPSGENIE_HEARTBEAT__NAME_TEMPLATE")
    listener.heartbeat_listener.on_dag_run_success(_Run(tagged, "scheduled"), "success")  # read: prod-
    assert listener._pinger is not None
    assert listener._pinger.flush(5)

    def unreachable() -> None:  # what a database that went away raises
        raise OperationalError("SELECT job", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(presence, "_read", unreachable)
    monkeypatch.setattr(presence, "CACHE_SECONDS", 0.0)
    caplog.set_level(logging.WARNING)
    listener.heartbeat_listener.on_dag_run_success(_Run(tagged, "scheduled"), "success")  # as read before
    assert listener._pinger.flush(5)
    presence.forget()
    listener.heartbeat_listener.on_dag_run_success(_Run(tagged, "scheduled"), "success")  # its own settings
    assert listener._pinger.flush(5)
    assert pings(opsgenie_heartbeat_conn) == ["prod-db_unreadable", "prod-db_unreadable", "db_unreadable"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("using what was read before" in m for m in messages)
    assert any("pinging DAG 'db_unreadable'" in m and "with this component's settings" in m for m in messages)


def test_a_scheduler_job_started_as_airflow_starts_it_is_recorded(scheduler_job: Callable[[], Any]) -> None:
    """The path of ``airflow scheduler``: Job() (Airflow calls on_starting, type and id unknown yet), the runner
    sets its type, run_job inserts it; the record follows, of that job's host and start."""
    from airflow.jobs.job import Job
    from airflow.utils.session import create_session

    job = Job()  # Airflow's listener manager calls our on_starting here
    job.job_type = "SchedulerJob"  # as SchedulerJobRunner does
    with create_session() as session:
        job.prepare_for_execution(session=session)  # as run_job does: running, started, inserted
    try:
        assert wait_until(lambda: listener_records() == [f"{presence.PREFIX}{job.id}"], timeout=10)
        assert presence.listener_on_elsewhere() == listener_settings()
    finally:
        presence.stop_recording()
        stop_scheduler_jobs([job.id])


def test_a_ping_that_fails_to_render_does_not_stop_the_pings_after_it(
    opsgenie_heartbeat_conn: EmulatorHandle,
    scheduler_job: Callable[[], Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.providers.common.compat.sdk import DAG

    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__NAME_TEMPLATE", "{{ dag.no_such_thing.either }}")
    assert presence.record(presence.identity_of(scheduler_job()), listener_settings())  # type: ignore[arg-type]
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__LISTENER_ENABLED", "False")
    caplog.set_level(logging.ERROR)
    listener.heartbeat_listener.on_dag_run_success(_Run(DAG("bad", tags=["opsgenie-heartbeat"]), "manual"), "ok")
    assert listener._pinger is not None
    assert listener._pinger.flush(5)
    assert any("a ping failed unexpectedly" in r.getMessage() for r in caplog.records)
    assert listener._pinger.submit("after_the_bad_one")
    assert listener._pinger.flush(5)
    assert pings(opsgenie_heartbeat_conn) == ["after_the_bad_one"]


def test_a_forked_child_starts_without_the_parents_pinger_or_its_locks() -> None:
    """LocalExecutor forks its workers from the scheduler, and they fork the tasks: a child must not wait on
    a lock a scheduler's thread held at the fork, nor flush the scheduler's queued pings at its exit."""
    import threading

    parent_pinger = listener.pinger()
    held, release = threading.Event(), threading.Event()

    def hold_the_locks() -> None:
        with listener._pinger_lock, presence._read_lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_locks)
    holder.start()
    held.wait(5)
    pid = os.fork()
    if pid == 0:  # the child: a deadlock here is ended by the alarm (exit by SIGALRM, not 0)
        import signal

        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # pytest-timeout's handler is the parent's
        signal.alarm(5)
        child_pinger = listener.pinger()
        presence.forget()
        os._exit(0 if child_pinger is not parent_pinger else 3)
    release.set()
    holder.join()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
