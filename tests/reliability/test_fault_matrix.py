"""Every hook method under every fault, through real sockets; the callback under every fault."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from matrix import FAULTS, METHODS, RECOVERED, Fault, fault_spec

from airflow_provider_opsgenie_hb.api import errors
from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook
from opsgenie_heartbeat_emulator import EmulatorHandle

TIME_BUDGET = 3.0
UNRESOLVABLE = "opsgenie.unresolvable.invalid"

CALLS: dict[str, Callable[[OpsgenieHeartbeatHook], Any]] = {
    "create": lambda hook: hook.create_heartbeat(name="new", interval=1, interval_unit="hours"),
    "list": lambda hook: hook.list_heartbeats(),
    "get": lambda hook: hook.get_heartbeat("hb"),
    "update": lambda hook: hook.update_heartbeat("hb", interval=2),
    "delete": lambda hook: hook.delete_heartbeat("hb"),
    "ping": lambda hook: hook.ping_heartbeat("hb"),
    "enable": lambda hook: hook.enable_heartbeat("hb"),
    "disable": lambda hook: hook.disable_heartbeat("hb"),
}


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one part not made real: this sandbox may not send DNS queries to its resolver, so
    the resolver's "no such host" answer is given here, for one reserved name only."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == UNRESOLVABLE:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def network_host(fault: Fault) -> str:
    return f"http://127.0.0.1:{closed_port()}" if fault.network == "refused" else f"https://{UNRESOLVABLE}"


def set_connection(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle, host: str | None = None) -> None:
    conn = {
        "conn_type": "opsgenie_heartbeat",
        "host": host or emulator.url,
        "password": emulator.api_key,
        "extra": {"connect_timeout": 1, "read_timeout": 1, "time_budget": TIME_BUDGET},
    }
    monkeypatch.setenv("AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", json.dumps(conn))


@pytest.mark.usefixtures("no_dns")
@pytest.mark.parametrize("fault", FAULTS, ids=[f.label for f in FAULTS])
@pytest.mark.parametrize("method", list(METHODS))
def test_fault_matrix(
    method: str, fault: Fault, opsgenie_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(monkeypatch, opsgenie_emulator, network_host(fault) if fault.network else None)
    if method != "create" and not fault.network:
        setup = OpsgenieHeartbeatHook()
        setup.create_heartbeat(name="hb", interval=1, interval_unit="hours")
    spec = fault_spec(fault, method)
    if spec:
        opsgenie_emulator.set_faults(spec)
    hook = OpsgenieHeartbeatHook()

    started = time.monotonic()
    if fault.expected == RECOVERED:
        assert spec is not None
        CALLS[method](hook)
        tries = [r["status"] for r in opsgenie_emulator.requests() if r["endpoint"] == method]
        if spec["kind"] == "latency":
            # The slow first attempt is still in flight (and logged when it ends): the
            # read timeout passed, and a second attempt succeeded.
            assert time.monotonic() - started >= 1.0
            assert tries == [METHODS[method]], tries
        else:
            assert len(tries) >= 2, tries  # the fault happened, then a retry
        assert tries[-1] in (METHODS[method], 409, 404), tries
    else:
        with pytest.raises(getattr(errors, fault.expected)) as err:
            CALLS[method](hook)
        assert opsgenie_emulator.api_key not in str(err.value)
    elapsed = time.monotonic() - started
    assert elapsed < TIME_BUDGET + 1.0

    state = opsgenie_emulator.heartbeats()
    if method == "create" and fault.expected == RECOVERED:
        assert list(state) == ["new"]  # a retried create never leaves two
    if method == "delete" and fault.expected == RECOVERED:
        assert "hb" not in state


@pytest.mark.usefixtures("no_dns")
@pytest.mark.parametrize("fault", FAULTS, ids=[f.label for f in FAULTS])
def test_the_callback_under_each_fault_keeps_the_run_green_and_its_deadline(
    fault: Fault,
    opsgenie_emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    run_dag: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

    set_connection(monkeypatch, opsgenie_emulator, network_host(fault) if fault.network else None)
    # The fault lasts, on every endpoint the callback uses: OpsGenie stays broken for the whole callback.
    specs = [fault_spec(fault, endpoint) for endpoint in ("ping", "get", "create", "update")]
    for spec in specs:
        if spec:
            spec.pop("times", None)
    opsgenie_emulator.set_faults(*[spec for spec in specs if spec])

    # Ping, ensure (GET, then create or update) and any retries, all inside one deadline.
    deadline = 3.0
    caplog.set_level(logging.INFO)
    started = time.monotonic()
    notifier = send_opsgenie_heartbeat(name="cb", ensure=True, interval=1, interval_unit="hours", deadline=deadline)
    notifier({"dag": DAG("cb", schedule=None), "run_id": "manual__1"})
    assert time.monotonic() - started < deadline * 1.05
    outcomes = [r.getMessage() for r in caplog.records if "OpsGenie heartbeat 'cb'" in r.getMessage()]
    assert any("Pinged" in m or "was not pinged" in m for m in outcomes), outcomes

    dag_id = "fault_" + "".join(ch if ch.isalnum() else "_" for ch in fault.label)
    source = f"""
import pendulum
from airflow.providers.common.compat.sdk import DAG, task
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

with DAG(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         on_success_callback=send_opsgenie_heartbeat(deadline={deadline})) as dag:
    @task
    def work():
        return 1
    work()
"""
    caplog.clear()
    # dag.test() reports success even when a DAG-level callback raises: the callback's own
    # report in the log shows that it ran, and kept the run's state out of it.
    assert run_dag(source, dag_id).state == "success"
    outcomes = [r.getMessage() for r in caplog.records if f"OpsGenie heartbeat {dag_id!r}" in r.getMessage()]
    assert any("Pinged" in m or "was not pinged" in m for m in outcomes), outcomes
    opsgenie_emulator.reset()
