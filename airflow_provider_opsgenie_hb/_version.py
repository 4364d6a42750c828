"""The distribution's version, in a module of its own: the API client reads it without Airflow."""

__version__ = "0.2.0"
