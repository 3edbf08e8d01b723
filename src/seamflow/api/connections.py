"""Connection endpoints: list connections (secret values never shown) and test one with its credentials."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.responses import Response

from seamflow import codec, engine, redact
from seamflow.ids import Json

__all__ = ["connection_routes"]


def _json(value: Json, status: int = 200) -> Response:
    return Response(codec.dumps(redact.mask(value)), status, media_type="application/json")


def connection_routes(app: FastAPI, eng: engine.Engine, api: list[Any]) -> None:
    """`GET /api/v1/connections` and `POST /api/v1/connections/{name}/test` (bearer token)."""

    @app.get("/api/v1/connections", dependencies=api, tags=["connections"])
    async def list_connections() -> Response:
        """Connections: name, connector, concurrency, timeout, the secrets each uses (values as ***)."""
        return _json([info.as_json() for info in eng.pool.describe()])

    @app.post("/api/v1/connections/{name}/test", dependencies=api, tags=["connections"])
    async def test_connection(name: str) -> Response:
        """Open the connection on its own and check it: `{ok, checked, message}`; 404 for an unknown name."""
        result = await eng.pool.check(name)
        return _json({"name": name, "ok": result.is_ok, "checked": result.is_checked, "message": result.message})
