"""What the REST routes depend on: the engine the app serves, the API token check, JSON answers."""

from __future__ import annotations

import hashlib
from typing import Annotated, cast

from fastapi import Depends, FastAPI, Request
from starlette.responses import Response

from seamflow import codec, engine, redact
from seamflow.api import access
from seamflow.ids import Json

__all__ = ["EngineDep", "attach_engine", "hash_token", "json_response", "require_token"]


def hash_token(token: str) -> str:
    """The stored form of an API token (SHA-256; tokens are long random strings, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def attach_engine(app: FastAPI, eng: engine.Engine) -> None:
    """Make `eng` the engine the routes of `app` serve (and start its cache of known tokens)."""
    app.state.engine = eng
    app.state.known_tokens = set()


def current_engine(request: Request) -> engine.Engine:
    """The engine of the app that received `request`."""
    return cast(engine.Engine, request.app.state.engine)


async def _engine_of(request: Request) -> engine.Engine:
    """`current_engine` as a dependency: async, because FastAPI runs a plain function in a thread."""
    return current_engine(request)


EngineDep = Annotated[engine.Engine, Depends(_engine_of)]
"""A route parameter that receives the engine the app serves."""


async def require_token(request: Request) -> None:
    """Let the request through only if its credentials allow the route (`api.access.ROUTE_ACCESS`).

    Credentials are the bootstrap admin token, a personal API token (`Authorization: Bearer <token>`)
    or a console session cookie.

    Raises:
        errors.Unauthorized: credentials are missing, malformed, unknown, expired or revoked.
        errors.Forbidden: the credentials' scopes do not include the route's.
    """
    await access.authorize(request, request.app.state.known_tokens, current_engine(request))


def json_response(value: Json, status: int = 200, *, is_redacted: bool = True) -> Response:
    """A JSON answer; secret values in it are replaced by `***` unless `is_redacted` is False."""
    body = redact.mask(value) if is_redacted else value
    return Response(codec.dumps(body), status, media_type="application/json")
