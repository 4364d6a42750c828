"""What a user can do about an error, in one line: said by the callback, sync and the page alike."""

from __future__ import annotations

from airflow_provider_opsgenie_hb.api.errors import HeartbeatError, HeartbeatValidationError

_ADVICE: dict[str, str] = {
    "HeartbeatUnauthorizedError": "check the API key in the connection",
    "HeartbeatForbiddenError": "this key may only ping: use ensure=False, or a key with configuration access",
    "HeartbeatValidationError": "fix the field named above in the notifier's arguments",
    "HeartbeatRateLimitedError": "OpsGenie is throttling this account; the next run will ping again",
    "HeartbeatNotFoundError": "create the heartbeat, or pass ensure=True",
    "HeartbeatResponseError": "the answer was not OpsGenie's: check the host in the connection",
    "HeartbeatTLSError": "the TLS handshake with the host failed: check the host and port in the connection, and its "
    "certificate",
    "HeartbeatRequestError": "OpsGenie refused the request: see its message above",
    "AirflowNotFoundException": "create the connection, or name an existing one in opsgenie_heartbeat_conn_id",
}
_UNREACHABLE = "OpsGenie could not be reached in time; if this keeps happening the heartbeat will expire and alert"
#: a validation error of these fields is the connection's, not the notifier's
_CONNECTION_FIELDS = frozenset(
    {"host", "region", "api_key", "password", "login", "port", "schema", "extra", "connect_timeout", "read_timeout"}
)
_IN_THE_CONNECTION = "fix the field named above in the connection"


def what_to_do(exc: BaseException) -> str:
    """The advice for ``exc`` (empty when there is none to give)."""
    fields = set(getattr(exc, "errors", None) or ())
    if isinstance(exc, HeartbeatValidationError) and fields and fields <= _CONNECTION_FIELDS:
        return _IN_THE_CONNECTION
    return _ADVICE.get(type(exc).__name__, _UNREACHABLE if isinstance(exc, HeartbeatError) else "")
