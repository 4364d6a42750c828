"""Which DAGs are paused: from Airflow's REST API (tasks in Airflow 3 have no database access) or its database.

The connection is an ``http``-style connection to the API server: host (and port, schema
``http`` or ``https``), and with a login and password a token is fetched from
``/auth/token`` first (without them, the token an all-admins simple auth manager gives).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

_PAGE = 100
_TIMEOUT = 30.0


def paused_from_api(conn_id: str, dag_ids: Collection[str] | None = None) -> dict[str, bool]:
    """{DAG id: paused} for every DAG the API server knows (or those of ``dag_ids``)."""
    import requests
    from airflow.providers.common.compat.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    base = _base_url(conn)
    with requests.Session() as session:
        if conn.login:
            answer = session.post(
                f"{base}/auth/token", json={"username": conn.login, "password": conn.password}, timeout=_TIMEOUT
            )
            answer.raise_for_status()
            session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        else:
            # The simple auth manager with all users admins hands out a token for nothing
            # (Airflow 3.0 and 3.1 ask for one; later versions need none).
            answer = session.get(f"{base}/auth/token", timeout=_TIMEOUT)
            if answer.status_code == 201:
                session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        states: dict[str, bool] = {}
        for paused in (True, False):
            offset = 0
            while True:
                answer = session.get(
                    f"{base}/api/v2/dags",
                    params={"paused": str(paused).lower(), "limit": str(_PAGE), "offset": str(offset)},
                    timeout=_TIMEOUT,
                )
                answer.raise_for_status()
                page = answer.json()["dags"]
                states.update({str(dag["dag_id"]): paused for dag in page})
                offset += len(page)
                if len(page) < _PAGE:
                    break
    wanted = set(dag_ids) if dag_ids is not None else None
    return {dag_id: paused for dag_id, paused in states.items() if wanted is None or dag_id in wanted}


def _base_url(conn: Any) -> str:
    host = str(conn.host or "").rstrip("/")
    if not host:
        raise ValueError(f"connection {conn.conn_id!r} has no host: give the Airflow API server's address")
    if "://" not in host:
        host = f"{conn.schema or 'http'}://{host}"
    if conn.port and host.count(":") < 2:
        host = f"{host}:{conn.port}"
    return host


def paused_from_database(dag_ids: Collection[str]) -> dict[str, bool]:
    """The pause state of ``dag_ids`` from Airflow's metadata database (DAGs it does not know: absent)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(DagModel.dag_id, DagModel.is_paused).where(DagModel.dag_id.in_(list(dag_ids))))
        return {str(dag_id): bool(is_paused) for dag_id, is_paused in rows}
