"""``[core] hostname_callable`` of the production stack: each component says which "host" it is.

The stack runs every Airflow component on this one machine, each with its own HOME; this is
how each tells Airflow (task instances, jobs, callbacks) its own host name. Put this folder on
the components' PYTHONPATH and set ``AIRFLOW__CORE__HOSTNAME_CALLABLE=stack_hostname.hostname``.
"""

from __future__ import annotations

import os


def hostname() -> str:
    return os.environ["STACK_HOSTNAME"]
