"""Connection endpoints: list connections (secret values never shown) and test one with its credentials."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from seamflow import engine
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.ids import Json

__all__ = ["router"]

router = APIRouter(dependencies=[Depends(require_token)])


@router.get("/api/v1/connections", tags=["connections"])
async def list_connections(eng: EngineDep) -> Response:
    """Connections: name, connector, concurrency, timeout, the secrets each uses (values as ***), and status.

    `status` is `ok`, or `needs_authorization` with `problem` when the connection cannot sign in
    until it is authorized (again): `authorizes: true` connections (OAuth2 authorization code) that
    have no tokens yet, and those whose provider refused their refresh token. The console's
    Authorize button or `seamflow connections authorize NAME` does it.
    """
    infos = eng.pool.describe()
    problems = await engine.authorization_problems(eng.db, infos)
    return json_response([{**info.as_json(), **_status(problems.get(info.name))} for info in infos])


def _status(problem: str | None) -> dict[str, Json]:
    return {"status": "ok"} if problem is None else {"status": "needs_authorization", "problem": problem}


@router.post("/api/v1/connections/{name}/test", tags=["connections"])
async def test_connection(name: str, eng: EngineDep) -> Response:
    """Open the connection on its own and check it: `{ok, checked, message}`; 404 for an unknown name."""
    result = await eng.pool.check(name)
    return json_response({"name": name, "ok": result.is_ok, "checked": result.is_checked, "message": result.message})
