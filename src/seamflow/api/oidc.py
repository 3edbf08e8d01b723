"""`/api/v1/session/oidc…`: sign-in with the company's identity provider (when the project has `oidc.yaml`).

`GET /api/v1/session/oidc` says whether it is on and what the console's button says; `…/start`
sends the browser to the provider (authorization code with PKCE); `…/callback` redeems the code,
verifies the ID token, matches a directory user, sets the session cookie and sends the browser to
the console. Every sign-in and failed sign-in is in the audit trail.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import RedirectResponse, Response

from seamflow import audit, directory, engine, errors
from seamflow.api import audit as audit_api
from seamflow.api.access import SESSION_COOKIE, directory_of
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.ids import Json

__all__ = ["router"]

router = APIRouter(dependencies=[Depends(require_token)], tags=["session"])
_CALLBACK = "/api/v1/session/oidc/callback"
_CONSOLE = "/console/"


def _sign_in_of(eng: engine.Engine) -> directory.OidcSignIn:
    found = eng.services.get(directory.OidcSignIn)
    if found is None:
        raise errors.NotFound(
            "sign-in with an identity provider is off; expected the project's oidc.yaml", code="auth.oidc_off"
        )
    return found


def _redirect_uri(request: Request, oidc: directory.OidcSignIn) -> str:
    return oidc.settings.redirect_url or str(request.base_url).rstrip("/") + _CALLBACK


@router.get("/api/v1/session/oidc")
async def oidc_provider(eng: EngineDep) -> Response:
    """The identity provider the console offers a button for (404 `auth.oidc_off` when there is none)."""
    oidc = _sign_in_of(eng)
    return json_response({"name": oidc.settings.name, "start": "/api/v1/session/oidc/start"})


@router.get("/api/v1/session/oidc/start")
async def oidc_start(request: Request, eng: EngineDep) -> Response:
    """Send the browser to the provider's authorization endpoint (state, nonce, PKCE)."""
    oidc = _sign_in_of(eng)
    return RedirectResponse(await oidc.start(_redirect_uri(request, oidc)), status_code=302)


@router.get("/api/v1/session/oidc/callback")
async def oidc_callback(
    request: Request,
    eng: EngineDep,
    state: str = Query("", max_length=200),
    code: str = Query("", max_length=2000),
    error: str | None = Query(None, max_length=200),
) -> Response:
    """Finish a sign-in: check state, redeem the code, verify the ID token, start a session."""
    oidc = _sign_in_of(eng)
    nobody = audit.Actor("@unknown", "oidc")
    try:
        if error is not None or not code:
            said = errors.redact(error or "no code")
            raise errors.Unauthorized(f"the provider did not sign the user in: {said}", code="auth.oidc_failed")
        claims = await oidc.finish(state, code, _redirect_uri(request, oidc))
        login, session, added = await oidc.session(directory_of(eng), claims)
    except errors.Unauthorized as exc:
        await audit_api.record(request, audit.Action.SIGN_IN_FAILED, "oidc", {"reason": exc.code}, actor=nobody)
        raise
    someone = audit.Actor(login, "oidc")
    if added:
        detail: dict[str, Json] = {"roles_from_groups": list[Json](added)}
        await audit_api.record(request, audit.Action.ROLE_GRANTED, f"user:{login}", detail, actor=someone)
    await audit_api.record(
        request, audit.Action.SIGNED_IN, f"user:{login}", {"provider": oidc.settings.name}, actor=someone
    )
    response = RedirectResponse(_CONSOLE, status_code=302)
    response.set_cookie(
        SESSION_COOKIE,
        session.secret,
        max_age=int(directory_of(eng).session_ttl.total_seconds()),
        expires=session.expires,
        path="/",
        httponly=True,
        samesite="strict",  # stored on the provider's redirect; sent by the console's own requests
        secure=request.url.scheme == "https",
    )
    return response
