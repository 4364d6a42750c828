"""Fault injection: rate limits, error answers, latency and dropped connections.

A fault is a dict (as posted to ``/_emulator/faults``)::

    {"kind": "status", "status": 503, "endpoint": "ping", "times": 2}
    {"kind": "status", "status": 500, "share": 0.3, "seed": 7}
    {"kind": "status", "status": 429, "headers": {"Retry-After": "1"}, "times": 1}
    {"kind": "rate_limit", "rate": 50, "burst": 50}
    {"kind": "latency", "seconds": 2.5}
    {"kind": "drop"}                       # reply cut off mid-body (request processed)
    {"kind": "body", "status": 200, "body": "<html>oops</html>", "content_type": "text/html"}

``endpoint`` is one of create, list, get, update, delete, ping, enable, disable, or
``*`` (the default). ``times`` limits a fault to the next N matching requests;
``share`` applies it to that fraction of them (seeded, so runs repeat); with
neither it applies to every matching request. ``process`` says whether the request is
carried out before the fault answers (default: true for ``drop``, false otherwise).

A 429 (``rate_limit``, or ``status`` 429) carries OpsGenie's own headers:
``X-RateLimit-State: THROTTLED``, ``X-RateLimit-Reason`` (``reason``, default ``ACCOUNT``)
and ``X-RateLimit-Period-In-Sec`` (``period_in_sec``, default 60: the per-minute window, the
length of the window and not a wait). ``Retry-After`` only when ``retry_after`` (or a header)
is given: OpsGenie does not document it.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

ENDPOINTS = ("create", "list", "get", "update", "delete", "ping", "enable", "disable")
KINDS = ("status", "rate_limit", "latency", "drop", "body")
RATE_LIMIT_MESSAGE = "You are making too many requests! To avoid errors, we recommend you limit requests."


class FaultSpecError(ValueError):
    """A fault definition the emulator does not understand."""


@dataclass
class Fault:
    kind: str
    endpoint: str = "*"
    times: int | None = None
    share: float | None = None
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    content_type: str = "application/json"
    seconds: float = 0.0
    rate: float = 0.0
    burst: float = 0.0
    period_in_sec: int = 60
    reason: str = "ACCOUNT"
    retry_after: float | None = None
    process: bool = False
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _tokens: float = 0.0
    _refilled: float = 0.0

    @classmethod
    def from_spec(cls, spec: Any) -> Fault:
        if not isinstance(spec, dict):
            raise FaultSpecError(f"a fault must be an object, got {type(spec).__name__}")
        kind = spec.get("kind")
        if kind not in KINDS:
            raise FaultSpecError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        endpoint = spec.get("endpoint", "*")
        if endpoint != "*" and endpoint not in ENDPOINTS:
            raise FaultSpecError(f"endpoint must be '*' or one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
        known = {
            "kind",
            "endpoint",
            "times",
            "share",
            "seed",
            "status",
            "headers",
            "body",
            "content_type",
            "seconds",
            "rate",
            "burst",
            "period_in_sec",
            "reason",
            "retry_after",
            "process",
        }
        unknown = set(spec) - known
        if unknown:
            raise FaultSpecError(f"unknown fault keys: {sorted(unknown)}")
        fault = cls(
            kind=kind,
            endpoint=endpoint,
            times=spec.get("times"),
            share=spec.get("share"),
            status=int(spec.get("status", 200 if kind == "body" else 500)),
            headers={str(k): str(v) for k, v in (spec.get("headers") or {}).items()},
            body=spec.get("body"),
            content_type=str(spec.get("content_type", "application/json")),
            seconds=float(spec.get("seconds", 0.0)),
            rate=float(spec.get("rate", 0.0)),
            burst=float(spec.get("burst") or spec.get("rate") or 0.0),
            period_in_sec=int(spec.get("period_in_sec", 60)),
            reason=str(spec.get("reason", "ACCOUNT")),
            retry_after=spec.get("retry_after"),
            process=bool(spec.get("process", kind == "drop")),
        )
        if fault.kind == "rate_limit" and fault.rate <= 0:
            raise FaultSpecError("rate_limit needs a positive 'rate' (requests per second)")
        if fault.share is not None and not 0 <= fault.share <= 1:
            raise FaultSpecError("share must be between 0 and 1")
        fault._rng.seed(spec.get("seed", 0))
        fault._tokens = fault.burst
        fault._refilled = time.monotonic()
        return fault

    def matches(self, endpoint: str) -> bool:
        """Whether this fault applies to this request (and use up one of its ``times``)."""
        if self.endpoint not in ("*", endpoint):
            return False
        if self.kind == "rate_limit":
            return self._throttled()
        if self.times is not None:
            if self.times <= 0:
                return False
            self.times -= 1
            return True
        if self.share is not None:
            return self._rng.random() < self.share
        return True

    def _throttled(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return False
        return True

    def rate_limit_headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-State": "THROTTLED",
            "X-RateLimit-Reason": self.reason,
            "X-RateLimit-Period-In-Sec": str(self.period_in_sec),
        }
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class FaultSet:
    """The active faults; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._specs: list[dict[str, Any]] = []

    def replace(self, specs: list[Any]) -> None:
        faults = [Fault.from_spec(spec) for spec in specs]
        with self._lock:
            self._faults = faults
            self._specs = list(specs)

    def clear(self) -> None:
        self.replace([])

    def specs(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._specs)

    def select(self, endpoint: str) -> tuple[float, Fault | None]:
        """Total added latency, and the first fault that answers in place of the service."""
        delay = 0.0
        with self._lock:
            for fault in self._faults:
                if not fault.matches(endpoint):
                    continue
                if fault.kind == "latency":
                    delay += fault.seconds
                    continue
                return delay, fault
        return delay, None
