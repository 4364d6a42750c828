"""Typed errors of the heartbeat client.

Every error is a :class:`HeartbeatError`. Its message carries the HTTP status and
OpsGenie's ``requestId`` where there was a response, and never the API key. The hook
raises the same classes mixed with ``AirflowException``, from the client's error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_opsgenie_hb.api.schema import Heartbeat


class HeartbeatError(Exception):
    """Base class of every error raised by this provider's client."""

    #: worth another attempt (throttling, server trouble, a lost connection)
    retryable: bool = False
    #: the request may have reached the service and been acted on
    maybe_processed: bool = False
    #: attempts made before the one that ended in this error
    retries: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        errors: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.request_id = request_id
        self.errors: dict[str, str] = dict(errors or {})
        details = []
        if status is not None:
            details.append(f"HTTP {status}")
        if request_id:
            details.append(f"requestId {request_id}")
        unmentioned = {k: v for k, v in self.errors.items() if v not in message}
        if unmentioned:
            details.append("; ".join(f"{k}: {v}" for k, v in unmentioned.items()))
        text = message + (f" ({', '.join(details)})" if details else "")
        super().__init__(text)


class HeartbeatValidationError(HeartbeatError, ValueError):
    """A field breaks a rule: refused before sending, or by the service with 422."""


class HeartbeatRequestError(HeartbeatError):
    """The service refused the request (400 malformed, 402 plan, other 4xx)."""


class HeartbeatUnauthorizedError(HeartbeatError):
    """401: the API key is missing, wrong or disabled."""


class HeartbeatForbiddenError(HeartbeatError):
    """403: the key may not do this (e.g. a ping-only integration key managing heartbeats)."""


class HeartbeatNotFoundError(HeartbeatError):
    """404: no heartbeat of that name."""


class HeartbeatAlreadyExistsError(HeartbeatError):
    """409: a heartbeat of that name already exists.

    After a retried create, ``current`` is the heartbeat the service holds and
    ``differences`` the fields it has other than asked for (someone else created it).
    """

    def __init__(
        self,
        message: str,
        *,
        current: Heartbeat | None = None,
        differences: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.current = current
        self.differences: dict[str, Any] = dict(differences or {})
        super().__init__(message, **kwargs)


class HeartbeatRateLimitedError(HeartbeatError):
    """429: rate limited, and retrying would not fit in the time budget.

    ``retry_after``: the ``Retry-After`` header in seconds, when the service sent one.
    ``period``: ``X-RateLimit-Period-In-Sec``, the length of the rate-limit window (not a wait).
    """

    retryable = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, period: float | None = None, **kwargs: Any
    ) -> None:
        self.retry_after = retry_after
        self.period = period
        super().__init__(message, **kwargs)


class HeartbeatServerError(HeartbeatError):
    """5xx from the service."""

    retryable = True
    maybe_processed = True


class HeartbeatConnectionError(HeartbeatError):
    """No usable answer: connection refused or dropped, host unknown, TLS failure."""

    retryable = True


class HeartbeatTLSError(HeartbeatConnectionError):
    """The TLS handshake failed (a wrong host or port, or a certificate this machine does not trust)."""

    retryable = False


class HeartbeatTimeoutError(HeartbeatConnectionError):
    """The service did not answer in time (per attempt, or the whole time budget ran out)."""


class HeartbeatResponseError(HeartbeatError):
    """The service answered, but not in the shape the API documents (e.g. a 200 that is not JSON)."""


class HeartbeatUnsupportedError(HeartbeatValidationError):
    """The backend has no equivalent for this operation or field (e.g. owner_team on JSM Operations)."""
