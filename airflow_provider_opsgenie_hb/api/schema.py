"""The heartbeat's fields, stated once: their rules, their names on the wire, and the model.

:data:`FIELDS` drives validation (:func:`field_problems`), the API's JSON body
(:func:`to_api_fields`), reading an answer (:meth:`Heartbeat.from_api`), differences
(:meth:`Heartbeat.differences`) and the faces' parameters (:class:`HeartbeatFields`). The
rules follow OpsGenie's documented limits; the emulator states them again on its side of the
wire, from the reference, so that a wrong rule here is caught by the tests.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import pendulum

from airflow_provider_opsgenie_hb.api.errors import HeartbeatValidationError
from airflow_provider_opsgenie_hb.api.policy import is_marker

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


@dataclass(frozen=True)
class FieldSpec:
    """One heartbeat field: its keyword, its name in OpsGenie's JSON, its rule and its place."""

    name: str
    wire: str
    check: Callable[[Any], str | None]
    #: needed to create a heartbeat
    required_on_create: bool = False
    #: a Jinja template in a declaration (rendered per DAG or run before it is checked)
    templated: bool = False


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("name", "name", _check_name, required_on_create=True),
    FieldSpec("interval", "interval", _check_interval, required_on_create=True),
    FieldSpec("interval_unit", "intervalUnit", lambda v: _check_choice(v, INTERVAL_UNITS), required_on_create=True),
    FieldSpec("enabled", "enabled", _check_enabled, required_on_create=True),
    FieldSpec(
        "description", "description", lambda v: _check_text(v, max_length=MAX_DESCRIPTION_LENGTH), templated=True
    ),
    FieldSpec("owner_team", "ownerTeam", _check_owner_team),
    FieldSpec(
        "alert_message", "alertMessage", lambda v: _check_text(v, max_length=MAX_ALERT_MESSAGE_LENGTH), templated=True
    ),
    FieldSpec("alert_tags", "alertTags", _check_tags, templated=True),
    FieldSpec("alert_priority", "alertPriority", lambda v: _check_choice(v, ALERT_PRIORITIES)),
)
_BY_NAME = {spec.name: spec for spec in FIELDS}
#: keyword -> OpsGenie's camelCase name
API_FIELD_NAMES: dict[str, str] = {spec.name: spec.wire for spec in FIELDS}
#: every field but the name (what update, ensure and the declarations set)
CONFIG_FIELDS = tuple(spec.name for spec in FIELDS if spec.name != "name")
REQUIRED_ON_CREATE = tuple(spec.name for spec in FIELDS if spec.required_on_create)
TEMPLATED_FIELDS = tuple(spec.name for spec in FIELDS if spec.templated)


class HeartbeatSettingFields(TypedDict, total=False):
    """The fields beside the name and the interval, as keywords (``None``: not given), for the type checker."""

    enabled: bool | None
    description: str | None
    owner_team: str | Mapping[str, str] | None
    alert_message: str | None
    alert_tags: list[str] | tuple[str, ...] | None
    alert_priority: str | None


class HeartbeatFields(HeartbeatSettingFields, total=False):
    """Every field as a keyword: the same names as :data:`FIELDS`, for the type checker."""

    name: str
    interval: int
    interval_unit: str


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
        if key not in _BY_NAME:
            problems[key] = f"is not a heartbeat field; known fields are {', '.join(_BY_NAME)}"
    for spec in FIELDS:
        value = fields.get(spec.name)
        if value is None:
            if spec.name in required:
                problems[spec.name] = "is required"
            continue
        problem = spec.check(normalise_owner_team(value) if spec.name == "owner_team" else value)
        if problem:
            problems[spec.name] = problem
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

    #: OpsGenie's requestId of the answer this heartbeat came in, and the retries it took
    request_id: str | None = field(default=None, compare=False, repr=False)
    retries: int = field(default=0, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any], *, request_id: str | None = None, retries: int = 0) -> Heartbeat:
        """Build from OpsGenie's JSON; raises ``KeyError``/``TypeError``/``ValueError`` on a bad shape."""
        last_ping = data.get("lastPingTime")
        parsed_ping = pendulum.parse(last_ping) if last_ping else None
        if parsed_ping is not None and not isinstance(parsed_ping, pendulum.DateTime):
            raise ValueError(f"lastPingTime is not a date-time: {last_ping!r}")
        values: dict[str, Any] = {spec.name: data.get(spec.wire) for spec in FIELDS}
        interval = values["interval"]
        if not isinstance(values["name"], str) or isinstance(interval, bool) or not isinstance(interval, int):
            raise TypeError("name must be a string and interval an integer")
        owner = values["owner_team"] or ({"id": data["ownerTeamId"]} if data.get("ownerTeamId") else None)
        status = data.get("status")
        # OpsGenie says "expired"; JSM Operations says status "Unresponsive" (and "Hours").
        expired = data.get("expired", status == "Unresponsive")
        values |= {
            "interval_unit": str(data["intervalUnit"]).lower(),
            "enabled": bool(data["enabled"]),
            "owner_team": dict(owner) if owner else None,
            "alert_tags": tuple(values["alert_tags"] or ()),
        }
        return cls(
            **values,
            expired=bool(expired),
            status=status,
            last_ping_time=parsed_ping,
            request_id=request_id,
            retries=retries,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (snake_case), fit for XCom."""
        values = {spec.name: getattr(self, spec.name) for spec in FIELDS}
        return values | {
            "owner_team": dict(self.owner_team) if self.owner_team else None,
            "alert_tags": list(self.alert_tags),
            "expired": self.expired,
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
