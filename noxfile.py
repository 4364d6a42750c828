"""The Airflow version matrix: ``make test-matrix`` (or ``nox -s tests``).

One environment per supported Airflow minor, built by uv from the pinned constraints in
``constraints/airflow-<minor>.txt`` (each holding the caps that minor needs), then the test
suite on it. ``nox -s "tests(airflow='3.1')"`` runs one; arguments after ``--`` go to pytest.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.envdir = ".nox"

# Every Airflow minor with a constraints file: adding constraints/airflow-3.4.txt adds 3.4 to the matrix.
AIRFLOW_MINORS = tuple(
    sorted(
        (path.stem.removeprefix("airflow-") for path in Path(__file__).parent.glob("constraints/airflow-*.txt")),
        key=lambda minor: tuple(int(part) for part in minor.split(".")),
    )
)


@nox.session
@nox.parametrize("airflow", AIRFLOW_MINORS)
def tests(session: nox.Session, airflow: str) -> None:
    session.install("--constraint", f"constraints/airflow-{airflow}.txt", "--editable", ".[test]")
    session.run("python", "-c", "import airflow; print('Airflow', airflow.__version__)")
    # The production-shaped stack runs on the pinned Airflow only (make test-production).
    session.run("pytest", *(session.posargs or ["-m", "not production_stack"]))
