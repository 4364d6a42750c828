"""The Heartbeats page in Airflow's UI: a nav entry, a Heartbeat tab on each DAG's page, and the app behind them.

:class:`~airflow_provider_opsgenie_hb.plugin.OpsgenieHeartbeatPlugin` registers
:func:`fastapi_apps` and :func:`external_views`. Every Airflow process imports the plugin, so
this module stays cheap: the FastAPI app (``app.py``) is built on the API server's first
request to it. Airflow 3.0 has no external views: there nothing is registered and the page is
simply absent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_opsgenie_hb.version_compat import ui_plugins_supported

URL_PREFIX = "/opsgenie-heartbeats"
#: the Airflow UI's routes of the two views: ``/plugin/<nav>`` and ``/dags/<dag id>/plugin/<tab>``
NAV_ROUTE = "opsgenie-heartbeats"
DAG_TAB_ROUTE = "opsgenie-heartbeat"

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class HeartbeatsApp:
    """The page's ASGI app: builds the FastAPI app on its first request, so importing the plugin costs nothing."""

    def __init__(self) -> None:
        self._app: Callable[[_Scope, _Receive, _Send], Awaitable[None]] | None = None

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if self._app is None:
            from airflow_provider_opsgenie_hb.ui.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


def fastapi_apps() -> list[dict[str, Any]]:
    """The app Airflow's API server mounts at :data:`URL_PREFIX` (none where the UI shows no plugin views)."""
    if not ui_plugins_supported():
        return []
    return [{"app": HeartbeatsApp(), "url_prefix": URL_PREFIX, "name": "OpsGenie heartbeats"}]


def external_views() -> list[dict[str, Any]]:
    """The nav entry and the DAG tab: the UI shows the app's pages in a frame."""
    if not ui_plugins_supported():
        return []
    base = airflow_base_path() + URL_PREFIX
    return [
        {
            "name": "Heartbeats",
            "href": f"{base}/",
            "url_route": NAV_ROUTE,
            "destination": "nav",
            "category": "browse",
            "icon": f"{base}/icon.svg",
        },
        {
            "name": "Heartbeat",
            "href": base + "/dags/{DAG_ID}",
            "url_route": DAG_TAB_ROUTE,
            "destination": "dag",
            "icon": f"{base}/icon.svg",
        },
    ]


def airflow_base_path() -> str:
    """The path part of ``[api] base_url`` (empty when Airflow is served at the root)."""
    from airflow.providers.common.compat.sdk import conf

    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")
