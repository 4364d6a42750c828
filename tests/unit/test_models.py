"""Field rules and the Heartbeat model."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest

from airflow_provider_opsgenie_hb.api.schema import Heartbeat, field_problems, to_api_fields


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"name": ""}, "name", "must not be empty"),
        ({"name": "   "}, "name", "must not be empty"),
        ({"name": "x" * 201}, "name", "at most 200"),
        ({"name": "a\nb"}, "name", "control characters"),
        ({"name": "tab\there"}, "name", "control characters"),
        ({"name": ".."}, "name", "'.' or '..'"),
        ({"name": 5}, "name", "must be a string"),
        ({"interval": 0}, "interval", "at least 1"),
        ({"interval": -1}, "interval", "at least 1"),
        ({"interval": 1.5}, "interval", "whole number"),
        ({"interval": "5"}, "interval", "whole number"),
        ({"interval": True}, "interval", "whole number"),
        ({"interval": 2**31}, "interval", "at most"),
        ({"interval_unit": "weeks"}, "interval_unit", "one of minutes, hours, days"),
        ({"interval_unit": "Hours"}, "interval_unit", "exact case"),
        ({"alert_priority": "p1"}, "alert_priority", "one of P1"),
        ({"alert_priority": "P6"}, "alert_priority", "one of P1"),
        ({"alert_tags": [str(i) for i in range(21)]}, "alert_tags", "at most 20 tags"),
        ({"alert_tags": ["x" * 51]}, "alert_tags", "at most 50 characters"),
        ({"alert_tags": "etl"}, "alert_tags", "list of strings"),
        ({"alert_tags": [""]}, "alert_tags", "non-empty"),
        ({"alert_message": "m" * 131}, "alert_message", "at most 130"),
        ({"description": "d" * 10_001}, "description", "at most 10000"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"owner_team": {"slug": "ops"}}, "owner_team", "only have the keys"),
        ({"owner_team": {}}, "owner_team", "'id' or 'name'"),
        ({"owner_team": {"name": ""}}, "owner_team", "non-empty"),
        ({"owner_team": 7}, "owner_team", "must be an object"),
        ({"colour": "red"}, "colour", "not a heartbeat field"),
    ],
)
def test_each_rule_names_the_field(fields: dict[str, Any], field: str, rule: str) -> None:
    problems = field_problems(fields)
    assert list(problems) == [field]
    assert rule in problems[field]


def test_valid_fields_and_limits_pass() -> None:
    assert (
        field_problems(
            {
                "name": "ünïcødé / 100% ? #",
                "interval": 2**31 - 1,
                "interval_unit": "days",
                "enabled": False,
                "alert_tags": ["x" * 50] * 20,
                "alert_message": "m" * 130,
                "description": "d" * 10_000,
                "owner_team": "ops",
                "alert_priority": "P5",
            },
            required=("name", "interval", "interval_unit", "enabled"),
        )
        == {}
    )


def test_required_fields() -> None:
    assert set(field_problems({"name": "x"}, required=("name", "interval", "interval_unit"))) == {
        "interval",
        "interval_unit",
    }


def test_api_fields_are_camel_case_and_drop_unset() -> None:
    body = to_api_fields({"name": "x", "interval_unit": "hours", "owner_team": "ops", "alert_tags": ("a",), "x": None})
    assert body == {"name": "x", "intervalUnit": "hours", "ownerTeam": {"name": "ops"}, "alertTags": ["a"]}


def test_heartbeat_from_api_and_back() -> None:
    hb = Heartbeat.from_api(
        {
            "name": "n",
            "interval": 10,
            "intervalUnit": "minutes",
            "enabled": True,
            "expired": True,
            "ownerTeam": {"id": "1", "name": "ops"},
            "alertTags": ["a"],
            "lastPingTime": "2025-02-20T14:00:05.533Z",
        }
    )
    assert hb.last_ping_time == pendulum.datetime(2025, 2, 20, 14, 0, 5, 533000, tz="UTC")
    assert hb.to_dict()["last_ping_time"] == "2025-02-20T14:00:05.533Z"
    assert hb.differences({"interval": 10, "owner_team": "ops", "alert_tags": ["a"]}) == {}
    assert hb.differences({"interval": 11, "alert_priority": None}) == {"interval": 11}


@pytest.mark.parametrize(
    "data",
    [{"interval": 1}, {"name": "n", "interval": "1", "intervalUnit": "hours", "enabled": True}, {"name": 3}],
)
def test_bad_shapes_raise(data: dict[str, Any]) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        Heartbeat.from_api(data)
