"""Whose heartbeats these are: this deployment's markers, and what each face may do to the others.

Every face follows one rule: a heartbeat this deployment creates carries its marker
``managed-by-airflow:<deployment>``; one without it (made by hand, or another deployment's) is
never changed, disabled or deleted unless the user asks to adopt it.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_opsgenie_hb.api.policy import (
    LEGACY_OWNER_MARKER,
    OWNER_MARKER_PREFIX,
    PAUSED_MARKER_PREFIX,
    EnsurePolicy,
)
from airflow_provider_opsgenie_hb.api.schema import Heartbeat
from airflow_provider_opsgenie_hb.settings import deployment


def owner_marker(name: str | None = None) -> str:
    """The alert tag that says a heartbeat is managed by this deployment (or by ``name``)."""
    return OWNER_MARKER_PREFIX + (name or deployment())


def paused_marker(name: str | None = None) -> str:
    """The alert tag that says sync disabled a heartbeat because its DAG is paused in this deployment."""
    return PAUSED_MARKER_PREFIX + (name or deployment())


def ensure_policy(*, adopt: bool = False, compare_interval: bool = True) -> EnsurePolicy:
    """The policy of a face that ensures one heartbeat (the callback, the ensure operator, the page)."""
    return EnsurePolicy(marker=owner_marker(), adopt=adopt, compare_interval=compare_interval)


@dataclass(frozen=True)
class Ownership:
    """Whose heartbeats sync and migrate act on, and what they may do to the others."""

    deployment: str
    #: take over existing heartbeats that this deployment does not manage
    adopt: bool = False
    #: put this deployment's marker on what it creates or updates (sync does; migrate copies tags as they are)
    mark: bool = True

    def owns(self, heartbeat: Heartbeat) -> bool:
        """Managed here: this deployment's marker, or the marker of earlier releases (upgraded when declared)."""
        tags = heartbeat.alert_tags
        return owner_marker(self.deployment) in tags or LEGACY_OWNER_MARKER in tags
