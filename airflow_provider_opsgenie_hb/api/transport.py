"""The HTTP transport under the client: one session, deadlines, retries, error mapping, redaction.

One ``requests.Session`` per transport (keep-alive), connect/read timeouts on every attempt,
retries with exponential backoff and jitter (tenacity) on 429, 5xx and connection failures,
all inside one time budget per call. The answer's body is read in pieces against the call's
deadline, so a server that trickles it cannot hold a call past its budget. Deadlines set with
:meth:`Transport.deadline` belong to the thread (or task) that set them. The retry policy and
the HTTP adapter can be handed in, as with Airflow's HTTP provider.
"""

from __future__ import annotations

import json as jsonlib
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_any
from tenacity.stop import stop_base
from tenacity.wait import wait_exponential, wait_random
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import NameResolutionError, ReadTimeoutError
from urllib3.util import Timeout

from airflow_provider_opsgenie_hb._version import __version__
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
    HeartbeatTLSError,
    HeartbeatUnauthorizedError,
    HeartbeatValidationError,
)

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 15.0
DEFAULT_TIME_BUDGET = 30.0
DEFAULT_MAX_ATTEMPTS = 5
_READ_CHUNK = 64 * 1024


class SecretAuth(Protocol):
    """A requests auth that can name the secrets it sends (to hide them from errors and logs)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest: ...

    def secrets(self) -> tuple[str, ...]: ...


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


def default_retrying(max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Retrying:
    """Backoff with jitter on retryable errors, up to ``max_attempts`` and never past the call's deadline."""
    return Retrying(
        retry=retry_if_exception(_is_retryable),
        wait=_wait,
        stop=stop_any(stop_after_attempt(max_attempts), _PastDeadline()),
        before_sleep=_log_retry,
        reraise=True,
        sleep=time.sleep,
    )


@dataclass(frozen=True)
class Reply:
    """A successful answer: its JSON body, OpsGenie's requestId, how many retries it took, and the
    service's clock when it answered (its ``Date`` header, epoch seconds; None without one)."""

    body: dict[str, Any]
    request_id: str | None
    retries: int
    server_time: float | None = None


class Transport:
    """Sends one request with its retries inside the call's deadline; maps failures to typed errors.

    :param base_url: the API's base URL (see :func:`~airflow_provider_opsgenie_hb.api.backends.resolve_base_url`).
    :param auth: adds the credentials to each request and names them to be hidden.
    :param connect_timeout: seconds to open a connection, per attempt.
    :param read_timeout: seconds to wait for an answer, per attempt.
    :param time_budget: seconds one call may take in all, retries and waits included.
    :param max_attempts: attempts per call, the first included (with the default retry policy).
    :param retrying: a tenacity ``Retrying`` to use instead of the default policy.
    :param adapter: a requests ``HTTPAdapter`` to mount instead of the default pool.
    """

    def __init__(
        self,
        base_url: str,
        auth: SecretAuth,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        time_budget: float = DEFAULT_TIME_BUDGET,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        pool_size: int = 10,
        retrying: Retrying | None = None,
        adapter: HTTPAdapter | None = None,
    ) -> None:
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
        self.base_url = base_url
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.time_budget = float(time_budget)
        self.max_attempts = max_attempts
        # One per transport, so two clients' deadline blocks stay apart; a ContextVar, so each
        # thread (or task) sees its own.
        self._deadline: ContextVar[float | None] = ContextVar("heartbeat_transport_deadline", default=None)
        # Built once: tenacity keeps each call's state in the call and in thread-locals.
        self._retrying = retrying or default_retrying(max_attempts)
        self._auth = auth
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers["User-Agent"] = f"airflow-provider-opsgenie-hb/{__version__}"
        adapter = adapter or HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def close(self) -> None:
        self.session.close()

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Bound every call made inside the block by one overall deadline, retries included.

        The deadline belongs to the current thread (or asyncio task): calls made by other
        threads through the same transport keep their own. A nested block can only shorten it.
        """
        until = time.monotonic() + seconds
        outer = self._deadline.get()
        token = self._deadline.set(until if outer is None else min(outer, until))
        try:
            yield
        finally:
            self._deadline.reset(token)

    def _call_deadline(self) -> float:
        deadline = time.monotonic() + self.time_budget
        outer = self._deadline.get()
        return deadline if outer is None or outer > deadline else outer

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        ok: int = 200,
        params: Mapping[str, Any] | None = None,
        attempts: list[HeartbeatError] | None = None,
    ) -> Reply:
        """One call: attempts until success, a final error, the attempt limit or the deadline.

        ``attempts`` (when given) collects the error of every failed attempt, for callers that
        must know whether an earlier attempt may have reached the service.
        """
        failed: list[HeartbeatError] = [] if attempts is None else attempts
        try:
            body, request_id, server_time = self._retrying(
                self._attempt,
                method=method,
                path=path,
                json=json,
                ok=ok,
                params=params,
                deadline=self._call_deadline(),
                failed=failed,
            )
        except HeartbeatError as exc:
            exc.retries = len(failed) - 1
            raise
        return Reply(body, request_id, len(failed), server_time)

    def _attempt(
        self,
        *,
        method: str,
        path: str,
        json: Mapping[str, Any] | None,
        ok: int,
        params: Mapping[str, Any] | None,
        deadline: float,
        failed: list[HeartbeatError],
    ) -> tuple[dict[str, Any], str | None, float | None]:
        try:
            return self._send(method, path, json, ok, deadline, params)
        except HeartbeatError as exc:
            failed.append(exc)
            raise

    def _send(
        self,
        method: str,
        path: str,
        json: Mapping[str, Any] | None,
        ok: int,
        deadline: float,
        params: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], str | None, float | None]:
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
        secrets = self._auth.secrets()
        request_id = _hidden(response.headers.get("X-Request-ID"), secrets)
        status = response.status_code
        log.debug("%s %s -> %s (requestId %s)", method, path, status, request_id)
        body = _json_or_none(payload)
        if status != ok:
            body = _hidden(body, secrets)
        if isinstance(body, dict) and isinstance(body.get("requestId"), str):
            request_id = body["requestId"] = _hidden(body["requestId"], secrets)
        server_time = _server_time(response.headers.get("Date"))
        if status == ok == 204:
            return {}, request_id, server_time
        if status == ok:
            if not isinstance(body, dict):
                raise HeartbeatResponseError(
                    f"{method} {path}: HTTP {status} but the body is not a JSON object "
                    f"(Content-Type {response.headers.get('Content-Type')!r})",
                    status=status,
                    request_id=request_id,
                )
            return body, request_id, server_time
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


def _server_time(date: str | None) -> float | None:
    """An HTTP ``Date`` header as epoch seconds (None: missing or unreadable)."""
    try:
        return parsedate_to_datetime(date).timestamp() if date else None
    except (TypeError, ValueError):
        return None


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
        return HeartbeatTLSError(f"{where}: TLS failed: {type(innermost).__name__}")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema)):
        err = HeartbeatConnectionError(f"{where}: invalid URL: {exc}")
        err.retryable = False
        return err
    err = HeartbeatConnectionError(f"{where}: connection failed: {type(innermost).__name__}: {innermost}")
    # Refused: the request never left. Reset or closed mid-reply: it may have been processed.
    err.maybe_processed = not any(isinstance(c, ConnectionRefusedError) for c in causes)
    return err
