"""What ensure may do to a heartbeat that exists: the policy that travels beside its fields.

A heartbeat a deployment manages carries the alert tag ``managed-by-airflow:<deployment>``;
sync marks one whose DAG is paused with ``paused-in-airflow:<deployment>``; earlier releases
marked with ``managed-by-airflow-heartbeat-sync``. These tags are bookkeeping, not the user's
alert routing: comparisons of declared tags leave them out, and updates keep them.
"""

from __future__ import annotations

from dataclasses import dataclass

OWNER_MARKER_PREFIX = "managed-by-airflow:"
PAUSED_MARKER_PREFIX = "paused-in-airflow:"
LEGACY_OWNER_MARKER = "managed-by-airflow-heartbeat-sync"


def is_owner_marker(tag: str) -> bool:
    """Whether an alert tag says which deployment manages a heartbeat (this release's marker or an earlier one's)."""
    return tag == LEGACY_OWNER_MARKER or tag.startswith(OWNER_MARKER_PREFIX)


def is_marker(tag: str) -> bool:
    """Whether an alert tag is one of the bookkeeping markers above."""
    return tag == LEGACY_OWNER_MARKER or tag.startswith((OWNER_MARKER_PREFIX, PAUSED_MARKER_PREFIX))


@dataclass(frozen=True)
class EnsurePolicy:
    """How ensure treats a heartbeat that exists with other settings.

    :param marker: the ownership tag put beside the alert tags of a heartbeat ensure creates,
        and needed on an existing one before ensure changes it (None: no ownership rule).
    :param adopt: change an existing heartbeat that lacks the marker (and mark it).
    :param update_existing: change an existing heartbeat at all; False reports ``conflict``.
    :param compare_interval: compare the interval; False uses it only to create (the runs
        set it, ``interval="next_run"``).
    """

    marker: str | None = None
    adopt: bool = False
    update_existing: bool = True
    compare_interval: bool = True

    def owns(self, alert_tags: tuple[str, ...] | list[str]) -> bool:
        """Whether ensure may change a heartbeat carrying these tags."""
        return self.marker is None or self.marker in alert_tags or LEGACY_OWNER_MARKER in alert_tags
