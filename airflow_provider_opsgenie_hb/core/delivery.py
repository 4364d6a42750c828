"""One delivery for every face: ping, then set the interval, then ensure or check.

The success callback, the listener and the page's Ping all report a success through
:func:`deliver`. The ping goes first (``interval="next_run"`` orders it with the interval's
PATCH, see :mod:`~airflow_provider_opsgenie_hb.core.next_run`); ensuring the heartbeat's
settings (or checking that it exists) comes after it, each skipped while the record says it
was done recently. Nothing raises: what went wrong is in the :class:`DeliveryOutcome`, split
by whether the ping went out, so a face can warn without ever failing the run it reports on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_opsgenie_hb.api.errors import (
    HeartbeatError,
    HeartbeatForbiddenError,
    HeartbeatNotFoundError,
    HeartbeatTimeoutError,
    HeartbeatValidationError,
)
from airflow_provider_opsgenie_hb.api.policy import EnsurePolicy
from airflow_provider_opsgenie_hb.core import record
from airflow_provider_opsgenie_hb.core.advice import what_to_do
from airflow_provider_opsgenie_hb.core.declaration import HeartbeatDeclaration
from airflow_provider_opsgenie_hb.core.schedule import ScheduleIntervalError
from airflow_provider_opsgenie_hb.core.waiting import Call

if TYPE_CHECKING:
    from airflow_provider_opsgenie_hb.core.next_run import NextRun
    from airflow_provider_opsgenie_hb.core.service import HeartbeatService

log = logging.getLogger(__name__)

#: a little of the deadline kept back, so that the client's own error (with its status and
#: requestId) reaches the waiting face before it stops waiting
REPORT_MARGIN = 0.03


@dataclass(frozen=True)
class Delivery:
    """One success to report to one heartbeat.

    :param conn_id: the connection (part of what the record is keyed by).
    :param name: the heartbeat's rendered name.
    :param source: who reports (``callback``, ``listener``, ``page (user)``), for the ping log.
    :param next_run: ``interval="next_run"``: the interval to set (called inside the delivery;
        what it raises is reported as the interval's error, never in the way of the ping).
    :param ensure: the fields to ensure and the policy beside them (called after the ping).
    :param check_exists: without ensure, check (once per record TTL) that the heartbeat exists.
    """

    conn_id: str
    name: str
    source: str
    next_run: Callable[[], NextRun | None] | None = None
    ensure: Callable[[], tuple[Mapping[str, Any], EnsurePolicy]] | None = None
    check_exists: bool = False


@dataclass
class DeliveryOutcome:
    """What one delivery did; read by the face once it is done (or its deadline passed)."""

    name: str
    pinged: bool = False
    #: before or instead of the ping: the heartbeat was not pinged
    error: BaseException | None = None
    #: the ensure or check after a ping that went out
    after_ping_error: BaseException | None = None
    #: ``interval="next_run"``: the interval was not set
    interval_error: BaseException | None = None

    def warn(self, started: float, *, after: str) -> None:
        """Log a warning for what did not happen (``after``: what followed the ping, ensure or check)."""
        if self.error is not None:
            advice = what_to_do(self.error)
            log.warning(
                "OpsGenie heartbeat %r was not pinged after %.1fs: %s%s",
                self.name,
                time.monotonic() - started,
                self.error,
                f". What to do: {advice}" if advice else "",
            )
            return
        if self.interval_error is not None:
            log.warning("%s", self.interval_error)
        if self.after_ping_error is not None:
            log.warning(
                "OpsGenie heartbeat %r was pinged, but the %s after the ping did not complete: %s",
                self.name,
                after,
                self.after_ping_error,
            )


def run_delivery(
    declaration: HeartbeatDeclaration,
    name: str,
    source: str,
    dag: Any,
    dag_run: Any,
    *,
    render: Any = None,
    ensure: bool = False,
    check_exists: bool = False,
) -> Delivery:
    """The delivery of a successful ``dag_run`` of ``dag`` to the heartbeat ``name`` that ``declaration``
    declares: its interval set from the run (``next_run``), then ensured under this deployment's
    ownership marker, or checked to exist. The marker is read after the ping: a bad
    ``[opsgenie_heartbeat] deployment`` stops the ensure, never the ping."""

    def next_run() -> NextRun:
        from airflow_provider_opsgenie_hb.core.next_run import next_run_of

        return next_run_of(dag, dag_run, grace=getattr(declaration.interval, "grace", None))

    def fields_and_policy() -> tuple[Mapping[str, Any], EnsurePolicy]:
        from airflow_provider_opsgenie_hb.core.ownership import owner_marker

        return declaration.desired_fields(dag, name=name, render=render), declaration.ensure_policy(owner_marker())

    return Delivery(
        declaration.conn_id,
        name,
        source,
        next_run=next_run if declaration.follows_next_run and dag is not None else None,
        ensure=fields_and_policy if ensure else None,
        check_exists=check_exists,
    )


def deliver(service: HeartbeatService, delivery: Delivery, outcome: DeliveryOutcome, *, budget: float) -> None:
    """Ping, set the interval, then ensure or check, within ``budget`` seconds; fills ``outcome``."""
    started = time.monotonic()
    try:
        scope = record.scope(delivery.conn_id, service, delivery.name)
        with service.deadline(budget):
            wanted = _wanted(delivery, outcome)

            def ping() -> None:
                ack = _send_ping(service, delivery)
                outcome.pinged = True  # before the ping log: a slow record never turns a ping into "not pinged"
                _log_ping(delivery, ack)

            interval = None
            try:
                if wanted is None:
                    ping()
                else:
                    from airflow_provider_opsgenie_hb.core.next_run import ping_and_set_interval

                    left = budget - (time.monotonic() - started)
                    interval = ping_and_set_interval(service, scope, wanted, ping, patch_seconds=left / 2)
            except HeartbeatNotFoundError:
                if delivery.ensure is None:  # JSM Operations refuses pings to a missing heartbeat
                    raise
            # The PATCH found no heartbeat: the ping reached nothing, whatever the record says.
            missing = interval is not None and interval.missing
            if interval is not None and interval.error is not None and not (missing and delivery.ensure):
                outcome.interval_error = interval.error
            try:
                if delivery.ensure is not None:
                    _ensure(service, delivery, scope, reached=outcome.pinged and not missing, exact=wanted)
                    outcome.pinged = True
                elif delivery.check_exists:
                    _check_exists(service, delivery, scope)
            except (HeartbeatError, ScheduleIntervalError, ValueError) as exc:  # ValueError: a bad setting
                if not outcome.pinged:
                    raise
                outcome.after_ping_error = exc
    except BaseException as exc:  # handed to the face
        if outcome.pinged:
            outcome.after_ping_error = exc
        else:
            outcome.error = exc


def deliver_within(
    seconds: float, connect: Callable[[], HeartbeatService], delivery: Delivery, *, started: float | None = None
) -> DeliveryOutcome:
    """:func:`deliver` in a thread of its own, waited for no longer than ``seconds`` (from ``started``).

    ``connect`` (the connection lookup) runs in that thread too, so it counts against the time.
    """
    started = time.monotonic() if started is None else started
    outcome = DeliveryOutcome(delivery.name)

    def work() -> None:
        service = connect()
        budget = seconds * (1 - REPORT_MARGIN) - (time.monotonic() - started)
        deliver(service, delivery, outcome, budget=budget)

    call = Call(work, delivery.name[:40])
    try:
        call.result(max(0.0, seconds - (time.monotonic() - started)), lambda: _Late())
    except _Late:
        timeout = HeartbeatTimeoutError(
            f"the deadline of {seconds:g}s passed "
            + ("after the ping (it was sent)" if outcome.pinged else "before OpsGenie confirmed the ping")
        )
        if outcome.pinged:
            outcome.after_ping_error = outcome.after_ping_error or timeout
        else:
            outcome.error = timeout
    except BaseException as exc:  # the connection lookup failed
        outcome.error = exc
    return outcome


class _Late(Exception):
    """The delivery's thread did not end in time."""


def _wanted(delivery: Delivery, outcome: DeliveryOutcome) -> NextRun | None:
    if delivery.next_run is None:
        return None
    try:
        return delivery.next_run()
    except Exception as exc:  # never in the way of the ping
        outcome.interval_error = HeartbeatValidationError(f"interval='next_run' cannot set the interval: {exc}")
        return None


def _ping(service: HeartbeatService, delivery: Delivery) -> None:
    _log_ping(delivery, _send_ping(service, delivery))


def _send_ping(service: HeartbeatService, delivery: Delivery) -> Any:
    ack = service.ping_heartbeat(delivery.name)
    by = "" if delivery.source == "callback" else f" from the {delivery.source}"
    log.info("Pinged OpsGenie heartbeat %r%s (requestId %s)", delivery.name, by, ack.request_id)
    return ack


def _log_ping(delivery: Delivery, ack: Any) -> None:
    record.record_ping(delivery.conn_id, delivery.name, ack.request_id, delivery.source)


def _ensure(
    service: HeartbeatService, delivery: Delivery, scope: tuple[str, ...], *, reached: bool, exact: NextRun | None
) -> None:
    """Create the heartbeat or bring it in line (once per record TTL); ping again if the first ping reached none."""
    assert delivery.ensure is not None
    name = delivery.name
    fields, policy = delivery.ensure()
    fields = dict(fields)
    # One entry per heartbeat, holding a hash of the settings: settings templated with run context
    # (``{{ ds }}``) replace it rather than add an entry per run.
    key, settings = record.fact("ensured", *scope), record.digest(fields)
    if reached and record.recall(key) == settings:
        return
    if exact is not None:  # created with the interval until the next run; an existing one keeps its own
        fields["interval"], fields["interval_unit"] = exact.interval.interval, exact.interval.interval_unit
    result = service.ensure_heartbeat(policy=policy, **fields)
    if result.action == "conflict":
        log.warning(
            "OpsGenie heartbeat %r exists without this deployment's marker %r (made by hand, or another "
            "deployment's): ensure left it unchanged (it differs in %s). Adopt it with "
            "`opsgenie-heartbeat sync --adopt`, or drop ensure=True.",
            name,
            policy.marker,
            ", ".join(sorted(result.changed)),
        )
    else:
        log.info(
            "OpsGenie heartbeat %r %s (interval %s %s)",
            name,
            result.action,
            fields["interval"],
            fields["interval_unit"],
        )
    if result.action == "created" and exact is not None:
        from airflow_provider_opsgenie_hb.core.next_run import remember_interval

        remember_interval(scope, exact)
    if result.action == "created" or not reached:
        _ping(service, delivery)
    record.remember(key, settings)


def _check_exists(service: HeartbeatService, delivery: Delivery, scope: tuple[str, ...]) -> None:
    """OpsGenie answers PONG for any name; a GET (once a day) tells a typo apart."""
    key = record.fact("exists", *scope)
    if record.is_recorded(key):
        return
    try:
        service.get_heartbeat(delivery.name)
    except HeartbeatNotFoundError:
        how = (
            "`airflow opsgenie-heartbeat sync` where the DAG files are"
            if delivery.source == "listener"
            else "OpsgenieEnsureHeartbeatOperator, or pass ensure=True to this notifier"
        )
        log.warning(
            "OpsGenie heartbeat %r does not exist: OpsGenie accepts pings to it but monitors "
            "nothing. Create it (in OpsGenie, or with %s; connection %r).",
            delivery.name,
            how,
            delivery.conn_id,
        )
        return
    except HeartbeatForbiddenError:
        log.debug("Cannot check that heartbeat %r exists: the key may only ping", delivery.name)
    record.record(key)
