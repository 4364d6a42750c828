"""What the reliability suite runs: faults x hook methods, and bad inputs x outcome.

The tests are parametrised from these tables, and the "Reliability" section of docs/reliability.md is
generated from them (``python tests/reliability/report.py``), so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RECOVERED = "retried, then succeeded"

# The hook's eight methods, each as (how to call it, the status it succeeds with).
METHODS: dict[str, int] = {
    "create": 201,
    "list": 200,
    "get": 200,
    "update": 200,
    "delete": 200,
    "ping": 202,
    "enable": 200,
    "disable": 200,
}


@dataclass(frozen=True)
class Fault:
    label: str
    expected: str  # RECOVERED, or the name of the typed error raised within the time budget
    spec: dict[str, Any] | None = None  # an emulator fault; None when the fault is in the network
    network: str | None = None  # "refused" or "unresolvable"


FAULTS: list[Fault] = [
    # OpsGenie's own 429: THROTTLED, reason ACCOUNT, a 60 s window (the emulator's defaults).
    Fault(
        "429 with OpsGenie's rate-limit headers (60 s window)", RECOVERED, {"kind": "status", "status": 429, "times": 2}
    ),
    Fault("429s for longer than the time budget", "HeartbeatRateLimitedError", {"kind": "rate_limit", "rate": 0.001}),
    Fault(
        "429 with Retry-After",
        RECOVERED,
        {"kind": "status", "status": 429, "times": 1, "headers": {"Retry-After": "1"}},
    ),
    Fault("500", RECOVERED, {"kind": "status", "status": 500, "times": 2}),
    Fault("502", RECOVERED, {"kind": "status", "status": 502, "times": 2}),
    Fault("503", RECOVERED, {"kind": "status", "status": 503, "times": 2}),
    Fault("latency past the read timeout", RECOVERED, {"kind": "latency", "seconds": 3, "times": 1}),
    Fault("connection dropped mid-reply", RECOVERED, {"kind": "drop", "times": 1}),
    Fault("connection refused", "HeartbeatConnectionError", network="refused"),
    Fault("unresolvable host", "HeartbeatConnectionError", network="unresolvable"),
    Fault(
        "200 whose body is not JSON",
        "HeartbeatResponseError",
        {"kind": "body", "body": "<html>busy</html>", "content_type": "text/html"},
    ),
    Fault("2xx with an unexpected shape", "HeartbeatResponseError", {"kind": "body", "body": '{"unexpected": true}'}),
]


def fault_spec(fault: Fault, method: str) -> dict[str, Any] | None:
    """The emulator fault for one cell: aimed at the method, body faults with its success status."""
    if fault.spec is None:
        return None
    spec = {**fault.spec, "endpoint": method}
    if spec["kind"] == "body":
        spec["status"] = METHODS[method]
    return spec


@dataclass(frozen=True)
class BadInput:
    label: str
    call: str  # "create", "get", "ping", "update" or "connection"
    kwargs: dict[str, Any] = field(default_factory=dict)
    field: str = ""  # the field the error must name


TOO_LONG = "x" * 201

BAD_INPUTS: list[BadInput] = [
    BadInput("empty name", "get", {"name": ""}, "name"),
    BadInput("blank name", "ping", {"name": "   "}, "name"),
    BadInput("201-character name", "create", {"name": TOO_LONG}, "name"),
    BadInput("name with a newline", "ping", {"name": "nightly\nexport"}, "name"),
    BadInput("name with a NUL", "get", {"name": "a\x00b"}, "name"),
    BadInput("name '..'", "get", {"name": ".."}, "name"),
    BadInput("interval 0", "create", {"interval": 0}, "interval"),
    BadInput("interval -1", "create", {"interval": -1}, "interval"),
    BadInput("interval 1.5", "create", {"interval": 1.5}, "interval"),
    BadInput('interval "5"', "create", {"interval": "5"}, "interval"),
    BadInput("interval True", "create", {"interval": True}, "interval"),
    BadInput("interval None", "create", {"interval": None}, "interval"),
    BadInput("interval 2**31", "create", {"interval": 2**31}, "interval"),
    BadInput('unit "weeks"', "create", {"interval_unit": "weeks"}, "interval_unit"),
    BadInput('unit "Hours"', "create", {"interval_unit": "Hours"}, "interval_unit"),
    BadInput('priority "p1"', "create", {"alert_priority": "p1"}, "alert_priority"),
    BadInput('priority "P6"', "update", {"alert_priority": "P6"}, "alert_priority"),
    BadInput("21 tags", "create", {"alert_tags": [f"t{i}" for i in range(21)]}, "alert_tags"),
    BadInput("a 51-character tag", "update", {"alert_tags": ["x" * 51]}, "alert_tags"),
    BadInput("a 131-character message", "create", {"alert_message": "m" * 131}, "alert_message"),
    BadInput("a 10,001-character description", "create", {"description": "d" * 10_001}, "description"),
    BadInput("owner team {}", "create", {"owner_team": {}}, "owner_team"),
    BadInput('owner team {"slug": "ops"}', "create", {"owner_team": {"slug": "ops"}}, "owner_team"),
    BadInput('owner team {"name": ""}', "update", {"owner_team": {"name": ""}}, "owner_team"),
    BadInput("owner team 42", "create", {"owner_team": 42}, "owner_team"),
    BadInput("connection without a key", "connection", {"password": None}, "password"),
    BadInput("connection with a malformed host", "connection", {"host": "https://api opsgenie com"}, "host"),
    BadInput("connection with an http:// host", "connection", {"host": "http://api.opsgenie.com"}, "host"),
    BadInput("connection with an unknown region", "connection", {"extra": {"region": "apac"}, "host": None}, "region"),
]

AWKWARD_NAMES: list[str] = [
    "a/b",
    "../admin",
    "..a",
    "100%",
    "%2F",
    "what?",
    "#fragment",
    "with spaces",
    "ünïcødé ✓",
    "日本語の名前",
    "x" * 200,
]
