"""The FastAPI app behind the Heartbeats page and the DAG tab, mounted by Airflow's API server.

Airflow does not protect a plugin's app: every route asks Airflow's auth manager, with the
user of the UI's ``_token`` cookie or of an ``Authorization: Bearer`` token. Without one a
request gets 401. A heartbeat is shown to users who may read every DAG declaring it (the
heartbeats no DAG declares: to those who may read all DAGs); its buttons, and the actions
behind them, are for users who may edit those DAGs - anyone else gets 403.

Imported only by the API server, on the first request to the page (see ``__init__.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote, urlencode, urlsplit

import pendulum
from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.security import get_user
from airflow.providers.common.compat.sdk import conf
from fastapi import Depends, FastAPI, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from airflow_provider_opsgenie_hb.api.errors import HeartbeatError, HeartbeatTimeoutError
from airflow_provider_opsgenie_hb.api.policy import EnsurePolicy
from airflow_provider_opsgenie_hb.core.advice import what_to_do
from airflow_provider_opsgenie_hb.core.delivery import Delivery, DeliveryOutcome, deliver
from airflow_provider_opsgenie_hb.core.ownership import owner_marker
from airflow_provider_opsgenie_hb.core.record import recent_pings
from airflow_provider_opsgenie_hb.core.waiting import Call
from airflow_provider_opsgenie_hb.ui import URL_PREFIX
from airflow_provider_opsgenie_hb.ui.declared import declaration_source
from airflow_provider_opsgenie_hb.ui.overview import (
    ACTIONS,
    ANSWER_WAIT,
    STATUSES,
    ConnectionState,
    HeartbeatRow,
    Overview,
    OverviewSource,
    cache_seconds,
)

if TYPE_CHECKING:
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

CurrentUser = Annotated[BaseUser, Depends(get_user)]
Method = Literal["GET", "PUT"]

FILTERS = (*STATUSES, "orphaned", "drift")
DONE = {"ping": "Pinged", "disable": "Disabled", "enable": "Enabled", "ensure": "Brought in line with its DAG:"}
ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M3 12h4l3-8 4 16 3-8h4"/></svg>'
)


class Access:
    """What one user may see and do, asked of Airflow's auth manager (once per DAG and method)."""

    def __init__(self, user: BaseUser, dag_ids: Iterable[str]) -> None:
        self.user = user
        self._manager = get_auth_manager()
        self._dag_ids = set(dag_ids)
        self._allowed: dict[Method, set[str]] = {}
        self._all_dags: dict[Method, bool] = {}

    def may(self, method: Method, dag_ids: Iterable[str]) -> bool:
        """Whether the user may ``method`` (GET: read, PUT: edit) every one of ``dag_ids`` (none: all DAGs)."""
        dag_ids = tuple(dag_ids)
        if not dag_ids:
            if method not in self._all_dags:
                self._all_dags[method] = self._manager.is_authorized_dag(method=method, user=self.user)
            return self._all_dags[method]
        if method not in self._allowed:
            self._allowed[method] = self._manager.filter_authorized_dag_ids(
                dag_ids=self._dag_ids, user=self.user, method=method
            )
        if any(dag_id not in self._dag_ids for dag_id in dag_ids):  # not in the DAG folder: ask for it alone
            return all(
                self._manager.is_authorized_dag(method=method, details=DagDetails(id=dag_id), user=self.user)
                for dag_id in dag_ids
            )
        return all(dag_id in self._allowed[method] for dag_id in dag_ids)

    @classmethod
    def of(cls, user: BaseUser, overview: Overview) -> Access:
        return cls(user, overview.dag_folder.dag_ids if overview.dag_folder else ())

    @cached_property
    def name(self) -> str:
        return str(self.user.get_name())


class HeartbeatsPage:
    """The page, the DAG tab and the actions, over one :class:`OverviewSource`."""

    def __init__(self, source: OverviewSource) -> None:
        self.source = source
        self.templates = Environment(
            loader=PackageLoader("airflow_provider_opsgenie_hb.ui", "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["ago"] = _ago
        self.templates.filters["as_json"] = _as_json

    def page(self, request: Request, access: Access, overview: Overview, shown: str, **banners: str) -> str:
        visible = [row for row in overview.rows if access.may("GET", row.dag_ids)]
        counts = {key: sum(1 for row in visible if _matches(row, key)) for key in FILTERS}
        rows = [row for row in visible if _matches(row, shown)]
        filters = [key for key in FILTERS if counts[key] or key in ("expired", "missing", "orphaned")]
        values = {"rows": rows, "counts": counts, "total": len(visible), "shown": shown, "filters": filters}
        unwatched = overview.dag_folder.unwatched if overview.dag_folder else ()
        values |= {"problems": overview.problems, "unwatched": [d for d in unwatched if access.may("GET", (d,))]}
        values["origin"] = overview.dag_folder.origin if overview.dag_folder else ""
        values["clocks"] = {state.conn_id: state.clock_offset for state in overview.connections}
        return self._render(request, access, overview.connections, "page.html", **values, **banners)

    def tab(self, request: Request, access: Access, overview: Overview, dag_id: str, **banners: str) -> str:
        if not access.may("GET", (dag_id,)):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"You may not read DAG {dag_id!r}")
        rows = [row for row in overview.for_dag(dag_id) if access.may("GET", row.dag_ids)]
        pings = {(row.conn_id, row.name): recent_pings(row.conn_id, row.name) for row in rows}
        known = overview.dag_folder is None or dag_id in overview.dag_folder.dag_ids
        # Only what concerns this DAG: the connections of its heartbeats, not the whole folder's problems.
        in_use = {row.conn_id for row in rows}
        connections = [state for state in overview.connections if state.conn_id in in_use]
        values = {"dag_id": dag_id, "rows": rows, "pings": pings, "known": known, "problems": []}
        values["clocks"] = {state.conn_id: state.clock_offset for state in connections}
        return self._render(request, access, connections, "dag.html", **values, **banners)

    def act(self, request: Request, user: BaseUser, form: ActionForm) -> Response:
        """Ping, disable, enable or ensure one heartbeat, then show the page (or the DAG tab) again."""
        if form.action not in ACTIONS:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"action must be one of {', '.join(ACTIONS)}")
        overview = self.source.overview()
        access = Access.of(user, overview)
        row = overview.row(form.conn_id, form.name)
        if row is None or not access.may("GET", row.dag_ids):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"No heartbeat {form.name!r} on {form.conn_id!r}")
        if not access.may("PUT", row.dag_ids):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"You may not change the heartbeat of {_dags(row)}")
        why = row.refusal(form.action)
        failed = next((c.error for c in overview.connections if c.conn_id == form.conn_id and c.error), None)
        if why is not None and not row.listed and failed is not None:  # say why (a wrong key, say), not "conflict"
            advice = what_to_do(failed)
            raise HTTPException(
                status.HTTP_502_BAD_GATEWAY,
                f"Could not {form.action} heartbeat {form.name!r}: connection {form.conn_id!r} failed: "
                f"{_describe(failed)}" + (f". What to do: {advice}" if advice else ""),
            )
        if why is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, f"Heartbeat {form.name!r} is not to {form.action}: {why}")
        connection = self.source.connection(form.conn_id)
        try:
            performing = Call(lambda: _perform(connection.hook(), row, form.action, access.name), form.action)
            performing.result(ANSWER_WAIT, lambda: _no_answer(form.action))
        except Exception as exc:
            advice = what_to_do(exc)
            error = f"Could not {form.action} heartbeat {form.name!r}: {_describe(exc)}"
            error += f". What to do: {advice}" if advice else ""
            html = (
                self.tab(request, access, overview, form.dag_id, error=error)
                if form.dag_id
                else self.page(request, access, overview, form.status, error=error)
            )
            refused = isinstance(exc, LeftUnchanged)
            return HTMLResponse(html, status_code=status.HTTP_409_CONFLICT if refused else status.HTTP_502_BAD_GATEWAY)
        finally:
            connection.forget_list()
        where = f"/dags/{quote(form.dag_id, safe='')}?" if form.dag_id else f"/?status={quote(form.status)}&"
        done = urlencode({"done": form.action, "heartbeat": form.name})
        return RedirectResponse(_base(request) + where + done, status_code=status.HTTP_303_SEE_OTHER)

    def _render(
        self, request: Request, access: Access, connections: list[ConnectionState], template: str, **values: Any
    ) -> str:
        base = _base(request)

        def buttons(row: HeartbeatRow, **where: str) -> Markup:
            return _buttons(row, access, base, where)

        return self.templates.get_template(template).render(
            base=base,
            airflow=base.removesuffix(URL_PREFIX),
            connections=[_connection_view(state) for state in connections],
            buttons=buttons,
            badges=_badges,
            cache_seconds=cache_seconds(),
            **{"notice": "", "error": "", **values},
        )


class LeftUnchanged(Exception):
    """Ensure found the heartbeat is not this deployment's to change."""


@dataclass(frozen=True)
class ActionForm:
    """What an action's form posts: the heartbeat, the action, and where the form was (a DAG tab, a filter)."""

    conn_id: str
    name: str
    action: str
    dag_id: str = ""
    status: str = "all"


def create_app() -> FastAPI:
    page = HeartbeatsPage(OverviewSource(declaration_source(conf.get("core", "dags_folder"))))
    app = FastAPI(title="OpsGenie heartbeats", openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/icon.svg", include_in_schema=False)
    def icon() -> Response:
        return Response(ICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    @app.get("/", response_class=HTMLResponse)
    def heartbeats_page(
        request: Request, user: CurrentUser, status: str = "all", done: str = "", heartbeat: str = ""
    ) -> str:
        overview = page.source.overview()
        return page.page(request, Access.of(user, overview), overview, status, notice=_notice(done, heartbeat))

    @app.get("/dags/{dag_id}", response_class=HTMLResponse)
    def dag_tab(request: Request, dag_id: str, user: CurrentUser, done: str = "", heartbeat: str = "") -> str:
        overview = page.source.overview()
        return page.tab(request, Access.of(user, overview), overview, dag_id, notice=_notice(done, heartbeat))

    @app.middleware("http")
    async def shown_only_in_airflow(request: Request, call_next: Any) -> Response:
        """Only Airflow's own pages may show the page in a frame (no clickjacking of its buttons)."""
        response: Response = await call_next(request)
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
        return response

    @app.post("/actions")
    def act(
        request: Request,
        user: CurrentUser,
        conn_id: Annotated[str, Form()],
        name: Annotated[str, Form()],
        action: Annotated[str, Form()],
        dag_id: Annotated[str, Form()] = "",
        status: Annotated[str, Form()] = "all",
    ) -> Response:
        _refuse_cross_site(request)
        return page.act(request, user, ActionForm(conn_id, name, action, dag_id, status))

    return app


def _refuse_cross_site(request: Request) -> None:
    """Refuse an action posted from another site with the UI's session cookie (cross-site request
    forgery): a request the cookie authenticates must come from a page of this API server, as its
    ``Origin`` (or ``Referer``) says. A bearer token is never sent by a browser on its own."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    here = {request.headers.get("host"), request.headers.get("x-forwarded-host")}
    here.add(urlsplit(conf.get("api", "base_url", fallback="") or "").netloc)
    if not source or urlsplit(source).netloc not in here - {None, ""}:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"Origin {source or 'missing'!r} refused: an action must be posted from this API server's own pages",
        )


def _no_answer(action: str) -> HeartbeatTimeoutError:
    return HeartbeatTimeoutError(f"no answer within {ANSWER_WAIT:g}s: the {action} may still take effect")


def _perform(hook: OpsgenieHeartbeatHook, row: HeartbeatRow, action: str, user_name: str) -> None:
    if action == "ping":  # the delivery every face uses: the ping, logged for the DAG tab
        outcome = DeliveryOutcome(row.name)
        deliver(hook, Delivery(row.conn_id, row.name, f"page ({user_name})"), outcome, budget=ANSWER_WAIT)
        if outcome.error is not None:
            raise outcome.error
    elif action == "disable":
        hook.disable_heartbeat(row.name)
    elif action == "enable":
        hook.enable_heartbeat(row.name)
    else:
        assert row.declaration is not None  # row.allows("ensure")
        policy = EnsurePolicy(marker=owner_marker(), compare_interval=row.declaration.compare_interval)
        result = hook.ensure_heartbeat(policy=policy, **row.declaration.fields)
        if result.action == "conflict":  # someone took it over since the page was shown
            raise LeftUnchanged(
                f"it exists without this deployment's marker {owner_marker()!r} and was left unchanged "
                "(adopt it with `opsgenie-heartbeat sync --adopt`)"
            )


# The two pieces of HTML every row has, made here rather than in a template macro: a page of
# 1,000 rows renders several times faster.


def _buttons(row: HeartbeatRow, access: Access, base: str, where: dict[str, str]) -> Markup:
    """The row's action buttons in one form, which also says where it was (a filter, a DAG tab);
    nothing for users who may not edit the DAGs declaring it."""
    allowed = [action for action in ACTIONS if row.allows(action)]
    if not allowed or not access.may("PUT", row.dag_ids):
        return Markup("")
    fields = {"conn_id": row.conn_id, "name": row.name, **where}
    hidden = "".join(f'<input type="hidden" name="{key}" value="{escape(value)}">' for key, value in fields.items())
    buttons = "".join(
        f'<button type="submit" name="action" value="{action}" data-action="{action}">{action.capitalize()}</button>'
        for action in allowed
    )
    return Markup(f'<form class="actions" method="post" action="{escape(base)}/actions">{hidden}{buttons}</form>')


def _badges(row: HeartbeatRow) -> Markup:
    badges = f'<span class="status {row.status}" data-role="status">{row.status}</span>'
    if row.orphaned:
        badges += ' <span class="status orphaned" title="managed here, declared by no DAG">orphaned</span>'
    if row.drifted:
        badges += ' <span class="status drift" title="differs from what its DAG declares">drift</span>'
    return Markup(badges)


def _matches(row: HeartbeatRow, shown: str) -> bool:
    if shown == "orphaned":
        return row.orphaned
    if shown == "drift":
        return row.drifted
    return shown == "all" or row.status == shown


def _notice(done: str, heartbeat: str) -> str:
    return f"{DONE[done]} {heartbeat!r}." if done in DONE and heartbeat else ""


def _base(request: Request) -> str:
    """Where the app is mounted (``[api] base_url``'s path and :data:`URL_PREFIX`)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _dags(row: HeartbeatRow) -> str:
    return ", ".join(f"DAG {dag_id!r}" for dag_id in row.dag_ids) if row.dag_ids else "all DAGs"


def _describe(exc: BaseException) -> str:
    """The error as the page shows it: the service's status and requestId where there was an answer."""
    if isinstance(exc, (HeartbeatError, LeftUnchanged)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _connection_view(state: ConnectionState) -> dict[str, Any]:
    error = state.error
    return {
        "state": state,
        "status": getattr(error, "status", None),
        "request_id": getattr(error, "request_id", None),
        "error": _describe(error) if error is not None else "",
    }


def _as_json(value: Any) -> str:
    """A value as JSON, escaped as any text of the page (``tojson`` is for scripts: ``<`` as ``\\u003c``)."""
    return json.dumps(value, ensure_ascii=False)


def _ago(moment: pendulum.DateTime | float | None, clock_offset: float = 0.0) -> str:
    """A time as the page shows it: "3 minutes ago", counted on a clock ``clock_offset`` seconds ahead of
    this machine's (OpsGenie's, for the times it sets)."""
    if moment is None:
        return "never"
    when = pendulum.from_timestamp(moment) if isinstance(moment, (int, float)) else moment
    now = pendulum.now("UTC").add(seconds=clock_offset)
    return "just now" if when > now else f"{when.diff_for_humans(now, absolute=True)} ago"
