"""The services a client can talk to, as values: where each operation goes, and how to sign in.

A :class:`Backend` holds a base URL, an auth and the routes of the eight operations. OpsGenie
(:func:`opsgenie_backend`) puts the heartbeat's name in the path and answers inside ``data``;
Jira Service Management Operations (:func:`jsm_backend`), OpsGenie's successor, keeps a
team's heartbeats in one collection, names one with ``?name=``, has no get-by-name (a list
filtered by name) and no enable/disable endpoints (a PATCH of ``enabled``), and says
``status: Unresponsive`` for expired. The client reads these differences off the value.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from airflow_provider_opsgenie_hb.api.errors import HeartbeatValidationError
from airflow_provider_opsgenie_hb.api.schema import check_fields
from airflow_provider_opsgenie_hb.api.transport import SecretAuth

REGION_BASE_URLS = {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}
DEFAULT_BASE_URL = REGION_BASE_URLS["us"]


def resolve_base_url(host: str | None = None, region: str | None = None) -> str:
    """The API's base URL from a connection's host and region.

    An empty host means the region's OpsGenie host (US by default). A host without a
    scheme gets ``https://``. Plain ``http://`` is refused unless the host is a loopback
    address (such as the local emulator), so an API key never crosses a network in clear.
    """
    if region is not None and region not in REGION_BASE_URLS:
        raise HeartbeatValidationError(
            f"region must be one of {', '.join(REGION_BASE_URLS)}, got {region!r}",
            errors={"region": "unknown region"},
        )
    host = (host or "").strip()
    if not host:
        return REGION_BASE_URLS[region or "us"]
    if region is not None:
        raise HeartbeatValidationError(
            "give either a host or a region, not both: the host already names the server",
            errors={"host": "conflicts with region"},
        )
    url = host if "://" in host else f"https://{host}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise HeartbeatValidationError(f"host is not a valid URL: {exc}", errors={"host": "malformed"}) from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not _HOSTNAME.fullmatch(parts.hostname)
        or parts.query
        or parts.fragment
        or any(ch.isspace() for ch in url)
    ):
        raise HeartbeatValidationError(
            "host must look like https://api.opsgenie.com (scheme http or https, a host name, no query or fragment)",
            errors={"host": "malformed"},
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise HeartbeatValidationError(
            "host must use https://; plain http:// is only allowed for a loopback address "
            "such as the local emulator (127.0.0.1, localhost, ::1)",
            errors={"host": "http is only allowed on loopback"},
        )
    return url.rstrip("/")


_HOSTNAME = re.compile(r"[A-Za-z0-9.-]+|[0-9A-Fa-f:.]+")


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


class GenieKeyAuth(requests.auth.AuthBase):
    """Adds ``Authorization: GenieKey ...``; its repr never shows the key."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"GenieKey {self._api_key}"
        return request

    def __repr__(self) -> str:
        return "GenieKeyAuth(***)"

    def secrets(self) -> tuple[str, ...]:
        return (self._api_key,)


class BasicAuth(requests.auth.HTTPBasicAuth):
    """HTTP Basic (``email:api_token``); its repr never shows the token."""

    def __repr__(self) -> str:
        return "BasicAuth(***)"

    def secrets(self) -> tuple[str, ...]:
        username, password = str(self.username), str(self.password)  # BasicAuth is given str
        header = base64.b64encode(f"{username}:{password}".encode("latin1", errors="replace")).decode()
        return (password, header)  # the token, and the header as requests sends it


def credential(value: str, field: str) -> str:
    """A key as pasted, without the spaces or line break around it; refused (never shown) when
    whitespace or control characters are left inside, which no key has and no header may carry."""
    value = value.strip()
    if any(char.isspace() or not char.isprintable() for char in value):
        raise HeartbeatValidationError(
            f"{field} must not contain whitespace or control characters",
            errors={field: "must not contain whitespace or control characters"},
        )
    return value


JSM_BASE_URL = "https://api.atlassian.com"
#: the operations of the Heartbeat API
OPERATIONS = ("create", "list", "get", "update", "delete", "ping", "enable", "disable")


@dataclass(frozen=True)
class Route:
    """Where one operation goes: method, path under the base URL, query, and the status that means success."""

    method: str
    path: str
    ok: int = 200
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Backend:
    """A Heartbeat API and the credentials for it.

    :param label: the service's name, for messages.
    :param base_url: the API's base URL.
    :param auth: adds the credentials to each request.
    :param routes: operation -> (method, path template, success status); ``{name}`` in a path
        is the heartbeat's name as one path segment.
    :param name_in_query: the name travels as ``?name=`` rather than in the path.
    :param envelope: the key that holds a heartbeat in an answer (None: the answer itself).
    :param list_items: the keys that lead to the list of heartbeats in a list answer.
    :param page_size: the list is paged ``offset``/``size`` (None: one answer holds all).
    :param lookup_by_list: get reads the list filtered by name (no get endpoint).
    :param toggle_by_patch: enable and disable are a PATCH of ``enabled`` (no endpoints of their own).
    :param scope: what the heartbeats belong to beyond the account (JSM: the team id).
    :param unsupported: fields the service has no equivalent for, and why.
    """

    label: str
    base_url: str
    auth: SecretAuth
    routes: Mapping[str, tuple[str, str, int]]
    name_in_query: bool = False
    envelope: str | None = "data"
    list_items: tuple[str, ...] = ("data", "heartbeats")
    page_size: int | None = None
    lookup_by_list: bool = False
    toggle_by_patch: bool = False
    scope: str = ""
    unsupported: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Backend({self.label}, {self.base_url!r})"

    def route(self, operation: str, name: str | None = None) -> Route:
        """The route of ``operation`` on the heartbeat ``name`` (checked, and encoded as one segment)."""
        method, template, ok = self.routes[operation]
        if name is None:
            return Route(method, template, ok)
        if self.name_in_query:
            check_name(name)
            return Route(method, template, ok, {"name": name})
        return Route(method, _named_path(template, name), ok)

    @property
    def account(self) -> str:
        """A hash of the base URL, scope and credentials: tells accounts apart, reveals no secret."""
        identity = "\n".join([self.base_url, self.scope, *self.auth.secrets()])
        return hashlib.sha256(identity.encode()).hexdigest()[:32]


def check_name(name: Any) -> None:
    """Raise :class:`HeartbeatValidationError` unless ``name`` is a valid heartbeat name."""
    check_fields("invalid heartbeat", {"name": name}, required=("name",))


@lru_cache(maxsize=1024)
def _encoded_path(template: str, name: str) -> str:
    check_name(name)
    return template.replace("{name}", quote(name, safe=""))


def _named_path(template: str, name: Any) -> str:
    if not isinstance(name, str):
        check_name(name)  # raises, naming the field
    return _encoded_path(template, name)


_OPSGENIE_ROUTES = {
    "create": ("POST", "/v2/heartbeats", 201),
    "list": ("GET", "/v2/heartbeats", 200),
    "get": ("GET", "/v2/heartbeats/{name}", 200),
    "update": ("PATCH", "/v2/heartbeats/{name}", 200),
    "delete": ("DELETE", "/v2/heartbeats/{name}", 200),
    "ping": ("POST", "/v2/heartbeats/{name}/ping", 202),
    "enable": ("POST", "/v2/heartbeats/{name}/enable", 200),
    "disable": ("POST", "/v2/heartbeats/{name}/disable", 200),
}


def opsgenie_backend(api_key: str, base_url: str = DEFAULT_BASE_URL) -> Backend:
    """OpsGenie: ``Authorization: GenieKey <api_key>``, the name in the path, answers under ``data``."""
    if not isinstance(api_key, str) or not api_key.strip():
        raise HeartbeatValidationError(
            "api_key must be a non-empty string (the OpsGenie integration's API key)",
            errors={"api_key": "is required"},
        )
    return Backend(
        "OpsGenie", resolve_base_url(base_url), GenieKeyAuth(credential(api_key, "api_key")), _OPSGENIE_ROUTES
    )


def jsm_backend(email: str, api_token: str, *, cloud_id: str, team_id: str, base_url: str = JSM_BASE_URL) -> Backend:
    """Jira Service Management Operations: HTTP Basic (account email, API token), a team's collection.

    Heartbeats live at ``{base}/jsm/ops/api/{cloud_id}/v1/teams/{team_id}/heartbeats``.
    """
    problems = {
        key: "is required"
        for key, value in (("email", email), ("api_token", api_token), ("cloud_id", cloud_id), ("team_id", team_id))
        if not isinstance(value, str) or not value.strip()
    }
    if problems:
        raise HeartbeatValidationError(
            "a JSM Operations connection needs " + ", ".join(problems) + " (api_token: an API token of the account)",
            errors=problems,
        )
    collection = f"/v1/teams/{quote(team_id, safe='')}/heartbeats"
    return Backend(
        "JSM Operations",
        resolve_base_url(base_url) + f"/jsm/ops/api/{quote(cloud_id, safe='')}",
        BasicAuth(credential(email, "email"), credential(api_token, "api_token")),
        {
            "create": ("POST", collection, 201),
            "list": ("GET", collection, 200),
            "get": ("GET", collection, 200),
            "update": ("PATCH", collection, 201),
            "delete": ("DELETE", collection, 204),
            "ping": ("POST", f"{collection}/ping", 202),
        },
        name_in_query=True,
        envelope=None,
        list_items=("values",),
        page_size=100,
        lookup_by_list=True,
        toggle_by_patch=True,
        scope=team_id,
        unsupported={"owner_team": f"a heartbeat on JSM Operations belongs to the connection's team ({team_id})"},
    )
