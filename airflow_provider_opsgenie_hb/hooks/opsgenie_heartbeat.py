"""OpsgenieHeartbeatHook: an Airflow connection in, a heartbeat client out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import AirflowException, BaseHook, mask_secret

from airflow_provider_opsgenie_hb.api.backends import JSM_BASE_URL, jsm_backend, opsgenie_backend, resolve_base_url
from airflow_provider_opsgenie_hb.api.client import (
    DEFAULT_POLICY,
    Acknowledgement,
    EnsureRequest,
    EnsureResult,
    HeartbeatClient,
    HeartbeatList,
    HeartbeatStatus,
)
from airflow_provider_opsgenie_hb.api.errors import HeartbeatError, HeartbeatForbiddenError, HeartbeatValidationError
from airflow_provider_opsgenie_hb.api.transport import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_TIME_BUDGET,
)
from airflow_provider_opsgenie_hb.settings import DEFAULT_CONN_ID
from airflow_provider_opsgenie_hb.version_compat import with_legacy_connection_form

if TYPE_CHECKING:
    from airflow_provider_opsgenie_hb.api.policy import EnsurePolicy
    from airflow_provider_opsgenie_hb.api.schema import Heartbeat

_AIRFLOW_ERRORS: dict[type[HeartbeatError], type[HeartbeatError]] = {}


def _airflow_class(cls: type[HeartbeatError]) -> type[HeartbeatError]:
    """The client's error class mixed with ``AirflowException`` (one per class, same name)."""
    mixed = _AIRFLOW_ERRORS.get(cls)
    if mixed is None:
        mixed = type(
            cls.__name__, (cls, AirflowException), {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
        )
        _AIRFLOW_ERRORS[cls] = mixed
    return mixed


def as_airflow_error(exc: HeartbeatError) -> HeartbeatError:
    """An ``AirflowException`` copy of a client error: same class name, message and attributes.

    ``except HeartbeatNotFoundError`` and ``except AirflowException`` both catch the result;
    the client's error is its ``__cause__``. The client's error itself is left as it is.
    """
    if isinstance(exc, AirflowException):
        return exc
    cls = _airflow_class(type(exc))
    copy = cls.__new__(cls, *exc.args)
    copy.__dict__.update(exc.__dict__)
    copy.__cause__ = exc
    return copy


class _AirflowErrors:
    """``with airflow_errors():`` raises a client error as its Airflow-flavoured class, from it."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, HeartbeatError) and not isinstance(exc, AirflowException):
            raise as_airflow_error(exc) from exc


_AIRFLOW_ERRORS_BLOCK = _AirflowErrors()


def airflow_errors() -> _AirflowErrors:
    return _AIRFLOW_ERRORS_BLOCK


JSM_CONN_TYPE = "jsm_ops_heartbeat"


def _extra(extras: Mapping[str, Any], key: str) -> Any:
    """An extra by its short name, or by its ``extra__<conn type>__`` form name."""
    value = extras.get(key)
    for conn_type in (OpsgenieHeartbeatHook.conn_type, JSM_CONN_TYPE):
        if value in (None, ""):
            value = extras.get(f"extra__{conn_type}__{key}")
    return None if value in (None, "") else value


def _seconds(extras: Mapping[str, Any], key: str, default: float) -> float:
    value = _extra(extras, key)
    if value is None:
        return default
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if seconds <= 0:
        raise HeartbeatValidationError(
            f"connection extra {key} must be a positive number of seconds, got {value!r}", errors={key: "must be > 0"}
        )
    return seconds


@with_legacy_connection_form
class OpsgenieHeartbeatHook(BaseHook):
    """Talk to the OpsGenie Heartbeat API through an Airflow connection.

    The connection (type ``opsgenie_heartbeat``): password = API key; host = base URL
    (empty: ``https://api.opsgenie.com``, or the EU host with extra ``region: eu``);
    extras ``connect_timeout``, ``read_timeout``, ``time_budget`` in seconds.

    :param opsgenie_heartbeat_conn_id: the connection to use.
    :param time_budget: seconds one call may take in all, retries included; overrides the
        connection's ``time_budget`` extra.
    """

    conn_name_attr = "opsgenie_heartbeat_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "opsgenie_heartbeat"
    hook_name = "OpsGenie Heartbeat"

    def __init__(
        self,
        opsgenie_heartbeat_conn_id: str = default_conn_name,
        *,
        time_budget: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.opsgenie_heartbeat_conn_id = opsgenie_heartbeat_conn_id
        self.time_budget = time_budget

    def __repr__(self) -> str:
        return f"{type(self).__name__}(opsgenie_heartbeat_conn_id={self.opsgenie_heartbeat_conn_id!r})"

    @cached_property
    def client(self) -> HeartbeatClient:
        """The client built from the connection (read once per hook).

        The connection's type picks the backend: ``opsgenie_heartbeat`` (OpsGenie) or
        ``jsm_ops_heartbeat`` (Jira Service Management Operations); nothing else changes.
        """
        conn = self.get_connection(self.opsgenie_heartbeat_conn_id)
        jsm = conn.conn_type == JSM_CONN_TYPE
        with airflow_errors():
            secret = conn.password or ""
            if not secret.strip():
                what = "an API token of the Atlassian account" if jsm else "the OpsGenie integration's API key"
                raise HeartbeatValidationError(
                    f"connection {self.opsgenie_heartbeat_conn_id!r} has no {'API token' if jsm else 'API key'}: "
                    f"put {what} in its password field",
                    errors={"password": "is required"},
                )
            mask_secret(secret)
            extras = conn.extra_dejson
            # Extras under sensitive names (token, secret, ...) are masked too. Values too short
            # to mask are left out: the masker would only warn about them.
            mask_secret({k: v for k, v in extras.items() if not isinstance(v, str) or len(v) >= 5})
            host = (conn.host or "").rstrip("/")
            if host and conn.port and urlsplit(host if "://" in host else f"//{host}").port is None:
                host = f"{host}:{conn.port}"
            timeouts = {
                "connect_timeout": _seconds(extras, "connect_timeout", DEFAULT_CONNECT_TIMEOUT),
                "read_timeout": _seconds(extras, "read_timeout", DEFAULT_READ_TIMEOUT),
                "time_budget": self.time_budget or _seconds(extras, "time_budget", DEFAULT_TIME_BUDGET),
            }
            if jsm:
                backend = jsm_backend(
                    conn.login or "",
                    secret,
                    cloud_id=str(_extra(extras, "cloud_id") or ""),
                    team_id=str(_extra(extras, "team_id") or ""),
                    base_url=host or JSM_BASE_URL,
                )
            else:
                backend = opsgenie_backend(secret, resolve_base_url(host, _extra(extras, "region")))
            return HeartbeatClient(backend, **timeouts)

    def get_conn(self) -> HeartbeatClient:
        return self.client

    def account_fingerprint(self) -> str:
        """A hash of the connection's base URL, scope and credentials: tells accounts apart, reveals no key."""
        return self.client.account_fingerprint()

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Bound all calls made inside the block by one overall deadline."""
        with self.client.deadline(seconds):
            yield

    # ------------------------------------------------------------------ the API

    def create_heartbeat(self, **fields: Any) -> Heartbeat:
        """Create a heartbeat (``name``, ``interval``, ``interval_unit``, ``enabled``, alert fields...)."""
        with airflow_errors():
            return self.client.create_heartbeat(**fields)

    def list_heartbeats(self) -> HeartbeatList:
        with airflow_errors():
            return self.client.list_heartbeats()

    def get_heartbeat(self, name: str) -> Heartbeat:
        with airflow_errors():
            return self.client.get_heartbeat(name)

    def update_heartbeat(self, name: str, **changes: Any) -> HeartbeatStatus:
        with airflow_errors():
            return self.client.update_heartbeat(name, **changes)

    def delete_heartbeat(self, name: str) -> Acknowledgement:
        with airflow_errors():
            return self.client.delete_heartbeat(name)

    def ping_heartbeat(self, name: str) -> Acknowledgement:
        with airflow_errors():
            return self.client.ping_heartbeat(name)

    def enable_heartbeat(self, name: str) -> HeartbeatStatus:
        with airflow_errors():
            return self.client.enable_heartbeat(name)

    def disable_heartbeat(self, name: str) -> HeartbeatStatus:
        with airflow_errors():
            return self.client.disable_heartbeat(name)

    def ensure_heartbeat(self, *, policy: EnsurePolicy = DEFAULT_POLICY, **fields: Any) -> EnsureResult:
        """Create the heartbeat, or update it to match as ``policy`` allows; nothing when it already matches."""
        with airflow_errors():
            return self.client.ensure_heartbeat(policy=policy, **fields)

    def ensure_heartbeats(
        self, heartbeats: Iterable[EnsureRequest | Mapping[str, Any]], *, max_workers: int = 8
    ) -> list[EnsureResult | HeartbeatError]:
        """Ensure many heartbeats concurrently; one result or error per heartbeat, in order."""
        with airflow_errors():
            results = self.client.ensure_heartbeats(heartbeats, max_workers=max_workers)
        return [as_airflow_error(r) if isinstance(r, HeartbeatError) else r for r in results]

    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated call (list), for the UI's Test button."""
        try:
            with self.deadline(10):
                count = len(self.list_heartbeats())
        except HeartbeatForbiddenError:
            return True, (
                "The API key is valid but may only ping (403 on list): enough for the success "
                "callback, not for operators that manage heartbeats."
            )
        except (HeartbeatError, AirflowException) as exc:
            return False, str(exc)
        return True, f"Connected to {self.client.base_url}: {count} heartbeat(s) visible."


@with_legacy_connection_form
class JsmOpsHeartbeatHook(OpsgenieHeartbeatHook):
    """The hook for a ``jsm_ops_heartbeat`` connection (Jira Service Management Operations).

    Identical to :class:`OpsgenieHeartbeatHook`, which already accepts either connection
    type; this class registers the JSM connection form. Login = the account's email,
    password = an API token, host = ``https://api.atlassian.com`` when empty, extras
    ``cloud_id`` and ``team_id``.
    """

    default_conn_name = "jsm_ops_heartbeat_default"
    conn_type = JSM_CONN_TYPE
    hook_name = "JSM Operations Heartbeat"

    def __init__(self, opsgenie_heartbeat_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(opsgenie_heartbeat_conn_id, **kwargs)
