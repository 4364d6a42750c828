"""Pytest fixtures that run the emulator in-process, registered through pytest's ``pytest11``
entry point: installing the package makes them available to every test suite.

- ``opsgenie_emulator_server``: one emulator for the session (:class:`EmulatorHandle`).
- ``opsgenie_emulator``: the same emulator, reset before each test.
- ``opsgenie_heartbeat_conn``: also sets ``AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT`` to it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from opsgenie_heartbeat_emulator.control import EmulatorHandle
from opsgenie_heartbeat_emulator.server import EmulatorServer


@pytest.fixture(scope="session")
def opsgenie_emulator_server() -> Iterator[EmulatorHandle]:
    api_key = "emulator-" + secrets.token_hex(8)
    ping_only_key = "emulator-ping-" + secrets.token_hex(8)
    server = EmulatorServer("127.0.0.1", 0, api_key=api_key, ping_only_key=ping_only_key).start()
    try:
        yield EmulatorHandle(server.url, api_key, ping_only_key)
    finally:
        server.stop()


@pytest.fixture
def opsgenie_emulator(opsgenie_emulator_server: EmulatorHandle) -> EmulatorHandle:
    opsgenie_emulator_server.reset()
    return opsgenie_emulator_server


@pytest.fixture
def opsgenie_heartbeat_conn(opsgenie_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    monkeypatch.setenv("AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", opsgenie_emulator.connection_json())
    return opsgenie_emulator
