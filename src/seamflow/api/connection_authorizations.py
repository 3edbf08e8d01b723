"""The console's path of a connection's OAuth2 authorization code grant: Authorize, consent, callback.

`POST /api/v1/connections/{name}/authorize` (operators) begins the grant and answers the provider's
consent URL; the `state` and PKCE verifier stay in the store for ten minutes, so whichever serve
process the provider's redirect reaches can finish it, once. `GET /api/v1/connections/oauth/callback`
is reached without credentials (the browser comes from the provider); the `state` binds it to the
Authorize press it belongs to. It exchanges the code, stores the tokens as `connections authorize`
does, records `connection.authorized` for the person who pressed the button, and sends the browser
back to the console's connections page, which says what happened (never a secret).
"""

from __future__ import annotations

import html
import logging
import os
import re
from datetime import timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import HTMLResponse, Response

from seamflow import audit, clock, engine, errors, store
from seamflow.api import audit as audit_api
from seamflow.api.access import principal_of
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.ids import Json

__all__ = ["CALLBACK", "router"]

router = APIRouter(dependencies=[Depends(require_token)], tags=["connections"])
CALLBACK = "/api/v1/connections/oauth/callback"
"""Where the provider sends the browser after consent; the provider must allow this redirect URI."""
log = logging.getLogger("seamflow.api")
_LIFETIME = timedelta(minutes=10)
_PROVIDER_ERROR = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""An `error=` of RFC 6749 §4.1.2.1 (`access_denied`, …): shown as it is; anything else is not shown."""


def _redirect_uri(request: Request) -> str:
    """`SEAMFLOW_PUBLIC_URL` (the address people reach the server at) or the request's own, plus `CALLBACK`."""
    base = os.environ.get("SEAMFLOW_PUBLIC_URL") or str(request.base_url)
    return base.rstrip("/") + CALLBACK


@router.post("/api/v1/connections/{name}/authorize")
async def authorize_connection(name: str, request: Request, eng: EngineDep) -> Response:
    """Begin connection `name`'s authorization: `{connection, url, redirect_uri, expires_at}`.

    Send the browser to `url`; the provider sends it back to `redirect_uri`. 404
    `connection.not_found` for an unknown name, 400 `connection.invalid` for a connection that does
    not sign in with the authorization code grant.
    """
    uri = _redirect_uri(request)
    begun = await engine.begin_authorization(eng.pool, name, uri)
    principal, until = principal_of(request), clock.now() + _LIFETIME
    via = audit_api.actor_of(request).via
    pending = store.ConnectionAuthorization(begun.state, name, begun.verifier, uri, principal.login, via, until)
    await eng.db.save_connection_authorization(pending, clock.now())
    return json_response({"connection": name, "url": begun.url, "redirect_uri": uri, "expires_at": until.isoformat()})


@router.get(CALLBACK)
async def authorization_callback(
    request: Request,
    eng: EngineDep,
    state: str = Query("", max_length=200),
    code: str = Query("", max_length=2000),
    error: str | None = Query(None, max_length=200),
) -> Response:
    """Finish the authorization `state` belongs to, then send the browser to the console's connections page."""
    begun = await eng.db.take_connection_authorization(state, clock.now()) if state else None
    shown = {} if begun is None else {"connection": begun.connection}
    try:
        if begun is None:
            raise errors.InvalidInput(
                "this authorization is unknown, used already or older than 10 minutes; press Authorize again",
                code="connection.authorization_state",
            )
        if error is not None:
            shown["provider_error"] = error if _PROVIDER_ERROR.fullmatch(error) else "refused"
        grant = engine.Authorization(begun.connection, "", begun.state, begun.verifier, begun.redirect_uri)
        await engine.finish_authorization(eng.pool, grant, str(request.url))  # refuses error=, a missing code
    except errors.SeamflowError as exc:  # the page explains the code; the words stay in the server's log
        log.info("authorizing a connection failed: %s", exc.message)
        return _back({**shown, "authorize_error": exc.code or "connection.authorization_failed"})
    who = audit.Actor(begun.started_by, begun.started_via)
    detail: dict[str, Json] = {"by": "console", "redirect_uri": begun.redirect_uri}
    await audit_api.record(
        request, audit.Action.CONNECTION_AUTHORIZED, f"connection:{begun.connection}", detail, actor=who
    )
    return _back({**shown, "authorized": begun.connection})


def _back(outcome: dict[str, str]) -> Response:
    """A page that takes the browser to the console's connections page with `outcome`.

    Not a 302: the browser arrives from the provider's site, and a redirect chain that began there
    would load the console without its SameSite=Strict session cookie; a navigation this page
    starts itself is the console's own, and the cookie goes with it.
    """
    target = html.escape(f"/console/#/connections?{urlencode(outcome)}", quote=True)
    page = (
        "<!doctype html><meta charset=utf-8><title>Seamflow</title>"
        f'<meta http-equiv="refresh" content="0;url={target}">'
        f'<p><a href="{target}">Seamflow · Connections / 连接</a>'
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})
