"""A call's deadline bounds the whole call, whatever the server does; deadlines are per thread.

The faulty servers (``tests/faulty_servers.py``) are plain sockets on 127.0.0.1: one
trickles the body, one reads the request and never answers, one accepts and hangs, one
never even accepts the connection.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from faulty_servers import LIST_BODY, accept_and_hang, never_answer, serve, trickle_body

from airflow_provider_opsgenie_hb.api.client import HeartbeatClient
from airflow_provider_opsgenie_hb.api.errors import HeartbeatTimeoutError
from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook
from opsgenie_heartbeat_emulator import EmulatorHandle

DEADLINE = 1.5
SLACK = 0.15  # thread scheduling and interpreter start-up of the error path, on a busy 2-core machine


@pytest.fixture
def faulty_server(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from serve(request.param)


FAULTY = [trickle_body, never_answer, accept_and_hang, None]
FAULTY_IDS = ["trickles the body", "never answers", "accepts and hangs", "never accepts"]


@pytest.mark.parametrize("faulty_server", FAULTY, ids=FAULTY_IDS, indirect=True)
def test_a_deadline_block_bounds_the_call(faulty_server: str) -> None:
    # Default per-read timeout (15 s): only the deadline can end this in time.
    client = HeartbeatClient.opsgenie("k", faulty_server, time_budget=30)
    started = time.monotonic()
    with client.deadline(DEADLINE), pytest.raises(HeartbeatTimeoutError):
        client.list_heartbeats()
    assert time.monotonic() - started < DEADLINE * 1.05 + SLACK


@pytest.mark.parametrize("faulty_server", FAULTY, ids=FAULTY_IDS, indirect=True)
def test_the_time_budget_bounds_the_call(faulty_server: str) -> None:
    client = HeartbeatClient.opsgenie("k", faulty_server, time_budget=DEADLINE)
    started = time.monotonic()
    with pytest.raises(HeartbeatTimeoutError):
        client.ping_heartbeat("hb")
    assert time.monotonic() - started < DEADLINE * 1.05 + SLACK


@pytest.mark.parametrize("faulty_server", [trickle_body], ids=["trickles the body"], indirect=True)
def test_the_hooks_deadline_bounds_a_trickled_body(faulty_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.common.compat.sdk import AirflowException

    monkeypatch.setenv(
        "AIRFLOW_CONN_OG_TRICKLE",
        json.dumps({"conn_type": "opsgenie_heartbeat", "host": faulty_server, "password": "k"}),
    )
    hook = OpsgenieHeartbeatHook("og_trickle")
    started = time.monotonic()
    with hook.deadline(DEADLINE), pytest.raises(HeartbeatTimeoutError) as err:
        hook.ping_heartbeat("hb")
    assert time.monotonic() - started < DEADLINE * 1.05 + SLACK
    assert isinstance(err.value, AirflowException)
    assert isinstance(err.value.__cause__, HeartbeatTimeoutError)
    assert not isinstance(err.value.__cause__, AirflowException)  # the client's error is left as it was


def test_a_slow_body_that_arrives_in_time_is_read_whole() -> None:
    def slow(conn: socket.socket, stop: threading.Event) -> None:
        trickle_body(conn, stop, every=0.01, length=len(LIST_BODY))

    for url in serve(slow):
        client = HeartbeatClient.opsgenie("k", url, time_budget=5)
        assert client.list_heartbeats() == []


def test_overlapping_deadline_blocks_in_eight_threads_stay_apart(opsgenie_emulator: EmulatorHandle) -> None:
    """Four threads hold short deadlines around slow calls, four hold long ones around the same
    slow calls; they enter and leave in an interleaved order. Each thread meets its own
    deadline only, and afterwards the shared client has none left over."""
    client = HeartbeatClient.opsgenie(opsgenie_emulator.api_key, opsgenie_emulator.url, time_budget=30)
    client.create_heartbeat(name="slow", interval=1, interval_unit="hours")
    opsgenie_emulator.set_faults({"kind": "latency", "seconds": 0.6, "endpoint": "get"})
    barrier = threading.Barrier(8)
    outcomes: dict[int, str] = {}

    def work(i: int) -> None:
        short = i % 2 == 0
        barrier.wait()
        time.sleep(0.02 * i)  # enter in turn: every block overlaps the others
        try:
            with client.deadline(0.3 if short else 5.0):
                client.get_heartbeat("slow")
            outcomes[i] = "ok"
        except HeartbeatTimeoutError:
            outcomes[i] = "timeout"

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert outcomes == {i: "timeout" if i % 2 == 0 else "ok" for i in range(8)}

    opsgenie_emulator.clear_faults()
    time.sleep(0.4)  # every short deadline is over by now
    assert client.get_heartbeat("slow").name == "slow"  # nothing left behind in this thread
    elsewhere: list[str] = []
    other = threading.Thread(target=lambda: elsewhere.append(client.get_heartbeat("slow").name))
    other.start()
    other.join(10)
    assert elsewhere == ["slow"]


def test_a_deadline_reaches_the_workers_of_a_bulk_ensure(opsgenie_emulator: EmulatorHandle) -> None:
    client = HeartbeatClient.opsgenie(opsgenie_emulator.api_key, opsgenie_emulator.url, time_budget=30)
    opsgenie_emulator.set_faults({"kind": "latency", "seconds": 2, "endpoint": "get"})
    specs = [{"name": f"b{i}", "interval": 1, "interval_unit": "hours"} for i in range(4)]
    started = time.monotonic()
    with client.deadline(0.5):
        results = client.ensure_heartbeats(specs)
    assert time.monotonic() - started < 0.5 * 1.05 + SLACK
    assert all(isinstance(r, HeartbeatTimeoutError) for r in results)
    opsgenie_emulator.reset()
