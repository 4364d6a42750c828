"""OpsGenie's rules for a heartbeat's fields, as the service applies them on the wire.

Written from the wire reference (``opsgenie-heartbeat-wire.md``), apart from the client's
own rules on purpose: the emulator is the other side of the wire, so a wrong rule in the
client shows up as a disagreement in a test instead of being copied here. Field names
are OpsGenie's (camelCase); problems are keyed by them, as in a real 422's ``errors``.

Where the reference does not know how OpsGenie decides, the emulator accepts what
OpsGenie plausibly accepts, and says so next to the rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# Lengths are counted in characters (code points). [U] OpsGenie's backend may count
# UTF-16 units, which differ only for characters outside the Basic Multilingual Plane.
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
MAX_ALERT_MESSAGE_LENGTH = 130
MAX_ALERT_TAGS = 20
MAX_ALERT_TAG_LENGTH = 50
# [U] No maximum is documented. The service reads the interval as a Java int [I]: a larger
# number cannot be read at all, so it is refused (as a 422 naming the field).
MAX_INTERVAL = 2**31 - 1
INTERVAL_UNITS = ("minutes", "hours", "days")
ALERT_PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
DEFAULT_ALERT_PRIORITY = "P3"

FIELDS = (
    "name",
    "description",
    "interval",
    "intervalUnit",
    "enabled",
    "ownerTeam",
    "alertMessage",
    "alertTags",
    "alertPriority",
)
REQUIRED_ON_CREATE = ("name", "interval", "intervalUnit", "enabled")


def _text(value: Any, max_length: int) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if len(value) > max_length:
        return f"must be at most {max_length} characters, got {len(value)}"
    return None


def _name(value: Any) -> str | None:
    # Required and at most 200 characters [V]; spaces and periods accepted [V]. [U] No
    # character set is documented: control characters, a blank name, "." and ".." are
    # accepted in a body (only a URL path cannot address the last two).
    problem = _text(value, MAX_NAME_LENGTH)
    if problem is None and not value:
        return "cannot be empty"
    return problem


def _interval(value: Any) -> str | None:
    # [U] Whether a whole-valued float (5.0) or a numeric string is coerced is not known;
    # the documented type is an integer, and only an integer is accepted.
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be an integer"
    if value < 1:
        return "cannot be smaller than 1"
    if value > MAX_INTERVAL:
        return f"cannot be larger than {MAX_INTERVAL}"
    return None


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, str) or value not in choices:
            return f"must be one of {', '.join(choices)}"
        return None

    return check


def _enabled(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be a boolean"


def _owner_team(value: Any) -> str | None:
    # An object with "id" and/or "name" [V]. [U] Other keys: ignored, as JSON readers
    # commonly do.
    if not isinstance(value, Mapping):
        return "must be an object with an id or a name"
    given = [value[key] for key in ("id", "name") if key in value]
    if not given:
        return "must have an id or a name"
    if any(not isinstance(item, str) or not item.strip() for item in given):
        return "id and name must be non-empty strings"
    return None


def _alert_tags(value: Any) -> str | None:
    # At most 20 tags of at most 50 characters [V]. [U] Blank tags: accepted.
    if not isinstance(value, list):
        return "must be a list of strings"
    if len(value) > MAX_ALERT_TAGS:
        return f"cannot have more than {MAX_ALERT_TAGS} tags"
    if any(not isinstance(tag, str) for tag in value):
        return "must be a list of strings"
    if any(len(tag) > MAX_ALERT_TAG_LENGTH for tag in value):
        return f"each tag must be at most {MAX_ALERT_TAG_LENGTH} characters"
    return None


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "name": _name,
    "description": lambda value: _text(value, MAX_DESCRIPTION_LENGTH),
    "interval": _interval,
    "intervalUnit": _one_of(INTERVAL_UNITS),
    "enabled": _enabled,
    "ownerTeam": _owner_team,
    "alertMessage": lambda value: _text(value, MAX_ALERT_MESSAGE_LENGTH),
    "alertTags": _alert_tags,
    "alertPriority": _one_of(ALERT_PRIORITIES),
}


def problems(body: Mapping[str, Any], *, required: tuple[str, ...] = ()) -> dict[str, str]:
    """``{field: problem}`` for a request body (empty when OpsGenie would take it).

    A ``null`` field counts as absent; fields OpsGenie does not know are ignored.
    """
    found: dict[str, str] = {}
    for key, check in _CHECKS.items():
        value = body.get(key)
        if value is None:
            if key in required:
                found[key] = "is required"
            continue
        problem = check(value)
        if problem:
            found[key] = problem
    return found
