"""`/api/v1/directory/grants`: roles on flows and folders of flows; `/api/v1/me`: what the caller may do.

Granting and revoking are recorded in the audit trail (`role.granted`, `role.revoked`) with the
subject, role and target. `GET /api/v1/me` answers every route of `api.access.ROUTE_ACCESS` the
caller may call (globally or on some flow), so the console hides what the caller may not do; the
API still checks every request.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from seamflow import audit, directory
from seamflow.api import access
from seamflow.api import audit as audit_api
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.ids import Json

__all__ = ["GrantBody", "router"]

router = APIRouter(dependencies=[Depends(require_token)], tags=["directory"])


class GrantBody(BaseModel):
    """A role on a flow or a folder of flows, for a user, a department or a position."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(
        min_length=1, max_length=120, description="a login, user:<login>, department:<id> or position:<id>"
    )
    role: directory.Role
    target: str = Field(min_length=1, max_length=1200, description="flow:<flow id> or folder:<path>/")


@router.get("/api/v1/directory/grants")
async def list_grants(eng: EngineDep, subject: str | None = None) -> Response:
    """Every grant (of one subject, when named), by subject and target."""
    wanted = [directory.check_subject(subject)] if subject else None
    rows = await access.directory_of(eng).db.list_grants(wanted)
    return json_response([directory.grant_json(g) for g in rows])


@router.post("/api/v1/directory/grants")
async def add_grant(body: GrantBody, request: Request, eng: EngineDep) -> Response:
    """Grant a role on a flow or folder; 201 when new, 200 when the subject held it already."""
    by = access.principal_of(request).login
    row, is_new = await access.directory_of(eng).grant(body.subject, body.role, body.target, by=by)
    if is_new:
        await audit_api.record(request, audit.Action.ROLE_GRANTED, row.subject, _detail(row.role, row.target))
    return json_response(directory.grant_json(row), 201 if is_new else 200)


@router.delete("/api/v1/directory/grants")
async def revoke_grant(
    request: Request,
    eng: EngineDep,
    subject: str = Query(..., max_length=120),
    role: str = Query(..., max_length=20),
    target: str = Query(..., max_length=1200),
) -> Response:
    """Take a grant away (404 `directory.grant_not_found` if there is none)."""
    row = await access.directory_of(eng).revoke_grant(subject, role, target)
    await audit_api.record(request, audit.Action.ROLE_REVOKED, row.subject, _detail(row.role, row.target))
    return Response(status_code=204)


@router.get("/api/v1/me")
async def me(request: Request) -> Response:
    """The caller: login, how it signed in, global scopes, grants, the flows a token is limited to,
    and `routes`: each `METHOD /path` of the access table it may call (on every flow, or on some)."""
    principal = access.principal_of(request)
    routes: list[Json] = []
    for (method, template), rule in sorted(access.ROUTE_ACCESS.items()):
        scope = access.needed_scope(rule)
        if scope == access.PUBLIC:
            continue
        flow_wise = isinstance(rule, access.OnFlow | access.FlowList)
        if scope == access.SIGNED_IN or principal.may(scope) or (flow_wise and principal.may_somewhere(scope)):
            routes.append(f"{method} {template}")
    grants: list[Json] = [
        {"target": g.target, "role": str(g.role), "scopes": [str(s) for s in sorted(g.scopes)]}
        for g in principal.grants
    ]
    return json_response(
        {
            "login": principal.login,
            "via": principal.via,
            "scopes": [str(s) for s in sorted(principal.scopes)],
            "grants": grants,
            "flows": list[Json](principal.targets),
            "routes": routes,
        }
    )


def _detail(role: str, target: str) -> dict[str, Json]:
    return {"role": role, "target": target}
