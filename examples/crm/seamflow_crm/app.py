"""The CRM's web application: the REST API, its OpenAPI document and the webhook dispatcher beside it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from seamflow_crm import auth, contracts, customers, opportunities, subscriptions
from seamflow_crm.database import Database
from seamflow_crm.problems import MEDIA_TYPE, install_handlers, problem_responses
from seamflow_crm.settings import Settings
from seamflow_crm.webhooks import Dispatcher

__all__ = ["create_app"]

_DESCRIPTION = """A small CRM for the Seamflow lead-to-cash demo: customers, contacts, opportunities and
contracts. Every change is sent as a signed webhook (`X-Signature: sha256=<hex HMAC of the body>`)
and is readable from `GET /events`. Errors are RFC 9457 problem details naming each wrong field.
POST, PATCH and DELETE honour `Idempotency-Key`; PATCH honours `If-Match`."""


def create_app(settings: Settings) -> FastAPI:
    """The CRM application for `settings`; its database is created and its dispatcher runs while it serves."""
    db = Database(settings.db_path)
    db.create_schema()
    subscriptions.register_env_subscribers(db, settings.webhook_urls)
    dispatcher = Dispatcher(db, settings.delivery)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(dispatcher.run(), name="webhook-dispatcher")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="Seamflow example CRM",
        version="0.1.0",
        description=_DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.db = db
    app.state.settings = settings
    app.state.dispatcher = dispatcher
    install_handlers(app)
    for module in (customers, opportunities, contracts, subscriptions):
        app.include_router(
            module.router, dependencies=[Depends(auth.require_token)], responses=problem_responses(401, 422)
        )

    @app.get("/healthz", tags=["health"], operation_id="check_health")
    async def check_health() -> dict[str, str]:
        """Whether the CRM is up (no token needed)."""
        return {"status": "ok"}

    _serve_problems_as_problem_json(app)
    return app


def _operation_id(route: APIRoute) -> str:
    """The route function's name is its operationId: list_customers, sign_contract, …"""
    return route.name


def _serve_problems_as_problem_json(app: FastAPI) -> None:
    """Document error responses under `application/problem+json`, the media type they are served with."""
    generate = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = generate()
            for path in schema["paths"].values():
                for operation in path.values():
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if status[0] in "45" and "application/json" in content:
                            content[MEDIA_TYPE] = content.pop("application/json")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the document
