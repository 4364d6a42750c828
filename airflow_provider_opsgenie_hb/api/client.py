"""The heartbeat client: the eight operations of the Heartbeat API, and ensure (create or update).

No Airflow import: usable on its own. One :class:`HeartbeatClient` talks to one
:class:`~airflow_provider_opsgenie_hb.api.backends.Backend` (OpsGenie or JSM Operations)
over one :class:`~airflow_provider_opsgenie_hb.api.transport.Transport`. Every field is
checked before anything is sent, and every result carries OpsGenie's requestId and the
number of retries it took.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import copy_context
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_opsgenie_hb.api.backends import (
    DEFAULT_BASE_URL,
    JSM_BASE_URL,
    Backend,
    check_name,
    jsm_backend,
    opsgenie_backend,
)
from airflow_provider_opsgenie_hb.api.errors import (
    HeartbeatAlreadyExistsError,
    HeartbeatError,
    HeartbeatNotFoundError,
    HeartbeatResponseError,
    HeartbeatUnsupportedError,
    HeartbeatValidationError,
)
from airflow_provider_opsgenie_hb.api.policy import EnsurePolicy, is_owner_marker
from airflow_provider_opsgenie_hb.api.schema import (
    API_FIELD_NAMES,
    REQUIRED_ON_CREATE,
    Heartbeat,
    HeartbeatFields,
    check_fields,
    to_api_fields,
)
from airflow_provider_opsgenie_hb.api.transport import Reply, Transport

if TYPE_CHECKING:
    from typing_extensions import Unpack

log = logging.getLogger(__name__)

#: no ownership rule: update whatever differs (what a plain ``ensure_heartbeat`` call does)
DEFAULT_POLICY = EnsurePolicy()


@dataclass(frozen=True)
class HeartbeatStatus:
    """What update, enable and disable answer: the name and the two flags."""

    name: str
    enabled: bool
    expired: bool
    request_id: str | None = field(default=None, compare=False)
    retries: int = field(default=0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "enabled": self.enabled, "expired": self.expired}


@dataclass(frozen=True)
class Acknowledgement:
    """What ping and delete answer: the service's message and its request id."""

    result: str
    request_id: str | None
    retries: int = field(default=0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, "request_id": self.request_id}


class HeartbeatList(list[Heartbeat]):
    """The heartbeats of a list call, with the requestId of its (last) answer, the retries it took, and
    the service's clock when it answered (epoch seconds; None when it sent no ``Date``)."""

    def __init__(
        self,
        items: Iterable[Heartbeat] = (),
        request_id: str | None = None,
        retries: int = 0,
        server_time: float | None = None,
    ) -> None:
        super().__init__(items)
        self.request_id = request_id
        self.retries = retries
        self.server_time = server_time


@dataclass(frozen=True)
class EnsureResult:
    """What ensure did: ``created``, ``updated`` (with the changed fields), ``unchanged``, or
    ``conflict`` (exists with the fields in ``changed`` differing, and the policy forbids the change)."""

    action: str
    name: str
    changed: dict[str, Any]
    request_id: str | None = field(default=None, compare=False)
    retries: int = field(default=0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "name": self.name, "changed": dict(self.changed)}


@dataclass(frozen=True)
class EnsureRequest:
    """One heartbeat for :meth:`HeartbeatClient.ensure_heartbeats`: its fields and the policy beside them."""

    fields: Mapping[str, Any]
    policy: EnsurePolicy = DEFAULT_POLICY


class HeartbeatClient:
    """Client for the eight endpoints of a Heartbeat API, over one backend.

    :param backend: where the operations go and how to sign in (:func:`opsgenie_backend`,
        :func:`jsm_backend`); :meth:`opsgenie` and :meth:`jsm` build both in one step.
    :param transport_options: ``connect_timeout``, ``read_timeout``, ``time_budget``,
        ``max_attempts``, ``pool_size``, ``retrying``, ``adapter`` (see :class:`Transport`).
    """

    def __init__(self, backend: Backend, **transport_options: Any) -> None:
        self.backend = backend
        self.transport = Transport(backend.base_url, backend.auth, **transport_options)

    @classmethod
    def opsgenie(cls, api_key: str, base_url: str = DEFAULT_BASE_URL, **transport_options: Any) -> HeartbeatClient:
        """A client of OpsGenie (the integration's API key, ``https://api.opsgenie.com`` by default)."""
        return cls(opsgenie_backend(api_key, base_url), **transport_options)

    @classmethod
    def jsm(
        cls,
        email: str,
        api_token: str,
        *,
        cloud_id: str,
        team_id: str,
        base_url: str = JSM_BASE_URL,
        **transport_options: Any,
    ) -> HeartbeatClient:
        """A client of Jira Service Management Operations (one team's heartbeats)."""
        backend = jsm_backend(email, api_token, cloud_id=cloud_id, team_id=team_id, base_url=base_url)
        return cls(backend, **transport_options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.backend.label}, base_url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        return self.backend.base_url

    @property
    def time_budget(self) -> float:
        return self.transport.time_budget

    @property
    def read_timeout(self) -> float:
        return self.transport.read_timeout

    def account_fingerprint(self) -> str:
        """A hash of the base URL, scope and credentials: tells accounts apart, reveals no key."""
        return self.backend.account

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> HeartbeatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Bound every call made inside the block (by this thread) by one overall deadline, retries included."""
        with self.transport.deadline(seconds):
            yield

    # ------------------------------------------------------------------ the eight operations

    def create_heartbeat(self, **fields: Unpack[HeartbeatFields]) -> Heartbeat:
        """Create a heartbeat; raises :class:`HeartbeatAlreadyExistsError` if the name is taken."""
        wanted: dict[str, Any] = {"enabled": True, **fields}
        self._validate(wanted, required=REQUIRED_ON_CREATE)
        return self._create_or_read_back(wanted)[0]

    def list_heartbeats(self) -> HeartbeatList:
        """All heartbeats of the account (every page, where the service pages)."""
        return self._list({})

    def get_heartbeat(self, name: str) -> Heartbeat:
        """One heartbeat by name; raises :class:`HeartbeatNotFoundError` if there is none."""
        if not self.backend.lookup_by_list:
            return self._heartbeat(self._call("get", name))
        check_name(name)
        found = self._list({"name": name})
        for heartbeat in found:
            if heartbeat.name == name:
                return dataclasses.replace(heartbeat, request_id=found.request_id, retries=found.retries)
        route = self.backend.route("get")
        raise HeartbeatNotFoundError(
            f"{route.method} {route.path}?name=...: no heartbeat named {name!r} in team {self.backend.scope}",
            status=404,
            request_id=found.request_id,
        )

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

    def delete_heartbeat(self, name: str) -> Acknowledgement:
        """Delete a heartbeat; raises :class:`HeartbeatNotFoundError` if there is none."""
        attempts: list[HeartbeatError] = []
        try:
            return self._ack(self._call("delete", name, attempts=attempts), default="Deleted")
        except HeartbeatNotFoundError as exc:
            if not any(e.maybe_processed for e in attempts[:-1]):
                raise
            # An earlier attempt probably deleted it.
            return Acknowledgement("Deleted", exc.request_id, len(attempts) - 1)

    def ping_heartbeat(self, name: str) -> Acknowledgement:
        """Ping a heartbeat. OpsGenie answers PONG even for a name that does not exist."""
        return self._ack(self._call("ping", name))

    def enable_heartbeat(self, name: str) -> HeartbeatStatus:
        return self._toggle(name, enabled=True)

    def disable_heartbeat(self, name: str) -> HeartbeatStatus:
        return self._toggle(name, enabled=False)

    # ------------------------------------------------------------------ ensure

    def ensure_heartbeat(self, *, policy: EnsurePolicy = DEFAULT_POLICY, **fields: Any) -> EnsureResult:
        """Create the heartbeat, or update the fields that differ; nothing when it matches.

        Fields left as ``None`` are not compared (the service's defaults stand); ``enabled=None``
        leaves the enabled state alone (a heartbeat created here starts enabled). ``created``
        only when this call's create was confirmed by the service; a retried create that
        finds the heartbeat already holding these settings says ``unchanged``. ``policy``
        says what may be done to a heartbeat that exists (see :class:`EnsurePolicy`).
        """
        wanted = {"enabled": True, **fields}
        to_create = self._to_create(wanted, policy)
        name = to_create["name"]
        if not policy.compare_interval:
            wanted["interval"] = wanted["interval_unit"] = None
        try:
            current = self.get_heartbeat(name)
        except HeartbeatNotFoundError:
            try:
                created, confirmed = self._create_or_read_back(to_create)
            except HeartbeatAlreadyExistsError as exc:
                # Created by someone else meanwhile: compare with what the service holds.
                current = exc.current or self.get_heartbeat(name)
            else:
                if confirmed:
                    changed = {k: v for k, v in to_create.items() if v is not None}
                    return EnsureResult("created", name, changed, created.request_id, created.retries)
                return EnsureResult("unchanged", name, {}, created.request_id, created.retries)
        changed = current.differences(wanted)
        unmarked = policy.marker is not None and policy.marker not in current.alert_tags
        if not changed and not (policy.adopt and unmarked):
            return EnsureResult("unchanged", name, {}, current.request_id, current.retries)
        if not policy.update_existing or not (policy.adopt or policy.owns(current.alert_tags)):
            return EnsureResult("conflict", name, changed, current.request_id, current.retries)
        if unmarked:  # adopted (or marked by an earlier release): this deployment's marker, and no other owner's
            tags = changed.get("alert_tags", current.alert_tags)
            changed["alert_tags"] = [*(t for t in tags if not is_owner_marker(t)), policy.marker]
        status = self.update_heartbeat(name, **changed)
        return EnsureResult("updated", name, changed, status.request_id, status.retries)

    def ensure_heartbeats(
        self, heartbeats: Iterable[EnsureRequest | Mapping[str, Any]], *, max_workers: int = 8
    ) -> list[EnsureResult | HeartbeatError]:
        """Ensure many heartbeats concurrently (each an :class:`EnsureRequest`, or fields with the default policy).

        Calls that meet a rate limit back off and retry like any other call. Returns one
        entry per heartbeat, in order: its :class:`EnsureResult`, or the error that ended it
        (one failure does not stop the others). Bad input is refused before anything is sent.
        """
        requests = [item if isinstance(item, EnsureRequest) else EnsureRequest(item) for item in heartbeats]
        for request in requests:
            self._to_create(dict(request.fields), request.policy)

        def ensure(request: EnsureRequest) -> EnsureResult | HeartbeatError:
            try:
                return self.ensure_heartbeat(policy=request.policy, **request.fields)
            except HeartbeatError as exc:
                return exc

        # Each worker runs in a copy of the caller's context, so a deadline block around
        # this call bounds the workers' calls too.
        contexts = [copy_context() for _ in requests]
        with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="opsgenie-ensure") as pool:
            return list(pool.map(lambda context, request: context.run(ensure, request), contexts, requests))

    # ------------------------------------------------------------------ plumbing

    def _to_create(self, fields: dict[str, Any], policy: EnsurePolicy) -> dict[str, Any]:
        """The fields a create would send (checked): enabled unless told otherwise, the marker beside the tags."""
        to_create = {**fields, "enabled": True if fields.get("enabled") is None else fields["enabled"]}
        tags = fields.get("alert_tags")
        if policy.marker is not None and policy.marker not in (tags or ()):
            to_create["alert_tags"] = [*(tags or ()), policy.marker]
        self._validate(to_create, required=REQUIRED_ON_CREATE)
        return to_create

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
            return self._heartbeat(self._call("create", json=to_api_fields(fields), attempts=attempts)), True
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

    def _update(self, name: str, changes: Mapping[str, Any]) -> HeartbeatStatus:
        body = to_api_fields(changes)
        if self.backend.name_in_query:
            body = {"name": name, **body}
        return self._status(self._call("update", name, json=body))

    def _toggle(self, name: str, *, enabled: bool) -> HeartbeatStatus:
        if self.backend.toggle_by_patch:
            check_name(name)
            return self._update(name, {"enabled": enabled})
        return self._status(self._call("enable" if enabled else "disable", name))

    def _list(self, query: Mapping[str, Any]) -> HeartbeatList:
        found = HeartbeatList()
        size = self.backend.page_size
        while True:
            params = {**query, "offset": len(found), "size": size} if size else dict(query)
            reply = self._call("list", params=params)
            try:
                items: Any = reply.body
                for key in self.backend.list_items:
                    items = items[key]
                page = [Heartbeat.from_api(item) for item in items]
            except (KeyError, TypeError, ValueError) as exc:
                raise _shape_error(reply.body, exc) from None
            found += page
            found.request_id, found.retries = reply.request_id, found.retries + reply.retries
            found.server_time = reply.server_time
            if not size or not page or not (reply.body.get("links") or {}).get("next"):
                return found

    def _call(
        self,
        operation: str,
        name: str | None = None,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        attempts: list[HeartbeatError] | None = None,
    ) -> Reply:
        route = self.backend.route(operation, name)
        for key, reason in self.backend.unsupported.items():
            if json is not None and json.get(API_FIELD_NAMES[key]) is not None:
                raise HeartbeatUnsupportedError(
                    f"{key} has no {self.backend.label} equivalent: {reason}",
                    errors={key: f"not supported on {self.backend.label}"},
                )
        return self.transport.request(
            route.method,
            route.path,
            json=json,
            ok=route.ok,
            params={**route.params, **(params or {})} or None,
            attempts=attempts,
        )

    @staticmethod
    def _validate(fields: Mapping[str, Any], *, required: tuple[str, ...]) -> None:
        check_fields("invalid heartbeat", fields, required=required)

    def _heartbeat(self, reply: Reply) -> Heartbeat:
        """The heartbeat in an answer (under the backend's envelope)."""
        envelope = self.backend.envelope
        try:
            data = reply.body[envelope] if envelope else reply.body
            return Heartbeat.from_api(data, request_id=reply.request_id, retries=reply.retries)
        except (KeyError, TypeError, ValueError) as exc:
            raise _shape_error(reply.body, exc) from None

    def _status(self, reply: Reply) -> HeartbeatStatus:
        envelope = self.backend.envelope
        try:
            data = reply.body[envelope] if envelope else reply.body
            # OpsGenie says "expired"; JSM Operations says status "Unresponsive".
            expired = data["expired"] if "expired" in data else data.get("status") == "Unresponsive"
            return HeartbeatStatus(data["name"], bool(data["enabled"]), bool(expired), reply.request_id, reply.retries)
        except (KeyError, TypeError) as exc:
            raise _shape_error(reply.body, exc) from None

    @staticmethod
    def _ack(reply: Reply, default: str | None = None) -> Acknowledgement:
        # OpsGenie: {"result": "PONG"}; JSM Operations: {"message": "PONG"}, or no body (204) for delete.
        result = reply.body.get("result", reply.body.get("message", default if not reply.body else None))
        if not isinstance(result, str):
            raise _shape_error(reply.body, KeyError("result"))
        return Acknowledgement(result, reply.request_id, reply.retries)


def _shape_error(payload: Any, exc: Exception) -> HeartbeatResponseError:
    request_id = payload.get("requestId") if isinstance(payload, dict) else None
    return HeartbeatResponseError(
        f"the service's answer does not have the documented shape ({type(exc).__name__}: {exc})",
        request_id=request_id,
    )
