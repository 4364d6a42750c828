"""What the core needs of the heartbeat API: the hook a face builds from a connection (or a bare client).

The core never builds a hook itself (it sits below the hooks); each face hands one in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # DAG files import the callback, and so this module: requests only comes with a call
    from airflow_provider_opsgenie_hb.api.client import (
        Acknowledgement,
        EnsureRequest,
        EnsureResult,
        HeartbeatList,
        HeartbeatStatus,
    )
    from airflow_provider_opsgenie_hb.api.errors import HeartbeatError
    from airflow_provider_opsgenie_hb.api.policy import EnsurePolicy
    from airflow_provider_opsgenie_hb.api.schema import Heartbeat


class HeartbeatService(Protocol):
    """The operations, a deadline, and whose account it is."""

    def ping_heartbeat(self, name: str) -> Acknowledgement: ...

    def get_heartbeat(self, name: str) -> Heartbeat: ...

    def list_heartbeats(self) -> HeartbeatList: ...

    def update_heartbeat(self, name: str, **changes: Any) -> HeartbeatStatus: ...

    def delete_heartbeat(self, name: str) -> Acknowledgement: ...

    def ensure_heartbeat(self, *, policy: EnsurePolicy = ..., **fields: Any) -> EnsureResult: ...

    def ensure_heartbeats(
        self, heartbeats: Iterable[EnsureRequest | Mapping[str, Any]], *, max_workers: int = 8
    ) -> list[EnsureResult | HeartbeatError]: ...

    def deadline(self, seconds: float) -> AbstractContextManager[None]: ...

    def account_fingerprint(self) -> str: ...
