"""What import-linter cannot check of the shape (docs/ARCHITECTURE.md): sizes, and the fields stated once."""

from __future__ import annotations

import ast
from pathlib import Path

from airflow_provider_opsgenie_hb.api.schema import FIELDS

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    [*ROOT.glob("airflow_provider_opsgenie_hb/**/*.py"), *ROOT.glob("opsgenie_heartbeat_emulator/**/*.py")]
)


def test_there_are_sources_to_check() -> None:
    assert len(SOURCES) > 30


def test_no_module_holds_more_than_500_lines() -> None:
    long = {str(path.relative_to(ROOT)): n for path in SOURCES if (n := len(path.read_text().splitlines())) > 500}
    assert not long, long


def test_the_notifier_stays_thin() -> None:
    notifier = ROOT / "airflow_provider_opsgenie_hb" / "notifications" / "heartbeat.py"
    assert len(notifier.read_text().splitlines()) <= 200


def _string_constants(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_the_heartbeat_fields_are_listed_in_one_module() -> None:
    """The schema states the nine fields; every other module takes them from it, so none names them all.

    The emulator, the other side of the wire, states OpsGenie's rules on its own on purpose.
    """
    names = {spec.name for spec in FIELDS}
    assert len(names) == 9
    listing = [
        str(path.relative_to(ROOT))
        for path in SOURCES
        if path.parts[-2] != "opsgenie_heartbeat_emulator" and names <= _string_constants(path)
    ]
    assert listing == ["airflow_provider_opsgenie_hb/api/schema.py"]
