"""The reliability section of docs/reliability.md is exactly what the suite's tables produce."""

from __future__ import annotations

from report import readme_section, render


def test_readme_reliability_section_matches_the_suite() -> None:
    assert readme_section() == render(), "run: python tests/reliability/report.py --write"
