"""The HTTP interface: webhooks (public, optionally signed), the REST API (bearer token), health and metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from seamflow import engine, errors
from seamflow.api import (
    audit,
    card_callbacks,
    connection_authorizations,
    connections,
    decision_links,
    directory,
    events,
    feedback,
    flow_editor,
    flow_tests,
    flows,
    grants,
    identity,
    insight,
    oidc,
    operations,
    promotions,
    runs,
    shadows,
    syncs,
    tasks,
    wecom_cards,
)
from seamflow.api.access import SESSION_COOKIE
from seamflow.api.decision_route import DecisionRoute
from seamflow.api.dependencies import attach_engine
from seamflow.api.oa_callbacks import OaCallbacks
from seamflow.api.problems import problem, problem_from_error
from seamflow.api.security_headers import with_security_headers
from seamflow.api.webhooks import HOOKS_PREFIX, WebhookLimits, handle_webhook

__all__ = ["SeamflowApp", "WebhookLimits", "create_app"]

log = logging.getLogger("seamflow.api")


_DEFAULT_LIMITS = WebhookLimits()

_ROUTERS = (
    operations.health_router,
    operations.metrics_router,
    operations.cluster_router,
    flow_editor.router,  # before flows.router: /api/v1/flows/palette is not a flow id
    flows.router,
    flow_tests.router,
    shadows.router,
    promotions.router,
    runs.router,
    events.router,
    connections.router,
    connection_authorizations.router,
    syncs.router,
    directory.session_router,
    oidc.router,
    directory.router,
    grants.router,
    tasks.router,
    audit.router,
    decision_links.router,
    card_callbacks.router,
    wecom_cards.router,
    insight.router,
    identity.router,
    feedback.router,
)
"""Every router of the app, in the order they match (the first that matches a path answers)."""


def create_app(
    eng: engine.Engine,
    *,
    limits: WebhookLimits = _DEFAULT_LIMITS,
    context: Mapping[str, object],
    manage_engine: bool = True,
    kpi_file: Path | None = None,
    project_root: Path | None = None,
) -> SeamflowApp:
    """Build the ASGI app around a started (or, with `manage_engine`, lifespan-started) engine.

    `kpi_file` is the project's KPI file (`kpis.yaml`), answered by `GET /api/v1/insight/kpis`;
    `project_root` the project folder whose flow files the console's editor reads and saves.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_engine:
            await eng.start()
        try:
            yield
        finally:
            if manage_engine:
                await eng.stop()

    app = FastAPI(
        title="Seamflow", version="0.1.0", lifespan=lifespan, description="Flows, runs, events, dead letters, signals."
    )

    callbacks = OaCallbacks()

    async def webhook(request: Request) -> Response:
        return await handle_webhook(request, eng, limits, context, callbacks)

    _install_error_handlers(app)
    _declare_security(app)
    attach_engine(app, eng)
    app.state.kpi_file = kpi_file
    app.state.project_root = project_root
    app.state.preview_env = dict(env) if isinstance(env := context.get("env"), Mapping) else {}
    for router in _ROUTERS:
        app.include_router(router)
    return SeamflowApp(app, webhook, DecisionRoute(eng, app.state.known_tokens))


class SeamflowApp:
    """The ASGI app: webhooks and decisions are answered directly, everything else by the FastAPI app.

    Webhooks (one per event) and decisions (`api.decision_route`: approvers decide in bursts) are
    the hot paths, so they skip FastAPI's routing, dependency and middleware layers; the rest of
    the REST API keeps them. Every answer but a webhook's carries the security headers.
    """

    def __init__(
        self, api: FastAPI, webhook: Callable[[Request], Awaitable[Response]], decision: DecisionRoute
    ) -> None:
        self.api = api
        self._webhook = webhook
        self._guarded_api = with_security_headers(api)
        self._guarded_decision = with_security_headers(decision)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(HOOKS_PREFIX):
            if DecisionRoute.task_id_of(scope) is not None:
                await self._guarded_decision(scope, receive, send)
            else:
                await self._guarded_api(scope, receive, send)
            return
        if scope["method"] not in ("POST", "GET"):  # GET: WeCom's URL verification; other paths answer 405
            response = problem(405, "http.405", "webhooks accept POST only", headers={"Allow": "POST"})
        else:
            try:
                response = await self._webhook(Request(scope, receive))
            except Exception:  # the server keeps serving; the failure is logged with its request path
                log.exception("webhook failed", extra={"path": scope["path"]})
                response = problem(500, "internal", "an unexpected error occurred; see the server log")
        await response(scope, receive, send)


def _declare_security(app: FastAPI) -> None:
    """The OpenAPI document declares how to authenticate: a bearer token or the console's session cookie.

    Every operation requires one of them, except the public routes of `api.access.ROUTE_ACCESS`.
    """
    from seamflow.api.access import PUBLIC, ROUTE_ACCESS

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = document.setdefault("components", {})
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "the admin token or a personal API token"},
            "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE, "description": "a console session"},
        }
        document["security"] = [{"bearer": []}, {"session": []}]
        for path, by_method in document.get("paths", {}).items():
            for method, operation in by_method.items():
                if ROUTE_ACCESS.get((method.upper(), path)) == PUBLIC:
                    operation["security"] = []
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise it


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.SeamflowError)
    async def _seamflow(_: Request, exc: errors.SeamflowError) -> Response:
        return problem_from_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return problem(400, "request.invalid", details or "the request is not valid")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        return problem(exc.status_code, f"http.{exc.status_code}", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:  # the server keeps serving
        return problem(500, "internal", "an unexpected error occurred; see the server log")
