"""A distinctive API key, DEBUG logging, hook + operators + callback through real Airflow:
the key is in no log record, exception, repr, rendered template field, XCom or log file."""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import AIRFLOW_VERSION
from packaging.version import Version

from airflow_provider_opsgenie_hb.api.errors import HeartbeatError
from opsgenie_heartbeat_emulator import EmulatorHandle, EmulatorServer

KEY = "SeCrEt-OpsGenie-Key-7c1d5e"  # distinctive, so any leak is found by a plain search

DAG_SOURCE = """
import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat
from airflow_provider_opsgenie_hb.operators.heartbeat import *

with DAG(dag_id="secrets_dag", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         on_success_callback=send_opsgenie_heartbeat(name="{{ dag.dag_id }}", ensure=True, interval=1,
                                                     interval_unit="hours")) as dag:
    ensure = OpsgenieEnsureHeartbeatOperator(task_id="ensure", name="{{ dag.dag_id }}", interval=1,
                                             interval_unit="hours", alert_tags=["{{ task.task_id }}"])
    get = OpsgenieGetHeartbeatOperator(task_id="get", name="{{ dag.dag_id }}")
    listing = OpsgenieListHeartbeatsOperator(task_id="list")
    ping = OpsgeniePingHeartbeatOperator(task_id="ping", name="{{ dag.dag_id }}")
    update = OpsgenieUpdateHeartbeatOperator(task_id="update", name="{{ dag.dag_id }}", interval=2)
    missing = OpsgenieDeleteHeartbeatOperator(task_id="delete_missing", name="absent", missing_ok=True)
    ensure >> get >> listing >> ping >> update >> missing
"""


@pytest.fixture
def keyed_emulator(monkeypatch: pytest.MonkeyPatch) -> Any:
    server = EmulatorServer(api_key=KEY).start()
    handle = EmulatorHandle(server.url, KEY)
    monkeypatch.setenv("AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", handle.connection_json(api_key=KEY))
    yield handle
    server.stop()


@pytest.mark.xfail(
    Version("3.0") <= AIRFLOW_VERSION < Version("3.1"),
    reason="Airflow 3.0's own in-process dag.test() writes the connection, key included, to its DEBUG "
    "log ({dag.py:1103}); this provider's own output is checked on every other version",
    strict=True,
)
def test_the_key_leaks_nowhere(
    keyed_emulator: EmulatorHandle,
    run_dag: Callable[..., Any],
    airflow_db: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    caplog.set_level(logging.DEBUG)
    logging.getLogger().setLevel(logging.DEBUG)
    seen: list[str] = []

    dag_run = run_dag(DAG_SOURCE, "secrets_dag")
    assert dag_run.state == "success"
    assert keyed_emulator.heartbeats()["secrets_dag"]["lastPingTime"]

    hook = OpsgenieHeartbeatHook()
    seen += [
        repr(hook),
        str(hook),
        repr(hook.client),
        repr(vars(hook.client)),
        repr(hook.client.transport.session.auth),
    ]
    for failing in (
        lambda: hook.get_heartbeat("ghost"),
        lambda: hook.create_heartbeat(name="secrets_dag", interval=1, interval_unit="hours"),
        lambda: hook.update_heartbeat("secrets_dag", interval=0),
    ):
        with pytest.raises(HeartbeatError) as err:
            failing()
        seen += [str(err.value), repr(err.value), repr(err.value.__dict__)]

    seen += [r.getMessage() for r in caplog.records] + [repr(r.args) for r in caplog.records]
    out, errs = capfd.readouterr()
    seen += [out, errs]
    assert sum("/v2/heartbeats" in text for text in seen) > 5  # the logs did record the traffic

    # Airflow's own stores: XCom values, rendered template fields, task logs.
    db = Path(airflow_db) / "airflow.db"
    stored = {}
    with sqlite3.connect(db) as conn:
        for table in ("xcom", "rendered_task_instance_fields", "task_instance", "dag_run"):
            stored[table] = repr(conn.execute(f"SELECT * FROM {table}").fetchall())
    seen += stored.values()
    # The stores really hold this run's values (rendered names, returned heartbeats).
    assert "secrets_dag" in stored["xcom"]
    assert "secrets_dag" in stored["rendered_task_instance_fields"]
    for path in Path(os.environ["AIRFLOW_HOME"]).rglob("*.log"):
        seen.append(path.read_text(errors="replace"))

    leaks = [text[:200] for text in seen if KEY in text]
    assert leaks == []


def test_secret_extras_are_masked(monkeypatch: pytest.MonkeyPatch, keyed_emulator: EmulatorHandle) -> None:
    from airflow.providers.common.compat.sdk import redact

    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    conn = json.loads(keyed_emulator.connection_json())
    conn["extra"] = {"api_token": "ExtraSecret-91b2f3", "region": None}
    monkeypatch.setenv("AIRFLOW_CONN_OG_EXTRA", json.dumps(conn))
    OpsgenieHeartbeatHook("og_extra").list_heartbeats()
    assert "ExtraSecret-91b2f3" not in str(redact("token ExtraSecret-91b2f3"))
    assert KEY not in str(redact(f"key {KEY}"))


def _echo_authorization(conn: Any, stop: Any) -> None:
    """A server (or a proxy) that refuses the key and echoes the Authorization header everywhere."""
    from faulty_servers import read_request

    request = read_request(conn)
    header = next(
        line.split(b":", 1)[1].strip().decode()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"authorization:")
    )
    body = json.dumps(
        {"message": f"Key invalid: {header}", "errors": {"authorization": header}, "requestId": header}
    ).encode()
    conn.sendall(
        f"HTTP/1.1 401 Refused {header}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Request-ID: {header}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


@pytest.mark.airflow_free
def test_a_server_that_echoes_the_key_does_not_put_it_in_the_error() -> None:
    from faulty_servers import serve

    from airflow_provider_opsgenie_hb.api.client import HeartbeatClient

    servers = serve(_echo_authorization)
    url = next(servers)
    try:
        clients = [
            (HeartbeatClient.opsgenie(KEY, url, max_attempts=1), [KEY]),
            (
                HeartbeatClient.jsm("ops@example.com", KEY, cloud_id="c", team_id="t", base_url=url, max_attempts=1),
                [KEY, base64.b64encode(f"ops@example.com:{KEY}".encode()).decode()],
            ),
        ]
        for client, secrets in clients:
            with pytest.raises(HeartbeatError) as err:
                client.list_heartbeats()
            shown = [str(err.value), repr(err.value), repr(err.value.__dict__), str(err.value.request_id)]
            assert err.value.status == 401
            assert "Key invalid: " in str(err.value)  # the server's own words are kept
            assert [secret for secret in secrets for text in shown if secret in text] == []
    finally:
        next(servers, None)


@pytest.mark.airflow_free
def test_a_pasted_key_with_a_line_break_is_used_without_it_and_never_shown(keyed_emulator: EmulatorHandle) -> None:
    from airflow_provider_opsgenie_hb.api.client import HeartbeatClient

    assert (
        HeartbeatClient.opsgenie(f" {KEY}\n", keyed_emulator.url).ping_heartbeat("any").request_id
    )  # the key as meant
    with pytest.raises(HeartbeatError) as err:
        HeartbeatClient.opsgenie(f"{KEY[:6]}\n{KEY[6:]}", keyed_emulator.url)
    assert err.value.errors == {"api_key": "must not contain whitespace or control characters"}
    assert KEY[:6] not in str(err.value)
