"""The Airflow version matrix: ``make test-matrix`` (or ``nox -s tests``).

One environment per supported Airflow minor, built by uv from the pinned constraints in
``constraints/airflow-<minor>.txt`` (each holding the caps that minor needs), then the test
suite on it. ``nox -s "tests(airflow='3.1')"`` runs one; arguments after ``--`` go to pytest.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.envdir = ".nox"

AIRFLOW_MINORS = ("3.0", "3.1", "3.2", "3.3")


@nox.session
@nox.parametrize("airflow", AIRFLOW_MINORS)
def tests(session: nox.Session, airflow: str) -> None:
    session.install("--constraint", f"constraints/airflow-{airflow}.txt", "--editable", ".[test]")
    session.run("python", "-c", "import airflow; print('Airflow', airflow.__version__)")
    session.run("pytest", *session.posargs)
