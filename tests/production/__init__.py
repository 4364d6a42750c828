"""The production-shaped stack (PostgreSQL, Redis, Celery, several Airflow "hosts"), started by pytest.

A package, so that its ``conftest.py`` is imported as ``production.conftest`` and never takes
the place of ``tests/conftest.py`` as the module ``conftest`` that other test modules import.
"""
