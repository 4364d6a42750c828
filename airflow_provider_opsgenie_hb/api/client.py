"""HTTP client for the OpsGenie Heartbeat API (no Airflow import, usable on its own).

One ``requests.Session`` per client (keep-alive), connect/read timeouts on every
attempt, retries with exponential backoff and jitter (tenacity) on 429, 5xx and
connection failures, all inside one time budget per call. The answer's body is read in
pieces against the call's deadline, so a server that trickles it cannot hold a call past
its budget. Deadlines set with :meth:`HeartbeatClient.deadline` belong to the thread (or
task) that set them: one client may be shared between threads.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json as jsonlib
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_any
from tenacity.stop import stop_base
from tenacity.wait import wait_exponential, wait_random
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import NameResolutionError, ReadTimeoutError
from urllib3.util import Timeout

from airflow_provider_opsgenie_hb import __version__
from airflow_provider_opsgenie_hb.api.errors import (
    HeartbeatAlreadyExistsError,
    HeartbeatConnectionError,
    HeartbeatError,
    HeartbeatForbiddenError,
    HeartbeatNotFoundError,
    HeartbeatRateLimitedError,
    HeartbeatRequestError,
    HeartbeatResponseError,
    HeartbeatServerError,
    HeartbeatTimeoutError,
    HeartbeatUnauthorizedError,
    HeartbeatUnsupportedError,
    HeartbeatValidationError,
)
from airflow_provider_opsgenie_hb.api.schema import (
    LEGACY_OWNER_MARKER,
    REQUIRED_ON_CREATE,
    Heartbeat,
    check_fields,
    to_api_fields,
)

log = logging.getLogger(__name__)

REGION_BASE_URLS = {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}
DEFAULT_BASE_URL = REGION_BASE_URLS["us"]
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 15.0
DEFAULT_TIME_BUDGET = 30.0
DEFAULT_MAX_ATTEMPTS = 5


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


@dataclass(frozen=True)
class HeartbeatStatus:
    """What update, enable and disable answer: the name and the two flags."""

    name: str
    enabled: bool
    expired: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "enabled": self.enabled, "expired": self.expired}


@dataclass(frozen=True)
class Acknowledgement:
    """What ping and delete answer: the service's message and its request id."""

    result: str
    request_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, "request_id": self.request_id}


@dataclass(frozen=True)
class EnsureResult:
    """What ensure did: ``created``, ``updated`` (with the changed fields), ``unchanged``, or
    ``conflict`` (exists with the fields in ``changed`` differing; only when asked not to update)."""

    action: str
    name: str
    changed: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "name": self.name, "changed": dict(self.changed)}


class _GenieKeyAuth(requests.auth.AuthBase):
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


class _BasicAuth(requests.auth.HTTPBasicAuth):
    """HTTP Basic (``email:api_token``); its repr never shows the token."""

    def __repr__(self) -> str:
        return "BasicAuth(***)"

    def secrets(self) -> tuple[str, ...]:
        username, password = str(self.username), str(self.password)  # _BasicAuth is given str
        header = base64.b64encode(f"{username}:{password}".encode("latin1", errors="replace")).decode()
        return (password, header)  # the token, and the header as requests sends it


_STATUS_ERRORS: dict[int, type[HeartbeatError]] = {
    400: HeartbeatRequestError,
    401: HeartbeatUnauthorizedError,
    402: HeartbeatRequestError,
    403: HeartbeatForbiddenError,
    404: HeartbeatNotFoundError,
    409: HeartbeatAlreadyExistsError,
    422: HeartbeatValidationError,
    429: HeartbeatRateLimitedError,
}


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, HeartbeatError) and exc.retryable


def _retry_after_seconds(response: requests.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date); None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _rate_limit_period(response: requests.Response) -> float | None:
    """``X-RateLimit-Period-In-Sec``: the length of the window that was exceeded (60 for a
    per-minute limit). It bounds how long a wait can usefully be; it is not a wait."""
    try:
        period = float(response.headers.get("X-RateLimit-Period-In-Sec") or "")
    except ValueError:
        return None
    return period if period > 0 else None


@lru_cache(maxsize=1024)
def _heartbeat_path(name: str, action: str | None) -> str:
    """``/v2/heartbeats/{name}[/{action}]``, the name checked once and encoded as one segment."""
    _check_name(name)
    path = "/v2/heartbeats/" + quote(name, safe="")
    return f"{path}/{action}" if action else path


def _check_name(name: Any) -> None:
    check_fields("invalid heartbeat", {"name": name}, required=("name",))


class _PastDeadline(stop_base):
    """Stop when the next attempt could only start at or after the call's deadline."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        deadline: float = retry_state.kwargs["deadline"]
        return time.monotonic() + (retry_state.upcoming_sleep or 0.0) >= deadline


def _log_retry(retry_state: RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    log.info(
        "%s %s failed (%s); retry %d in %.2fs",
        retry_state.kwargs["method"],
        retry_state.kwargs["path"],
        exc,
        retry_state.attempt_number,
        retry_state.upcoming_sleep,
    )


_BACKOFF = wait_exponential(multiplier=0.2, max=8.0) + wait_random(0, 0.3)


def _wait(retry_state: RetryCallState) -> float:
    """Exponential backoff with jitter. A 429 waits its ``Retry-After`` when it has one (the
    stop gives up when that does not fit in the deadline); otherwise the backoff, never
    longer than the rate-limit window it names."""
    backoff = float(_BACKOFF(retry_state))
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, HeartbeatRateLimitedError):
        if exc.retry_after is not None:
            return exc.retry_after
        if exc.period is not None:
            return min(backoff, exc.period)
    return backoff


_READ_CHUNK = 64 * 1024


class HeartbeatClient:
    """Client for the eight endpoints of the OpsGenie Heartbeat API.

    :param api_key: the integration's API key (sent as ``GenieKey``).
    :param base_url: ``https://api.opsgenie.com`` by default; see :func:`resolve_base_url`.
    :param connect_timeout: seconds to open a connection, per attempt.
    :param read_timeout: seconds to wait for an answer, per attempt.
    :param time_budget: seconds one call may take in all, retries and waits included.
    :param max_attempts: attempts per call, the first included.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        time_budget: float = DEFAULT_TIME_BUDGET,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        pool_size: int = 10,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise HeartbeatValidationError(
                "api_key must be a non-empty string (the OpsGenie integration's API key)",
                errors={"api_key": "is required"},
            )
        api_key = _credential(api_key, "api_key")
        for label, number in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("time_budget", time_budget),
        ):
            if isinstance(number, bool) or not isinstance(number, (int, float)) or number <= 0:
                raise HeartbeatValidationError(
                    f"{label} must be a positive number of seconds, got {number!r}",
                    errors={label: "must be > 0"},
                )
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise HeartbeatValidationError(
                f"max_attempts must be a whole number >= 1, got {max_attempts!r}",
                errors={"max_attempts": "must be >= 1"},
            )
        self.base_url = resolve_base_url(base_url)
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.time_budget = float(time_budget)
        self.max_attempts = max_attempts
        # One per client, so two clients' deadline blocks stay apart; a ContextVar, so each
        # thread (or task) sees its own.
        self._deadline: ContextVar[float | None] = ContextVar("heartbeat_client_deadline", default=None)
        # Built once: tenacity keeps each call's state in the call and in thread-locals.
        self._retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            wait=_wait,
            stop=stop_any(stop_after_attempt(max_attempts), _PastDeadline()),
            before_sleep=_log_retry,
            reraise=True,
            sleep=time.sleep,
        )
        self.session = requests.Session()
        self.session.auth = _GenieKeyAuth(api_key)
        self.session.headers["User-Agent"] = f"airflow-provider-opsgenie-hb/{__version__}"
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def account_fingerprint(self) -> str:
        """A hash of the base URL and the credentials: tells accounts apart, reveals no key."""
        auth = self.session.auth
        secret = getattr(auth, "_api_key", None) or f"{getattr(auth, 'username', '')}:{getattr(auth, 'password', '')}"
        return hashlib.sha256(f"{self.base_url}\n{secret}".encode()).hexdigest()[:32]

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HeartbeatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Bound every call made inside the block by one overall deadline, retries included.

        The deadline belongs to the current thread (or asyncio task): calls made by other
        threads through the same client keep their own. A nested block can only shorten it.
        """
        until = time.monotonic() + seconds
        outer = self._deadline.get()
        token = self._deadline.set(until if outer is None else min(outer, until))
        try:
            yield
        finally:
            self._deadline.reset(token)

    # ------------------------------------------------------------------ endpoints

    def create_heartbeat(
        self,
        *,
        name: str,
        interval: int,
        interval_unit: str,
        enabled: bool = True,
        description: str | None = None,
        owner_team: str | Mapping[str, str] | None = None,
        alert_message: str | None = None,
        alert_tags: list[str] | tuple[str, ...] | None = None,
        alert_priority: str | None = None,
    ) -> Heartbeat:
        """Create a heartbeat; raises :class:`HeartbeatAlreadyExistsError` if the name is taken."""
        fields = {
            "name": name,
            "interval": interval,
            "interval_unit": interval_unit,
            "enabled": enabled,
            "description": description,
            "owner_team": owner_team,
            "alert_message": alert_message,
            "alert_tags": alert_tags,
            "alert_priority": alert_priority,
        }
        self._validate(fields, required=REQUIRED_ON_CREATE)
        return self._create_or_read_back(fields)[0]

    def _create_or_read_back(self, fields: Mapping[str, Any]) -> tuple[Heartbeat, bool]:
        """Create; returns the heartbeat and whether this call's 201 confirmed the creation.

        A retried create that meets a 409 after an attempt that may have reached the service
        reads the heartbeat back: when it has the settings asked for it is returned (most
        likely our own first attempt, but it cannot be told apart from someone else's
        identical one); when it differs, someone else created it and the 409 stands, with
        ``current`` and ``differences`` on the error.
        """
        attempts: list[HeartbeatError] = []
        try:
            return self._create(fields, attempts), True
        except HeartbeatAlreadyExistsError as exc:
            if not any(e.maybe_processed for e in attempts[:-1]):
                raise
            name = fields["name"]
            log.info("create of heartbeat %r was retried and found it present; reading it back", name)
            current = self.get_heartbeat(name)
            differences = current.differences(fields)
            if differences:
                raise HeartbeatAlreadyExistsError(
                    f"{exc.message}: a retried create found it with other settings than asked for "
                    f"({', '.join(sorted(differences))}), so someone else created it",
                    status=exc.status,
                    request_id=exc.request_id,
                    current=current,
                    differences=differences,
                ) from exc
            return current, False

    def _create(self, fields: Mapping[str, Any], attempts: list[HeartbeatError]) -> Heartbeat:
        body = to_api_fields(fields)
        return self._heartbeat(self._request("POST", "/v2/heartbeats", json=body, ok=201, attempts=attempts))

    def list_heartbeats(self) -> list[Heartbeat]:
        """All heartbeats of the account (the API does not paginate)."""
        payload = self._request("GET", "/v2/heartbeats")
        try:
            items = payload["data"]["heartbeats"]
            return [Heartbeat.from_api(item) for item in items]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._shape_error(payload, exc) from None

    def get_heartbeat(self, name: str) -> Heartbeat:
        """One heartbeat by name; raises :class:`HeartbeatNotFoundError` if there is none."""
        return self._heartbeat(self._request("GET", self._path(name)))

    def update_heartbeat(self, name: str, **changes: Any) -> HeartbeatStatus:
        """Change the given fields (snake_case keywords, e.g. ``interval=2``) of a heartbeat."""
        if "name" in changes:
            raise HeartbeatValidationError(
                "name cannot be changed by update: create a new heartbeat and delete the old one",
                errors={"name": "read-only on update"},
            )
        given = {k: v for k, v in changes.items() if v is not None}
        if not given:
            raise HeartbeatValidationError("update needs at least one field to change", errors={"fields": "none given"})
        self._validate({"name": name, **given}, required=("name",))
        return self._update(name, given)

    def _update(self, name: str, changes: Mapping[str, Any]) -> HeartbeatStatus:
        return self._status(self._request("PATCH", self._path(name), json=to_api_fields(changes)))

    def delete_heartbeat(self, name: str) -> Acknowledgement:
        """Delete a heartbeat; raises :class:`HeartbeatNotFoundError` if there is none."""
        attempts: list[HeartbeatError] = []
        try:
            return self._delete(name, attempts)
        except HeartbeatNotFoundError as exc:
            if not any(e.maybe_processed for e in attempts[:-1]):
                raise
            # An earlier attempt probably deleted it.
            return Acknowledgement("Deleted", exc.request_id)

    def _delete(self, name: str, attempts: list[HeartbeatError]) -> Acknowledgement:
        return self._ack(self._request("DELETE", self._path(name), attempts=attempts))

    def ping_heartbeat(self, name: str) -> Acknowledgement:
        """Ping a heartbeat. The service answers PONG even for a name that does not exist."""
        return self._ack(self._request("POST", self._path(name, "ping"), ok=202))

    def enable_heartbeat(self, name: str) -> HeartbeatStatus:
        return self._status(self._request("POST", self._path(name, "enable")))

    def disable_heartbeat(self, name: str) -> HeartbeatStatus:
        return self._status(self._request("POST", self._path(name, "disable")))

    def ensure_heartbeat(
        self,
        *,
        name: str,
        interval: int,
        interval_unit: str,
        enabled: bool | None = True,
        description: str | None = None,
        owner_team: str | Mapping[str, str] | None = None,
        alert_message: str | None = None,
        alert_tags: list[str] | tuple[str, ...] | None = None,
        alert_priority: str | None = None,
        marker: str | None = None,
        update_existing: bool = True,
        compare_interval: bool = True,
    ) -> EnsureResult:
        """Create the heartbeat, or update the fields that differ; nothing when it matches.

        Fields left as ``None`` are not compared (OpsGenie's defaults stand); ``enabled=None``
        leaves the enabled state alone (a heartbeat created here starts enabled). ``created``
        only when this call's create was confirmed by the service; a retried create that
        finds the heartbeat already holding these settings says ``unchanged``.

        ``marker`` is an ownership tag: put beside ``alert_tags`` when this call creates the
        heartbeat, and needed on an existing one before this call changes it. A heartbeat that
        exists with other settings is left alone and reported as ``conflict`` (with the
        differing fields in ``changed``) when it lacks the marker, or with ``update_existing=False``.

        ``compare_interval=False`` uses the interval only to create the heartbeat: an existing
        one keeps its own (for heartbeats whose runs set it, ``interval="next_run"``).
        """
        wanted: dict[str, Any] = {
            "name": name,
            "interval": interval,
            "interval_unit": interval_unit,
            "enabled": enabled,
            "description": description,
            "owner_team": owner_team,
            "alert_message": alert_message,
            "alert_tags": alert_tags,
            "alert_priority": alert_priority,
        }
        to_create = {**wanted, "enabled": True if enabled is None else enabled}
        if marker is not None and marker not in (alert_tags or ()):
            to_create["alert_tags"] = [*(alert_tags or ()), marker]
        self._validate(to_create, required=REQUIRED_ON_CREATE)
        if not compare_interval:
            wanted["interval"] = wanted["interval_unit"] = None
        try:
            current = self.get_heartbeat(name)
        except HeartbeatNotFoundError:
            try:
                _, confirmed = self._create_or_read_back(to_create)
            except HeartbeatAlreadyExistsError as exc:
                # Created by someone else meanwhile: compare with what the service holds.
                current = exc.current or self.get_heartbeat(name)
            else:
                if confirmed:
                    return EnsureResult("created", name, {k: v for k, v in to_create.items() if v is not None})
                return EnsureResult("unchanged", name, {})
        changed = current.differences(wanted)
        if not changed:
            return EnsureResult("unchanged", name, {})
        owned = marker is None or marker in current.alert_tags or LEGACY_OWNER_MARKER in current.alert_tags
        if not update_existing or not owned:
            return EnsureResult("conflict", name, changed)
        self.update_heartbeat(name, **changed)
        return EnsureResult("updated", name, changed)

    def ensure_heartbeats(
        self, heartbeats: Iterable[Mapping[str, Any]], *, max_workers: int = 8
    ) -> list[EnsureResult | HeartbeatError]:
        """Ensure many heartbeats concurrently (each a dict of :meth:`ensure_heartbeat` keywords).

        Calls that meet a rate limit back off and retry like any other call. Returns one
        entry per heartbeat, in order: its :class:`EnsureResult`, or the error that ended it
        (one failure does not stop the others).
        """
        specs = [dict(spec) for spec in heartbeats]
        for spec in specs:  # refuse bad input before any request is sent
            fields = {k: v for k, v in spec.items() if k not in ("marker", "update_existing", "compare_interval")}
            if fields.get("enabled") is None:
                fields["enabled"] = True  # the state a created heartbeat starts in
            self._validate(fields, required=REQUIRED_ON_CREATE)

        def ensure(spec: dict[str, Any]) -> EnsureResult | HeartbeatError:
            try:
                return self.ensure_heartbeat(**spec)
            except HeartbeatError as exc:
                return exc

        # Each worker runs in a copy of the caller's context, so a deadline block around
        # this call bounds the workers' calls too.
        contexts = [copy_context() for _ in specs]
        with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="opsgenie-ensure") as pool:
            return list(pool.map(lambda context, spec: context.run(ensure, spec), contexts, specs))

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def _validate(fields: Mapping[str, Any], *, required: tuple[str, ...]) -> None:
        check_fields("invalid heartbeat", fields, required=required)

    @staticmethod
    def _path(name: str, action: str | None = None) -> str:
        if not isinstance(name, str):
            _check_name(name)  # raises, naming the field
        return _heartbeat_path(name, action)

    def _heartbeat(self, payload: dict[str, Any], envelope: str | None = "data") -> Heartbeat:
        """The heartbeat in an answer: under ``data`` (OpsGenie), or the answer itself (``envelope=None``)."""
        try:
            return Heartbeat.from_api(payload[envelope] if envelope else payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise self._shape_error(payload, exc) from None

    def _status(self, payload: dict[str, Any]) -> HeartbeatStatus:
        try:
            data = payload["data"]
            return HeartbeatStatus(name=data["name"], enabled=bool(data["enabled"]), expired=bool(data["expired"]))
        except (KeyError, TypeError) as exc:
            raise self._shape_error(payload, exc) from None

    def _ack(self, payload: dict[str, Any]) -> Acknowledgement:
        result = payload.get("result")
        if not isinstance(result, str):
            raise self._shape_error(payload, KeyError("result"))
        return Acknowledgement(result, payload.get("requestId"))

    @staticmethod
    def _shape_error(payload: Any, exc: Exception) -> HeartbeatResponseError:
        request_id = payload.get("requestId") if isinstance(payload, dict) else None
        return HeartbeatResponseError(
            f"the service's answer does not have the documented shape ({type(exc).__name__}: {exc})",
            request_id=request_id,
        )

    def _call_deadline(self) -> float:
        deadline = time.monotonic() + self.time_budget
        outer = self._deadline.get()
        return deadline if outer is None or outer > deadline else outer

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        ok: int = 200,
        attempts: list[HeartbeatError] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One call: attempts until success, a final error, the attempt limit or the deadline."""
        return self._retrying(
            self._attempt,
            method=method,
            path=path,
            json=json,
            ok=ok,
            params=params,
            deadline=self._call_deadline(),
            attempts=attempts,
        )

    def _attempt(
        self,
        *,
        method: str,
        path: str,
        json: Mapping[str, Any] | None,
        ok: int,
        params: Mapping[str, Any] | None,
        deadline: float,
        attempts: list[HeartbeatError] | None,
    ) -> dict[str, Any]:
        try:
            return self._send(method, path, json, ok, deadline, params)
        except HeartbeatError as exc:
            if attempts is not None:
                attempts.append(exc)
            raise

    def _send(
        self,
        method: str,
        path: str,
        json: Mapping[str, Any] | None,
        ok: int,
        deadline: float,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HeartbeatTimeoutError(f"{method} {path}: the time budget ran out before the request was sent")
        connect, read = min(self.connect_timeout, remaining), min(self.read_timeout, remaining)
        # total: the read timeout shrinks by the time connecting took.
        timeout = Timeout(total=remaining, connect=connect, read=read)
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                json=json,
                params=params,
                timeout=timeout,  # type: ignore[arg-type]  # requests hands a urllib3 Timeout on as it is
                stream=True,
            )
        except requests.exceptions.RequestException as exc:
            raise _connection_error(method, path, exc, (connect, read)) from None
        # The status line and headers were read under the read timeout, one socket read at a
        # time: a server that trickles its *headers* a byte at a time stays within each read's
        # timeout and out of reach of requests' API. Callers that need a hard bound against
        # that run the call in a worker thread they can abandon.
        try:
            payload = self._read_body(response, deadline, method, path)
        except HeartbeatError:
            response.close()  # drop a connection whose answer is cut off or still arriving
            raise
        # A server (or a proxy) that echoes the Authorization header must not put the key in a log or an error.
        secrets = self.session.auth.secrets() if isinstance(self.session.auth, (_GenieKeyAuth, _BasicAuth)) else ()
        request_id = _hidden(response.headers.get("X-Request-ID"), secrets)
        status = response.status_code
        log.debug("%s %s -> %s (requestId %s)", method, path, status, request_id)
        body = _json_or_none(payload)
        if status != ok:
            body = _hidden(body, secrets)
        if isinstance(body, dict) and isinstance(body.get("requestId"), str):
            request_id = body["requestId"] = _hidden(body["requestId"], secrets)
        if status == ok == 204:
            return {"requestId": request_id} if request_id else {}
        if status == ok:
            if not isinstance(body, dict):
                raise HeartbeatResponseError(
                    f"{method} {path}: HTTP {status} but the body is not a JSON object "
                    f"(Content-Type {response.headers.get('Content-Type')!r})",
                    status=status,
                    request_id=request_id,
                )
            return body
        raise _error_for(method, path, response, body, request_id, secrets)

    def _read_body(self, response: requests.Response, deadline: float, method: str, path: str) -> bytes:
        """The whole body, read in pieces: each read waits at most what is left of the deadline."""
        raw = response.raw
        connection = getattr(raw, "connection", None)
        sock = getattr(connection, "sock", None)
        chunks: list[bytes] = []
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _body_timeout(method, path, "the time budget ran out while the answer was arriving")
                if sock is not None:
                    sock.settimeout(min(self.read_timeout, remaining))
                chunk = raw.read1(_READ_CHUNK)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        except (ReadTimeoutError, TimeoutError):
            raise _body_timeout(method, path, "the answer stopped arriving before the deadline") from None
        except (Urllib3HTTPError, OSError) as exc:
            innermost = _causes(exc)[-1]
            err = HeartbeatConnectionError(
                f"{method} {path}: connection failed mid-reply: {type(innermost).__name__}: {innermost}"
            )
            err.maybe_processed = True
            raise err from None


def _body_timeout(method: str, path: str, what: str) -> HeartbeatTimeoutError:
    err = HeartbeatTimeoutError(f"{method} {path}: {what}")
    err.maybe_processed = True
    return err


def _error_for(
    method: str,
    path: str,
    response: requests.Response,
    body: Any,
    request_id: str | None,
    secrets: tuple[str, ...] = (),
) -> HeartbeatError:
    status = response.status_code
    message = body.get("message") if isinstance(body, dict) else None
    raw_errors = body.get("errors") if isinstance(body, dict) else None
    errors: dict[str, str] | None = None
    if isinstance(raw_errors, dict):  # OpsGenie: {"field": "problem"}
        errors = {str(k): str(v) for k, v in raw_errors.items()}
    elif isinstance(raw_errors, list):  # JSM Operations: [{"title": ..., "code": ...}]
        titles = [str(e.get("title")) for e in raw_errors if isinstance(e, dict) and e.get("title")]
        message = message or "; ".join(titles)
    if not isinstance(message, str) or not message:
        message = _hidden(response.reason, secrets) or "unexpected answer"
    text = f"{method} {path}: {message}"
    if status == 402:
        text += " (the plan does not include heartbeats)"
    if status >= 500:
        return HeartbeatServerError(text, status=status, request_id=request_id)
    if status == 429:
        return HeartbeatRateLimitedError(
            text,
            status=status,
            request_id=request_id,
            retry_after=_retry_after_seconds(response),
            period=_rate_limit_period(response),
        )
    cls = _STATUS_ERRORS.get(status, HeartbeatRequestError)
    return cls(text, status=status, request_id=request_id, errors=errors)


def _credential(value: str, field: str) -> str:
    """A key as pasted, without the spaces or line break around it; refused (never shown) when
    whitespace or control characters are left inside, which no key has and no header may carry."""
    value = value.strip()
    if any(char.isspace() or not char.isprintable() for char in value):
        raise HeartbeatValidationError(
            f"{field} must not contain whitespace or control characters",
            errors={field: "must not contain whitespace or control characters"},
        )
    return value


def _hidden(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` (a JSON value) with every secret replaced by ``***``."""
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {_hidden(k, secrets): _hidden(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_hidden(item, secrets) for item in value]
    return value


def _json_or_none(payload: bytes) -> Any:
    if not payload:
        return None
    try:
        return jsonlib.loads(payload)
    except ValueError:  # UnicodeDecodeError included
        return None


def _causes(exc: BaseException) -> list[BaseException]:
    """The chain of causes (urllib3 wraps several layers, some in ``.reason``)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else (current.__cause__ or current.__context__)
    return chain


def _connection_error(
    method: str, path: str, exc: requests.exceptions.RequestException, timeout: tuple[float, float]
) -> HeartbeatError:
    """Map a requests failure to a typed error, and say whether it may have been processed."""
    causes = _causes(exc)
    innermost = causes[-1]
    where = f"{method} {path}"
    err: HeartbeatError
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return HeartbeatTimeoutError(f"{where}: no connection within {timeout[0]:.1f}s")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        err = HeartbeatTimeoutError(f"{where}: no answer within {timeout[1]:.1f}s")
        err.maybe_processed = True
        return err
    if any(isinstance(c, NameResolutionError) for c in causes):
        err = HeartbeatConnectionError(f"{where}: the host name does not resolve")
        err.retryable = False
        return err
    if isinstance(exc, requests.exceptions.SSLError):
        err = HeartbeatConnectionError(f"{where}: TLS failed: {type(innermost).__name__}")
        err.retryable = False
        return err
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema)):
        err = HeartbeatConnectionError(f"{where}: invalid URL: {exc}")
        err.retryable = False
        return err
    err = HeartbeatConnectionError(f"{where}: connection failed: {type(innermost).__name__}: {innermost}")
    # Refused: the request never left. Reset or closed mid-reply: it may have been processed.
    err.maybe_processed = not any(isinstance(c, ConnectionRefusedError) for c in causes)
    return err


JSM_BASE_URL = "https://api.atlassian.com"
_JSM_PAGE_SIZE = 100


class JsmHeartbeatClient(HeartbeatClient):
    """The same interface on Jira Service Management Operations, OpsGenie's successor.

    Heartbeats there belong to a team: ``{base}/jsm/ops/api/{cloud_id}/v1/teams/{team_id}/heartbeats``,
    with the name as a ``?name=`` query parameter and HTTP Basic auth (account email, API
    token). There is no get-by-name (a filtered list is read), enable/disable are a PATCH of
    ``enabled``, and ``status`` (``Unresponsive`` means expired) replaces ``expired``.

    :param email: the Atlassian account's email.
    :param api_token: an API token of that account.
    :param cloud_id: the site's cloud id.
    :param team_id: the id of the team that owns the heartbeats.
    :param base_url: ``https://api.atlassian.com`` by default.
    """

    def __init__(
        self,
        email: str,
        api_token: str,
        *,
        cloud_id: str,
        team_id: str,
        base_url: str = JSM_BASE_URL,
        **kwargs: Any,
    ) -> None:
        problems = {
            key: "is required"
            for key, value in (("email", email), ("cloud_id", cloud_id), ("team_id", team_id))
            if not isinstance(value, str) or not value.strip()
        }
        if problems:
            raise HeartbeatValidationError("a JSM Operations connection needs " + ", ".join(problems), errors=problems)
        super().__init__(api_token, resolve_base_url(base_url) + f"/jsm/ops/api/{quote(cloud_id, safe='')}", **kwargs)
        self.session.auth = _BasicAuth(_credential(email, "email"), _credential(api_token, "api_token"))
        self.team_id = team_id
        self._collection = f"/v1/teams/{quote(team_id, safe='')}/heartbeats"

    def _create(self, fields: Mapping[str, Any], attempts: list[HeartbeatError]) -> Heartbeat:
        if fields.get("owner_team") is not None:
            raise HeartbeatUnsupportedError(
                "owner_team has no JSM Operations equivalent: a heartbeat there belongs to the "
                f"connection's team ({self.team_id})",
                errors={"owner_team": "not supported on JSM Operations"},
            )
        body = to_api_fields(fields)
        return self._heartbeat(self._request("POST", self._collection, json=body, ok=201, attempts=attempts), None)

    def list_heartbeats(self) -> list[Heartbeat]:
        """All heartbeats of the team, every page."""
        return self._list({})

    def get_heartbeat(self, name: str) -> Heartbeat:
        """One heartbeat by name, read through the list filtered by name (an exact match)."""
        _check_name(name)
        for heartbeat in self._list({"name": name}):
            if heartbeat.name == name:
                return heartbeat
        raise HeartbeatNotFoundError(
            f"GET {self._collection}?name=...: no heartbeat named {name!r} in team {self.team_id}", status=404
        )

    def _list(self, query: Mapping[str, Any]) -> list[Heartbeat]:
        found: list[Heartbeat] = []
        offset = 0
        while True:
            payload = self._request("GET", self._collection, params={**query, "offset": offset, "size": _JSM_PAGE_SIZE})
            try:
                values = payload["values"]
                found += [Heartbeat.from_api(item) for item in values]
            except (KeyError, TypeError, ValueError) as exc:
                raise self._shape_error(payload, exc) from None
            if not (payload.get("links") or {}).get("next") or not values:
                return found
            offset += len(values)

    def _update(self, name: str, changes: Mapping[str, Any]) -> HeartbeatStatus:
        if changes.get("owner_team") is not None:
            raise HeartbeatUnsupportedError(
                "owner_team cannot be changed on JSM Operations: a heartbeat belongs to its team",
                errors={"owner_team": "not supported on JSM Operations"},
            )
        body = {"name": name, **to_api_fields(changes)}
        heartbeat = self._heartbeat(
            self._request("PATCH", self._collection, json=body, params={"name": name}, ok=201), None
        )
        return HeartbeatStatus(heartbeat.name, heartbeat.enabled, heartbeat.expired)

    def _delete(self, name: str, attempts: list[HeartbeatError]) -> Acknowledgement:
        _check_name(name)
        payload = self._request("DELETE", self._collection, params={"name": name}, ok=204, attempts=attempts)
        return Acknowledgement("Deleted", payload.get("requestId"))

    def ping_heartbeat(self, name: str) -> Acknowledgement:
        """Ping a heartbeat (JSM answers ``PONG`` like OpsGenie)."""
        _check_name(name)
        payload = self._request("POST", f"{self._collection}/ping", params={"name": name}, ok=202)
        message = payload.get("message")
        if not isinstance(message, str):
            raise self._shape_error(payload, KeyError("message"))
        return Acknowledgement(message, payload.get("requestId"))

    def enable_heartbeat(self, name: str) -> HeartbeatStatus:
        """JSM has no enable endpoint: a PATCH of ``enabled``."""
        _check_name(name)
        return self._update(name, {"enabled": True})

    def disable_heartbeat(self, name: str) -> HeartbeatStatus:
        """JSM has no disable endpoint: a PATCH of ``enabled``."""
        _check_name(name)
        return self._update(name, {"enabled": False})
