"""OpsgenieHeartbeatHook: connections in every form, errors as AirflowException, the Test button."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import AIRFLOW_VERSION, Backend
from packaging.version import Version

from airflow_provider_opsgenie_hb.api.errors import HeartbeatNotFoundError, HeartbeatValidationError
from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook
from opsgenie_heartbeat_emulator import EmulatorHandle

CONN_ENV = "AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT"


def _set_conn(monkeypatch: pytest.MonkeyPatch, value: str, conn_id: str = "opsgenie_heartbeat_default") -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)


def test_hook_from_json_connection_runs_all_methods(backend: Backend) -> None:
    hook = OpsgenieHeartbeatHook()
    assert hook.client.base_url.startswith(backend.emulator.url)
    hook.create_heartbeat(name="h", interval=1, interval_unit="hours")
    assert [h.name for h in hook.list_heartbeats()] == ["h"]
    hook.update_heartbeat("h", alert_priority="P1")
    hook.ping_heartbeat("h")
    assert hook.get_heartbeat("h").alert_priority == "P1"
    hook.disable_heartbeat("h")
    hook.enable_heartbeat("h")
    assert backend.heartbeats()["h"]["pinged"]
    hook.delete_heartbeat("h")
    assert backend.heartbeats() == {}


def test_hook_from_uri_connection(opsgenie_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"opsgenie-heartbeat://:{quote(opsgenie_emulator.api_key, safe='')}@{quote(opsgenie_emulator.url, safe='')}"
    _set_conn(monkeypatch, uri, "og_uri")
    hook = OpsgenieHeartbeatHook("og_uri")
    assert hook.client.base_url == opsgenie_emulator.url
    assert hook.list_heartbeats() == []


def test_uri_with_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(monkeypatch, "opsgenie-heartbeat://:k@api.eu.opsgenie.com:443", "og_port")
    assert OpsgenieHeartbeatHook("og_port").client.base_url == "https://api.eu.opsgenie.com:443"


def test_eu_region_and_timeouts_from_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {
        "conn_type": "opsgenie_heartbeat",
        "password": "k",
        "extra": {"region": "eu", "read_timeout": 3, "time_budget": "7"},
    }
    _set_conn(monkeypatch, json.dumps(conn), "og_eu")
    client = OpsgenieHeartbeatHook("og_eu").client
    assert client.base_url == "https://api.eu.opsgenie.com"
    assert client.read_timeout == 3
    assert client.time_budget == 7
    assert OpsgenieHeartbeatHook("og_eu", time_budget=2).client.time_budget == 2


def test_form_style_extras_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "opsgenie_heartbeat", "password": "k", "extra": {"extra__opsgenie_heartbeat__region": "eu"}}
    _set_conn(monkeypatch, json.dumps(conn), "og_form")
    assert OpsgenieHeartbeatHook("og_form").client.base_url == "https://api.eu.opsgenie.com"


@pytest.mark.parametrize(
    ("conn", "field"),
    [
        ({"conn_type": "opsgenie_heartbeat"}, "password"),
        ({"conn_type": "opsgenie_heartbeat", "password": "k", "host": "http://example.com"}, "host"),
        ({"conn_type": "opsgenie_heartbeat", "password": "k", "host": "https://a b"}, "host"),
        ({"conn_type": "opsgenie_heartbeat", "password": "k", "extra": {"region": "mars"}}, "region"),
        ({"conn_type": "opsgenie_heartbeat", "password": "k", "extra": {"read_timeout": "soon"}}, "read_timeout"),
    ],
)
def test_bad_connections_name_the_field(monkeypatch: pytest.MonkeyPatch, conn: dict[str, object], field: str) -> None:
    from airflow.providers.common.compat.sdk import AirflowException

    _set_conn(monkeypatch, json.dumps(conn), "og_bad")
    with pytest.raises(HeartbeatValidationError) as err:
        _ = OpsgenieHeartbeatHook("og_bad").client
    assert field in err.value.errors
    assert isinstance(err.value, AirflowException)


def test_errors_are_airflow_exceptions_of_the_same_type(opsgenie_heartbeat_conn: EmulatorHandle) -> None:
    from airflow.providers.common.compat.sdk import AirflowException

    with pytest.raises(HeartbeatNotFoundError) as err:
        OpsgenieHeartbeatHook().get_heartbeat("ghost")
    assert isinstance(err.value, AirflowException)
    assert type(err.value).__name__ == "HeartbeatNotFoundError"
    assert err.value.status == 404
    # Raised from the client's error, which keeps its own class (nothing is changed in place).
    assert type(err.value.__cause__) is HeartbeatNotFoundError
    assert err.value.request_id == err.value.__cause__.request_id
    assert str(err.value) == str(err.value.__cause__)


def test_test_connection(opsgenie_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(monkeypatch, opsgenie_emulator.connection_json(), "og_ok")
    ok, message = OpsgenieHeartbeatHook("og_ok").test_connection()
    assert ok
    assert "0 heartbeat(s)" in message

    _set_conn(monkeypatch, opsgenie_emulator.connection_json(api_key="wrong"), "og_wrong")
    ok, message = OpsgenieHeartbeatHook("og_wrong").test_connection()
    assert not ok
    assert "401" in message

    assert opsgenie_emulator.ping_only_key
    _set_conn(monkeypatch, opsgenie_emulator.connection_json(api_key=opsgenie_emulator.ping_only_key), "og_ping")
    ok, message = OpsgenieHeartbeatHook("og_ping").test_connection()
    assert ok
    assert "may only ping" in message


def test_key_is_masked_and_not_in_repr(
    opsgenie_heartbeat_conn: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.providers.common.compat.sdk import redact

    hook = OpsgenieHeartbeatHook()
    caplog.set_level(logging.DEBUG)
    hook.list_heartbeats()
    key = opsgenie_heartbeat_conn.api_key
    assert key not in repr(hook)
    assert key not in repr(hook.client)
    redacted = redact(f"the key is {key}")
    assert key not in redacted
    assert redacted.endswith(" is ***")
    assert not [r for r in caplog.records if key in r.getMessage()]


def test_providers_manager_finds_the_connection_type_and_hook() -> None:
    from airflow.providers_manager import ProvidersManager

    # Any warning while loading our provider (bad provider info, deprecated hook API) fails.
    with warnings.catch_warnings():
        if Version("3") > AIRFLOW_VERSION:
            # Airflow 2's own hooks warn as they import (Flask's _app_ctx_stack): only this provider's fail here.
            warnings.filterwarnings("error", module="airflow_provider_opsgenie_hb")
        else:
            warnings.simplefilter("error")
        manager = ProvidersManager()
        providers = manager.providers
        behaviours = manager.field_behaviours
        try:
            from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

            hooks = ProvidersManagerTaskRuntime().hooks
        except ImportError:  # Airflow < 3.2: one manager for both
            hooks = manager.hooks
    # The form's extra fields as the API server sees them (it stands in for WTForms before 3.2).
    widgets = _connection_form_fields()
    assert "airflow-provider-opsgenie-hb" in providers
    hook_info = hooks["opsgenie_heartbeat"]
    assert hook_info is not None
    assert hook_info.hook_class_name.endswith("OpsgenieHeartbeatHook")
    assert hook_info.connection_id_attribute_name == "opsgenie_heartbeat_conn_id"
    assert {"region", "connect_timeout", "read_timeout", "time_budget"} <= widgets["opsgenie_heartbeat"]
    assert behaviours["opsgenie_heartbeat"]["relabeling"]["password"] == "API key (GenieKey)"
    assert "login" in behaviours["opsgenie_heartbeat"]["hidden_fields"]
    jsm_hook = hooks["jsm_ops_heartbeat"]
    assert jsm_hook is not None
    assert jsm_hook.hook_class_name.endswith("JsmOpsHeartbeatHook")
    assert {"cloud_id", "team_id"} <= widgets["jsm_ops_heartbeat"]
    assert behaviours["jsm_ops_heartbeat"]["relabeling"]["login"] == "Account email"
    assert "airflow_provider_opsgenie_hb.notifications.heartbeat.OpsgenieHeartbeatNotifier" in manager.notification


def _connection_form_fields() -> dict[str, set[str]]:
    """Connection type -> the extra fields of its form, from the API server's own service."""
    if Version("3") > AIRFLOW_VERSION:
        # Airflow 2's webserver builds the form (WTForms) from these widgets, keyed extra__<type>__<field>.
        from airflow.providers_manager import ProvidersManager

        fields: dict[str, set[str]] = {}
        for key in ProvidersManager().connection_form_widgets:
            _, connection_type, field = key.split("__", 2)
            fields.setdefault(connection_type, set()).add(field)
        return fields
    if Version("3.2") > AIRFLOW_VERSION:
        # Before 3.2 the API server stands in for WTForms only while its providers manager loads
        # hooks for the first time, which a test process has done long before: the form is
        # checked through the real API server there (tests/e2e, the UI test).
        pytest.skip("before Airflow 3.2 the connection form is checked through the API server (tests/e2e)")
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    return {m.connection_type: set(m.extra_fields or ()) for m in HookMetaService.hook_meta_data()}


def test_connection_from_a_secrets_backend(opsgenie_emulator: EmulatorHandle, tmp_path: Path, airflow_db: str) -> None:
    """Airflow's local-filesystem secrets backend stands in for Vault, AWS Secrets Manager and the like."""
    secrets_file = tmp_path / "connections.json"
    secrets_file.write_text(json.dumps({"og_from_backend": json.loads(opsgenie_emulator.connection_json())}))
    env = {
        **os.environ,
        "AIRFLOW__SECRETS__BACKEND": "airflow.secrets.local_filesystem.LocalFilesystemBackend",
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"connections_file_path": str(secrets_file)}),
    }
    code = (
        "from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook\n"
        "hook = OpsgenieHeartbeatHook('og_from_backend')\n"
        "hook.create_heartbeat(name='from-backend', interval=1, interval_unit='hours')\n"
        "print(hook.client.base_url)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert opsgenie_emulator.url in result.stdout
    assert "from-backend" in opsgenie_emulator.heartbeats()
