"""`/api/v1/directory/…`: users, departments, positions and personal API tokens; `/api/v1/session`: console sign-in.

Who may call what is decided by `api.access.ROUTE_ACCESS`, like every REST route.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from seamflow import audit, directory, errors
from seamflow.api import audit as audit_api
from seamflow.api.access import SESSION_COOKIE, directory_of
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.ids import Json

__all__ = ["router", "session_router"]

router = APIRouter(dependencies=[Depends(require_token)], tags=["directory"])
session_router = APIRouter(dependencies=[Depends(require_token)], tags=["session"])


class SignInBody(BaseModel):
    """A console sign-in."""

    model_config = ConfigDict(extra="forbid")

    login: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1024)


class PasswordBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1024)


class TokenBody(BaseModel):
    """A personal API token to create; its secret is in the answer, once."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[directory.Scope] | None = None
    expires_in_days: int | None = Field(None, ge=1, le=3650)
    flows: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="limit the token to these flows: flow:<id> or folder:<path>/ (empty: not limited)",
    )


# -- session -----------------------------------------------------------------------------------
@session_router.post("/api/v1/session")
async def sign_in(body: SignInBody, request: Request, eng: EngineDep) -> Response:
    """Sign in with login and password: sets an HttpOnly, SameSite=Strict session cookie."""
    someone = audit.Actor(body.login, "password")
    try:
        session = await directory_of(eng).sign_in(body.login, body.password)
    except errors.Unauthorized as exc:
        failed: dict[str, Json] = {"reason": exc.code}
        await audit_api.record(request, audit.Action.SIGN_IN_FAILED, f"user:{body.login}", failed, actor=someone)
        raise
    await audit_api.record(request, audit.Action.SIGNED_IN, f"user:{body.login}", actor=someone)
    response = json_response({"login": body.login, "expires": session.expires.isoformat()})
    response.set_cookie(
        SESSION_COOKIE,
        session.secret,
        max_age=int(directory_of(eng).session_ttl.total_seconds()),  # relative: right even if clocks differ
        expires=session.expires,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@session_router.get("/api/v1/session")
async def who_am_i(request: Request) -> Response:
    """The principal of this request: login, scopes, and how it signed in."""
    principal: directory.Principal = request.state.principal
    scopes: list[Json] = [str(s) for s in sorted(principal.scopes)]
    return json_response({"login": principal.login, "scopes": scopes, "via": principal.via})


@session_router.delete("/api/v1/session", status_code=204)
async def sign_out(request: Request, eng: EngineDep) -> Response:
    """Sign out: the session is revoked and its cookie cleared."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await directory_of(eng).sign_out(cookie)
        await audit_api.record(request, audit.Action.SIGNED_OUT, f"user:{request.state.principal.login}")
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@session_router.get("/api/v1/session/tokens")
async def list_own_tokens(request: Request, eng: EngineDep) -> Response:
    """The signed-in user's own personal API tokens (never their secrets)."""
    principal: directory.Principal = request.state.principal
    return json_response(
        [directory.token_json(t) for t in await directory_of(eng).db.list_user_tokens(principal.login)]
    )


@session_router.post("/api/v1/session/tokens", status_code=201)
async def create_own_token(body: TokenBody, request: Request, eng: EngineDep) -> Response:
    """Create a token for oneself, with at most the scopes of the credential asking; shown this once."""
    principal: directory.Principal = request.state.principal
    expires_in = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    people = directory_of(eng)
    targets = [directory.check_target(t) for t in body.flows] or list(principal.targets)
    beyond = [t for t in targets if principal.is_limited and t not in principal.targets]
    if beyond:
        raise errors.InvalidInput(
            f"the credential asking is limited to {', '.join(principal.targets)}; {', '.join(beyond)} is beyond it",
            code="directory.scope_not_granted",
        )
    within = principal.held_somewhere()
    issued = await people.create_token(
        principal.login, body.name, body.scopes, expires_in, within=within, targets=targets
    )
    await audit_api.record(request, audit.Action.TOKEN_CREATED, f"token:{issued.token.id}", _token_detail(issued))
    return json_response({**directory.token_json(issued.token), "token": issued.secret}, 201, is_redacted=False)


@session_router.delete("/api/v1/session/tokens/{token_id}")
async def revoke_own_token(token_id: str, request: Request, eng: EngineDep) -> Response:
    """Revoke one of one's own tokens; another user's is answered as if it did not exist."""
    principal: directory.Principal = request.state.principal
    people = directory_of(eng)
    if token_id not in {t.id for t in await people.db.list_user_tokens(principal.login)}:
        raise errors.NotFound(f"API token {token_id!r} does not exist", code="directory.token_not_found")
    revoked = await people.revoke_token(token_id)
    await audit_api.record(request, audit.Action.TOKEN_REVOKED, f"token:{token_id}", {"login": revoked.login})
    return json_response(directory.token_json(revoked))


# -- users ---------------------------------------------------------------------------------------
@router.get("/api/v1/directory/users")
async def list_users(eng: EngineDep) -> Response:
    """Every user, without passwords."""
    return json_response([directory.user_json(u) for u in await directory_of(eng).db.list_users()])


@router.get("/api/v1/directory/users/{login}")
async def get_user(login: str, eng: EngineDep) -> Response:
    """One user."""
    return json_response(directory.user_json(await directory_of(eng).user(login)))


@router.put("/api/v1/directory/users/{login}")
async def put_user(login: str, body: dict[str, Any], request: Request, eng: EngineDep) -> Response:
    """Create or update a user (the body is a user as in directory.yaml; `login` may be left out)."""
    entry = directory.check_entry("users", {**body, "login": body.get("login", login)}, f"user {login!r}:")
    assert isinstance(entry, directory.UserEntry)
    if entry.login != login:
        raise errors.InvalidInput(
            f"the body's login {entry.login!r} differs from the path's {login!r}", code="directory.invalid"
        )
    people = directory_of(eng)
    before = await people.db.list_users(login)
    await people.save(
        users=[entry], locate=lambda _section, _index, field: errors.Location(f"user {login!r}:", path=field)
    )
    after = directory.user_json(await people.user(login))
    await _record_user_change(request, login, before[0] if before else None, after)
    return json_response(after)


@router.delete("/api/v1/directory/users/{login}", status_code=204)
async def delete_user(login: str, request: Request, eng: EngineDep) -> Response:
    """Delete a user; their API tokens and sessions are revoked."""
    await directory_of(eng).delete("user", login)
    await audit_api.record(request, audit.Action.USER_REMOVED, f"user:{login}")
    return Response(status_code=204)


@router.put("/api/v1/directory/users/{login}/password", status_code=204)
async def set_password(login: str, body: PasswordBody, request: Request, eng: EngineDep) -> Response:
    """Set a user's password (and lift a lockout)."""
    await directory_of(eng).set_password(login, body.password)
    await audit_api.record(request, audit.Action.PASSWORD_SET, f"user:{login}")
    return Response(status_code=204)


# -- tokens --------------------------------------------------------------------------------------
@router.get("/api/v1/directory/users/{login}/tokens")
async def list_tokens(login: str, eng: EngineDep) -> Response:
    """A user's personal API tokens (never their secrets)."""
    people = directory_of(eng)
    await people.user(login)
    return json_response([directory.token_json(t) for t in await people.db.list_user_tokens(login)])


@router.post("/api/v1/directory/users/{login}/tokens", status_code=201)
async def create_token(login: str, body: TokenBody, request: Request, eng: EngineDep) -> Response:
    """Create a personal API token; the answer holds its secret, shown this once."""
    expires_in = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    issued = await directory_of(eng).create_token(login, body.name, body.scopes, expires_in, targets=body.flows)
    await audit_api.record(request, audit.Action.TOKEN_CREATED, f"token:{issued.token.id}", _token_detail(issued))
    answer = {**directory.token_json(issued.token), "token": issued.secret}
    return json_response(answer, 201, is_redacted=False)  # the one answer that carries it


@router.delete("/api/v1/directory/tokens/{token_id}")
async def revoke_token(token_id: str, request: Request, eng: EngineDep) -> Response:
    """Revoke a personal API token at once."""
    revoked = await directory_of(eng).revoke_token(token_id)
    await audit_api.record(request, audit.Action.TOKEN_REVOKED, f"token:{token_id}", {"login": revoked.login})
    return json_response(directory.token_json(revoked))


# -- departments and positions ------------------------------------------------------------------
@router.get("/api/v1/directory/departments")
async def list_departments(eng: EngineDep) -> Response:
    """The department tree, as a list with each department's parent and head."""
    rows = await directory_of(eng).db.list_departments()
    return json_response([{"id": d.id, "name": d.name, "parent": d.parent_id, "head": d.head_login} for d in rows])


@router.put("/api/v1/directory/departments/{department_id}")
async def put_department(department_id: str, body: dict[str, Any], request: Request, eng: EngineDep) -> Response:
    """Create or update a department."""
    entry = directory.check_entry("departments", {**body, "id": department_id}, f"department {department_id!r}:")
    assert isinstance(entry, directory.DepartmentEntry)
    where = f"department {department_id!r}:"
    await directory_of(eng).save(
        departments=[entry], locate=lambda _section, _index, field: errors.Location(where, path=field)
    )
    await audit_api.record(request, audit.Action.DIRECTORY_CHANGED, f"department:{department_id}", entry.model_dump())
    return json_response(entry.model_dump())


@router.delete("/api/v1/directory/departments/{department_id}", status_code=204)
async def delete_department(department_id: str, request: Request, eng: EngineDep) -> Response:
    await directory_of(eng).delete("department", department_id)
    await audit_api.record(request, audit.Action.DIRECTORY_CHANGED, f"department:{department_id}", {"removed": True})
    return Response(status_code=204)


@router.get("/api/v1/directory/positions")
async def list_positions(eng: EngineDep) -> Response:
    """Every position."""
    return json_response([{"id": p.id, "name": p.name} for p in await directory_of(eng).db.list_positions()])


@router.put("/api/v1/directory/positions/{position_id}")
async def put_position(position_id: str, body: dict[str, Any], request: Request, eng: EngineDep) -> Response:
    """Create or update a position."""
    entry = directory.check_entry("positions", {**body, "id": position_id}, f"position {position_id!r}:")
    assert isinstance(entry, directory.PositionEntry)
    await directory_of(eng).save(positions=[entry])
    await audit_api.record(request, audit.Action.DIRECTORY_CHANGED, f"position:{position_id}", entry.model_dump())
    return json_response(entry.model_dump())


@router.delete("/api/v1/directory/positions/{position_id}", status_code=204)
async def delete_position(position_id: str, request: Request, eng: EngineDep) -> Response:
    await directory_of(eng).delete("position", position_id)
    await audit_api.record(request, audit.Action.DIRECTORY_CHANGED, f"position:{position_id}", {"removed": True})
    return Response(status_code=204)


def _token_detail(issued: directory.IssuedToken) -> dict[str, Json]:
    """What the audit trail keeps of a new token: whose, its name, scopes and expiry; never the secret."""
    token = issued.token
    return {
        "login": token.login,
        "name": token.name,
        "scopes": list[Json](token.scopes),
        "expires": token.expires.isoformat() if token.expires else None,
        "targets": list[Json](token.targets),
    }


async def _record_user_change(request: Request, login: str, before: Any, after: dict[str, Json]) -> None:
    """A user saved: `role.granted` when roles were added (with the roles), else `user.changed`."""
    had = {str(r) for r in (before.roles or ())} if before is not None else set()
    roles = after.get("roles")
    now = {str(r) for r in roles} if isinstance(roles, list) else set()
    granted: list[Json] = list(sorted(now - had))
    detail: dict[str, Json] = {"created": before is None, "roles": list[Json](sorted(now))}
    if granted:
        detail["granted"] = granted
        await audit_api.record(request, audit.Action.ROLE_GRANTED, f"user:{login}", detail)
    else:
        detail["revoked"] = list[Json](sorted(had - now))
        await audit_api.record(request, audit.Action.USER_CHANGED, f"user:{login}", detail)
