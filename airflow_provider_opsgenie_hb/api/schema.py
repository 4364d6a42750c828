"""The heartbeat model and the one place where its field rules live.

The rules follow OpsGenie's documented limits. Both the client (before anything is
sent) and the emulator (to answer 422 like the real service) check fields here.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pendulum

from airflow_provider_opsgenie_hb.api.errors import HeartbeatValidationError

MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
MAX_ALERT_MESSAGE_LENGTH = 130
MAX_ALERT_TAGS = 20
MAX_ALERT_TAG_LENGTH = 50
# No maximum is documented. OpsGenie's backend is Java: a 32-bit int is the safe bound,
# and anything larger is refused here rather than overflowing on the server.
MAX_INTERVAL = 2**31 - 1
INTERVAL_UNITS = ("minutes", "hours", "days")
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}
ALERT_PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
DEFAULT_ALERT_PRIORITY = "P3"

# snake_case keyword -> OpsGenie's camelCase field.
API_FIELD_NAMES: dict[str, str] = {
    "name": "name",
    "description": "description",
    "interval": "interval",
    "interval_unit": "intervalUnit",
    "enabled": "enabled",
    "owner_team": "ownerTeam",
    "alert_message": "alertMessage",
    "alert_tags": "alertTags",
    "alert_priority": "alertPriority",
}
CONFIG_FIELDS = tuple(f for f in API_FIELD_NAMES if f != "name")

# Alert tags that say who manages a heartbeat (``managed-by-airflow:<deployment>``), that an
# Airflow DAG is paused (``paused-in-airflow:<deployment>``), or the marker of earlier
# releases. They are bookkeeping, not the user's alert routing: comparisons of a declaration's
# tags leave them out, and updates keep them.
OWNER_MARKER_PREFIX = "managed-by-airflow:"
PAUSED_MARKER_PREFIX = "paused-in-airflow:"
LEGACY_OWNER_MARKER = "managed-by-airflow-heartbeat-sync"


def is_marker(tag: str) -> bool:
    return tag == LEGACY_OWNER_MARKER or tag.startswith((OWNER_MARKER_PREFIX, PAUSED_MARKER_PREFIX))


REQUIRED_ON_CREATE = ("name", "interval", "interval_unit", "enabled")


def _has_control_chars(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def _check_text(value: Any, *, max_length: int, blank_ok: bool = True) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if len(value) > max_length:
        return f"must be at most {max_length} characters, got {len(value)}"
    if not blank_ok and not value.strip():
        return "must not be empty or blank"
    return None


def _check_name(value: Any) -> str | None:
    problem = _check_text(value, max_length=MAX_NAME_LENGTH, blank_ok=False)
    if problem is None and _has_control_chars(value):
        return "must not contain control characters (newline, tab, NUL, ...)"
    if problem is None and value in (".", ".."):
        # Percent-encoding cannot help: URL normalisation treats %2E like ".", so the
        # request would reach a different route.
        return "must not be '.' or '..' (a URL path segment cannot carry them)"
    return problem


def _check_interval(value: Any) -> str | None:
    # bool is an int in Python; True is not an interval.
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be a whole number, got {type(value).__name__} {value!r}"
    if value < 1:
        return f"must be at least 1, got {value}"
    if value > MAX_INTERVAL:
        return f"must be at most {MAX_INTERVAL}, got {value}"
    return None


def _check_choice(value: Any, choices: tuple[str, ...]) -> str | None:
    if value not in choices or not isinstance(value, str):
        return f"must be one of {', '.join(choices)} (exact case), got {value!r}"
    return None


def _check_enabled(value: Any) -> str | None:
    if not isinstance(value, bool):
        return f"must be true or false, got {type(value).__name__} {value!r}"
    return None


def _check_owner_team(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return f"must be an object with 'id' and/or 'name', got {type(value).__name__}"
    unknown = set(value) - {"id", "name"}
    if unknown:
        return f"must only have the keys 'id' and/or 'name', got {sorted(unknown)}"
    if not value:
        return "must give 'id' or 'name'"
    for key, item in value.items():
        if not isinstance(item, str) or not item.strip():
            return f"'{key}' must be a non-empty string, got {item!r}"
    return None


def _check_tags(value: Any) -> str | None:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        return f"must be a list of strings, got {type(value).__name__}"
    if len(value) > MAX_ALERT_TAGS:
        return f"must have at most {MAX_ALERT_TAGS} tags, got {len(value)}"
    for tag in value:
        if not isinstance(tag, str) or not tag.strip():
            return f"each tag must be a non-empty string, got {tag!r}"
        if len(tag) > MAX_ALERT_TAG_LENGTH:
            return f"each tag must be at most {MAX_ALERT_TAG_LENGTH} characters, got {len(tag)} for {tag[:20]!r}..."
    return None


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "name": _check_name,
    "description": lambda v: _check_text(v, max_length=MAX_DESCRIPTION_LENGTH),
    "interval": _check_interval,
    "interval_unit": lambda v: _check_choice(v, INTERVAL_UNITS),
    "enabled": _check_enabled,
    "owner_team": _check_owner_team,
    "alert_message": lambda v: _check_text(v, max_length=MAX_ALERT_MESSAGE_LENGTH),
    "alert_tags": _check_tags,
    "alert_priority": lambda v: _check_choice(v, ALERT_PRIORITIES),
}


def normalise_owner_team(value: Any) -> Any:
    """A plain string names the team: ``"ops"`` means ``{"name": "ops"}``."""
    if isinstance(value, str):
        return {"name": value}
    return value


def field_problems(fields: Mapping[str, Any], *, required: tuple[str, ...] = ()) -> dict[str, str]:
    """Check snake_case heartbeat fields; return ``{field: problem}`` (empty when valid).

    ``None`` means "not given" for optional fields.
    """
    problems: dict[str, str] = {}
    for key in fields:
        if key not in _CHECKS:
            problems[key] = f"is not a heartbeat field; known fields are {', '.join(_CHECKS)}"
    for key, check in _CHECKS.items():
        value = fields.get(key)
        if value is None:
            if key in required:
                problems[key] = "is required"
            continue
        problem = check(normalise_owner_team(value) if key == "owner_team" else value)
        if problem:
            problems[key] = problem
    return problems


def is_template(value: Any) -> bool:
    """A Jinja template (checked after rendering instead of when the DAG is parsed)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    return isinstance(value, (list, tuple)) and any(is_template(v) for v in value)


def check_fields(
    owner: str,
    fields: Mapping[str, Any],
    *,
    required: tuple[str, ...] = (),
    extra_problems: Mapping[str, str] | None = None,
    skip_templates: bool = False,
) -> None:
    """Raise one :class:`HeartbeatValidationError` naming every bad field and its rule."""
    templated = {k for k, v in fields.items() if skip_templates and is_template(v)}
    given = {k: v for k, v in fields.items() if k not in templated}
    still_required = tuple(k for k in required if k not in templated)
    problems = {**(extra_problems or {}), **field_problems(given, required=still_required)}
    if problems:
        listed = "; ".join(f"{k} {v}" for k, v in problems.items())
        raise HeartbeatValidationError(f"{owner}: {listed}", errors=problems)


def to_api_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """snake_case fields -> OpsGenie's JSON body, dropping fields that are not given."""
    body: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        if key == "owner_team":
            value = normalise_owner_team(value)
        elif key == "alert_tags":
            value = list(value)
        body[API_FIELD_NAMES[key]] = value
    return body


def format_ping_time(moment: pendulum.DateTime) -> str:
    """ISO-8601 UTC with milliseconds, as OpsGenie writes it: ``2025-02-20T14:00:05.533Z``."""
    utc = moment.in_timezone("UTC")
    return utc.format("YYYY-MM-DD[T]HH:mm:ss.SSS[Z]")


@dataclass(frozen=True)
class Heartbeat:
    """A heartbeat as OpsGenie reports it, with snake_case attributes."""

    name: str
    interval: int
    interval_unit: str
    enabled: bool
    expired: bool = False
    description: str | None = None
    owner_team: dict[str, str] | None = None
    alert_message: str | None = None
    alert_tags: tuple[str, ...] = field(default_factory=tuple)
    alert_priority: str | None = None
    last_ping_time: pendulum.DateTime | None = None
    #: JSM Operations' status (Unresponsive, Responsive, Off, Pending); None on OpsGenie
    status: str | None = None

    @property
    def interval_seconds(self) -> int:
        return self.interval * UNIT_SECONDS[self.interval_unit]

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Heartbeat:
        """Build from OpsGenie's JSON; raises ``KeyError``/``TypeError``/``ValueError`` on a bad shape."""
        last_ping = data.get("lastPingTime")
        parsed_ping = pendulum.parse(last_ping) if last_ping else None
        if parsed_ping is not None and not isinstance(parsed_ping, pendulum.DateTime):
            raise ValueError(f"lastPingTime is not a date-time: {last_ping!r}")
        name = data["name"]
        interval = data["interval"]
        if not isinstance(name, str) or isinstance(interval, bool) or not isinstance(interval, int):
            raise TypeError("name must be a string and interval an integer")
        owner = data.get("ownerTeam") or ({"id": data["ownerTeamId"]} if data.get("ownerTeamId") else None)
        status = data.get("status")
        # OpsGenie says "expired"; JSM Operations says status "Unresponsive" (and "Hours").
        expired = data.get("expired", status == "Unresponsive")
        return cls(
            name=name,
            interval=interval,
            interval_unit=str(data["intervalUnit"]).lower(),
            enabled=bool(data["enabled"]),
            expired=bool(expired),
            status=status,
            description=data.get("description"),
            owner_team=dict(owner) if owner else None,
            alert_message=data.get("alertMessage"),
            alert_tags=tuple(data.get("alertTags") or ()),
            alert_priority=data.get("alertPriority"),
            last_ping_time=parsed_ping,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (snake_case), fit for XCom."""
        return {
            "name": self.name,
            "interval": self.interval,
            "interval_unit": self.interval_unit,
            "enabled": self.enabled,
            "expired": self.expired,
            "description": self.description,
            "owner_team": dict(self.owner_team) if self.owner_team else None,
            "alert_message": self.alert_message,
            "alert_tags": list(self.alert_tags),
            "alert_priority": self.alert_priority,
            "last_ping_time": format_ping_time(self.last_ping_time) if self.last_ping_time else None,
            "status": self.status,
        }

    def differences(self, wanted: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of ``wanted`` (snake_case, ``None`` = don't care) that differ from this heartbeat."""
        current = self.to_dict()
        changed: dict[str, Any] = {}
        for key, value in wanted.items():
            if value is None or key == "name":
                continue
            if key == "owner_team":
                value = normalise_owner_team(value)
                # A team given by name alone matches whatever id OpsGenie attached to it.
                have = current["owner_team"] or {}
                if all(have.get(k) == v for k, v in value.items()):
                    continue
            elif key == "alert_tags":
                wanted_tags, have = list(value), list(current["alert_tags"])
                if not any(is_marker(t) for t in wanted_tags):
                    # A declaration's own tags: compare without the markers, and keep them.
                    markers = [t for t in have if is_marker(t)]
                    if wanted_tags == [t for t in have if not is_marker(t)]:
                        continue
                    value = wanted_tags + markers
                elif wanted_tags == have:
                    continue
            elif current.get(key) == value:
                continue
            changed[key] = value
        return changed
