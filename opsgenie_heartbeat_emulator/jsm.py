"""The Jira Service Management Operations heartbeat routes of the emulator.

``/jsm/ops/api/{cloudId}/v1/teams/{teamId}/heartbeats`` (list, create, update, delete) and
``.../heartbeats/ping``, with the name as ``?name=``, HTTP Basic auth (email, API token),
bare heartbeats in answers, ``status`` instead of ``expired`` and errors as
``{"errors": [{"title", "code"}]}``, as in the JSM Operations OpenAPI.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qs, unquote

from opsgenie_heartbeat_emulator.state import EmulatorState

PREFIX = "/jsm/ops/api/"
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


def route(method: str, path: str) -> tuple[str | None, str | None]:
    """(endpoint, team id) for a JSM path; endpoint None when no route matches."""
    parts = [unquote(p) for p in path[len(PREFIX) :].split("/")]
    if len(parts) < 5 or parts[1:3] != ["v1", "teams"] or parts[4] != "heartbeats" or not parts[0]:
        return None, None
    team = parts[3]
    if len(parts) == 5 or parts[5:] == [""]:
        endpoint = {"GET": "list", "POST": "create", "PATCH": "update", "DELETE": "delete"}.get(method)
        return endpoint or "method_not_allowed", team
    if parts[5:] == ["ping"]:
        return ("ping" if method == "POST" else "method_not_allowed"), team
    return None, team


def query_params(raw_query: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}


def basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme != "Basic" or not encoded:
        return None
    try:
        email, sep, token = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (email, token) if sep else None


def error(status: int, title: str, code: str) -> tuple[int, dict[str, Any]]:
    return status, {"errors": [{"title": title, "code": code}]}


def public(hb: dict[str, Any], team: str) -> dict[str, Any]:
    """A stored heartbeat in JSM's shape."""
    if not hb["enabled"]:
        status = "Off"
    elif hb["expired"]:
        status = "Unresponsive"
    elif "lastPingTime" not in hb:
        status = "Pending"
    else:
        status = "Responsive"
    return {
        "name": hb["name"],
        "description": hb.get("description", ""),
        "interval": hb["interval"],
        "intervalUnit": str(hb["intervalUnit"]).capitalize(),
        "enabled": hb["enabled"],
        "status": status,
        "ownerTeamId": team,
        "alertMessage": hb["alertMessage"],
        "alertTags": list(hb["alertTags"]),
        "alertPriority": hb["alertPriority"],
    }


def list_page(state: EmulatorState, team: str, query: dict[str, str], path: str) -> tuple[int, dict[str, Any]]:
    try:
        offset = int(query.get("offset", "0"))
        size = int(query.get("size", str(DEFAULT_PAGE_SIZE)))
    except ValueError:
        return error(422, "offset and size must be whole numbers", "InvalidParameter")
    if not 1 <= size <= MAX_PAGE_SIZE or offset < 0:
        return error(422, f"size must be between 1 and {MAX_PAGE_SIZE}, offset >= 0", "InvalidParameter")
    wanted = query.get("name")
    with state.lock:
        # The filter matches part of a name (like a search box): clients must pick the exact one.
        matching = sorted(
            (hb for hb in state.heartbeats.values() if wanted is None or wanted in hb["name"]),
            key=lambda hb: hb["name"],
        )
        page = [public(hb, team) for hb in matching[offset : offset + size]]
    body: dict[str, Any] = {"values": page, "links": {}}
    if offset + size < len(matching):
        body["links"]["next"] = f"{path}?offset={offset + size}&size={size}" + (
            f"&name={wanted}" if wanted is not None else ""
        )
    return 200, body
