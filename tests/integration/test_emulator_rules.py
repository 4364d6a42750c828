"""The client's field rules against the emulator's, which are written apart from them.

What the client refuses before sending, the emulator refuses too, naming the same field;
what the emulator accepts, the client sends. The few places where the client is stricter
than OpsGenie on purpose are listed, with the reason, in ``CLIENT_STRICTER``.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_opsgenie_hb.api.client import HeartbeatClient
from airflow_provider_opsgenie_hb.api.errors import HeartbeatValidationError
from airflow_provider_opsgenie_hb.api.schema import API_FIELD_NAMES, to_api_fields
from opsgenie_heartbeat_emulator import EmulatorHandle

BASE = {"name": "rules", "interval": 1, "interval_unit": "hours", "enabled": True}
_SNAKE = {camel: snake for snake, camel in API_FIELD_NAMES.items()}

# Inputs the client refuses although OpsGenie (as far as the reference knows) would take
# them in a create body; each is refused for the user's sake, not the service's.
CLIENT_STRICTER: dict[str, tuple[dict[str, Any], str]] = {
    "name '..'": ({"name": ".."}, "created, it could never be addressed: a URL path cannot carry '..'"),
    "name '.'": ({"name": "."}, "created, it could never be addressed: a URL path cannot carry '.'"),
    "name with a newline": ({"name": "nightly\nexport"}, "control characters break logs and alert texts"),
    "name with a NUL": ({"name": "a\x00b"}, "control characters break logs and alert texts"),
    "blank name": ({"name": "   "}, "a name of spaces is a mistake in a DAG, not a heartbeat"),
    "blank tag": ({"alert_tags": ["ok", "  "]}, "a blank tag is a mistake in a DAG; OpsGenie's handling is unknown"),
    "owner team with an unknown key": (
        {"owner_team": {"name": "ops", "slug": "ops"}},
        "an unknown key is most likely a typo of id or name",
    ),
}

# Inputs both sides take: the limits themselves, and awkward but legal values.
ACCEPTED: dict[str, dict[str, Any]] = {
    "200-character name": {"name": "x" * 200},
    "name with spaces, periods and a slash": {"name": "nightly export v1.2/eu"},
    "unicode name": {"name": "ünïcødé ✓ 日本語"},
    "interval 1": {"interval": 1},
    "interval 2**31 - 1": {"interval": 2**31 - 1},
    "each unit": {"interval_unit": "days"},
    "10,000-character description": {"description": "d" * 10_000},
    "empty description": {"description": ""},
    "130-character message": {"alert_message": "m" * 130},
    "20 tags of 50 characters": {"alert_tags": [f"{i:02d}" + "t" * 48 for i in range(20)]},
    "no tags": {"alert_tags": []},
    "each priority": {"alert_priority": "P5"},
    "owner team by id": {"owner_team": {"id": "6c7be998"}},
    "owner team by id and name": {"owner_team": {"id": "6c7be998", "name": "ops"}},
    "owner team as a name": {"owner_team": "ops"},
    "disabled": {"enabled": False},
}


def _reliability_matrix() -> Any:
    """The reliability suite's table of bad inputs (one table for both suites)."""
    path = Path(__file__).resolve().parent.parent / "reliability" / "matrix.py"
    spec = importlib.util.spec_from_file_location("reliability_matrix", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


# The reliability suite's refusals of heartbeat fields, but for those the client makes on purpose
# (checked below, in test_where_the_client_is_stricter_it_is_on_purpose_and_named).
CREATE_REFUSALS = [
    bad
    for bad in _reliability_matrix().BAD_INPUTS
    if bad.call in ("create", "get", "ping") and bad.label not in CLIENT_STRICTER
]


def _emulator_verdict(emulator: EmulatorHandle, fields: dict[str, Any]) -> tuple[int, set[str]]:
    """Send the body the client would build, as it is, and read the 422's fields back."""
    response = requests.post(
        emulator.url + "/v2/heartbeats",
        json=to_api_fields(fields),
        headers={"Authorization": f"GenieKey {emulator.api_key}"},
        timeout=10,
    )
    errors = response.json().get("errors") or {}
    return response.status_code, {_SNAKE.get(k, k) for k in errors}


def _client_verdict(client: HeartbeatClient, fields: dict[str, Any]) -> set[str]:
    try:
        client.create_heartbeat(**fields)
    except HeartbeatValidationError as err:
        return set(err.errors)
    return set()


@pytest.fixture
def client(opsgenie_emulator: EmulatorHandle) -> HeartbeatClient:
    return HeartbeatClient.opsgenie(opsgenie_emulator.api_key, opsgenie_emulator.url, time_budget=10)


@pytest.mark.parametrize("bad", CREATE_REFUSALS, ids=[b.label for b in CREATE_REFUSALS])
def test_what_the_client_refuses_the_emulator_refuses_with_the_same_field(
    bad: Any, client: HeartbeatClient, opsgenie_emulator: EmulatorHandle
) -> None:
    fields = {**BASE, **bad.kwargs}
    refused = _client_verdict(client, fields)
    assert refused == {bad.field}
    assert opsgenie_emulator.requests() == []  # refused before sending
    status, named = _emulator_verdict(opsgenie_emulator, fields)
    assert (status, named) == (422, {bad.field})


@pytest.mark.parametrize("case", list(ACCEPTED), ids=list(ACCEPTED))
def test_what_the_emulator_accepts_the_client_sends(
    case: str, client: HeartbeatClient, opsgenie_emulator: EmulatorHandle
) -> None:
    fields = {**BASE, **ACCEPTED[case]}
    status, named = _emulator_verdict(opsgenie_emulator, fields)
    assert (status, named) == (201, set())
    opsgenie_emulator.reset()
    created = client.create_heartbeat(**fields)
    assert created.name == fields["name"]
    assert [r["status"] for r in opsgenie_emulator.requests()] == [201]


@pytest.mark.parametrize("case", list(CLIENT_STRICTER), ids=list(CLIENT_STRICTER))
def test_where_the_client_is_stricter_it_is_on_purpose_and_named(
    case: str, client: HeartbeatClient, opsgenie_emulator: EmulatorHandle
) -> None:
    """The emulator (like OpsGenie, as far as is known) takes these; the client refuses them,
    naming the field, before anything is sent."""
    fields = {**BASE, **CLIENT_STRICTER[case][0]}
    refused = _client_verdict(client, fields)
    assert len(refused) == 1
    assert opsgenie_emulator.requests() == []
    status, named = _emulator_verdict(opsgenie_emulator, fields)
    assert (status, named) == (201, set())


def test_the_emulator_refuses_what_the_reference_says_opsgenie_refuses(opsgenie_emulator: EmulatorHandle) -> None:
    """Checked on the emulator alone, in OpsGenie's camelCase, so a field the client would
    never send wrong is still covered."""
    cases = {
        "name": "",
        "interval": 0,
        "intervalUnit": "weeks",
        "enabled": "yes",
        "alertPriority": "P0",
        "ownerTeam": {},
        "alertMessage": "m" * 131,
        "alertTags": ["t"] * 21,
        "description": "d" * 10_001,
    }
    for key, value in cases.items():
        body = {"name": "x", "interval": 1, "intervalUnit": "hours", "enabled": True, key: value}
        response = requests.post(
            opsgenie_emulator.url + "/v2/heartbeats",
            json=body,
            headers={"Authorization": f"GenieKey {opsgenie_emulator.api_key}"},
            timeout=10,
        )
        assert response.status_code == 422, key
        assert list(response.json()["errors"]) == [key]
    missing = requests.post(
        opsgenie_emulator.url + "/v2/heartbeats",
        json={"name": "x"},
        headers={"Authorization": f"GenieKey {opsgenie_emulator.api_key}"},
        timeout=10,
    )
    assert set(missing.json()["errors"]) == {"interval", "intervalUnit", "enabled"}


def test_the_emulator_imports_nothing_from_the_client_side() -> None:
    """It speaks only HTTP: its modules import the standard library, requests/pytest for the
    test fixtures, and each other."""
    import opsgenie_heartbeat_emulator as emulator

    folder = Path(emulator.__file__).parent
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("airflow_provider_opsgenie_hb"):
                    assert name.startswith("opsgenie_heartbeat_emulator"), f"{path.name} imports {name}"
