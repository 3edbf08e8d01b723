"""The ERP's web application: REST routes behind a bearer token, problem+json errors, and the optional operator."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from seamflow_erp import routes
from seamflow_erp.database import Database
from seamflow_erp.operator import Operator, OperatorOptions
from seamflow_erp.problems import PROBLEM_RESPONSES, Problem, install_problem_handlers

__all__ = ["create_app"]

_bearer = HTTPBearer(auto_error=False, description="the value of ERP_API_TOKEN")


def _require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    expected: str = request.app.state.token
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Problem(401, "unauthorized", "send the ERP API token as `Authorization: Bearer <token>`")


def create_app(db: Database, token: str, operator: OperatorOptions | None = None) -> FastAPI:
    """The ASGI app over `db` (its schema is created here). `operator` turns on the simulated back office."""
    if not token:
        raise ValueError("an API token is required (ERP_API_TOKEN)")
    db.create_schema()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if operator is None:
            yield
            return
        task = asyncio.create_task(Operator(db, operator).run(), name="erp-operator")
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="Seamflow example ERP",
        version="1.0.0",
        description="A small trading-company ERP: customers, products, sales orders, invoices, payments, "
        "and a changelog. Amounts are CNY decimal strings. Errors are RFC 9457 problem+json.",
        lifespan=lifespan,
    )
    app.state.db = db
    app.state.token = token
    install_problem_handlers(app)
    secured = {"dependencies": [Depends(_require_token)], "responses": PROBLEM_RESPONSES}
    app.include_router(routes.parties_router, **secured)  # type: ignore[arg-type]
    app.include_router(routes.orders_router, **secured)  # type: ignore[arg-type]
    app.include_router(routes.billing_router, **secured)  # type: ignore[arg-type]
    app.include_router(routes.purchasing_router, **secured)  # type: ignore[arg-type]

    @app.get("/healthz", operation_id="get_health", tags=["health"])
    def get_health() -> dict[str, str]:
        """Liveness, without a token."""
        return {"status": "ok"}

    return app
