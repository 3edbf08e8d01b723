"""`GET /api/v1/audit` (admins) and the one way a route records an action in the audit trail.

`record` takes who acted from the request's principal (`api.access`), and from where from the
client's address and user agent; a route calls it after the action succeeded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from seamflow import audit, directory, engine, errors, store
from seamflow.api.dependencies import EngineDep, current_engine, json_response, require_token
from seamflow.ids import Json

__all__ = ["actor_of", "decision_witness", "origin_of", "record", "router", "trail_of"]

router = APIRouter(dependencies=[Depends(require_token)], tags=["audit"])


def trail_of(eng: engine.Engine) -> audit.AuditTrail:
    """The audit trail of the engine's process (made on first use over the engine's store)."""
    found = eng.services.get(audit.AuditTrail)
    if found is None:
        found = audit.AuditTrail(eng.db)
        eng.services.add(found)
    return found


def actor_of(request: Request) -> audit.Actor:
    """Who the request is: its principal's login and means (the token's id, never its secret)."""
    principal: directory.Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        return audit.Actor("@anonymous", "none")
    via = f"token {principal.credential_id}" if principal.credential_id else principal.via
    return audit.Actor(principal.login, via)


def origin_of(request: Request) -> audit.Origin:
    """Where the request came from: the client's address and its User-Agent header."""
    client = request.client.host if request.client else "unknown"
    return audit.Origin(client, request.headers.get("user-agent", ""))


async def record(
    request: Request,
    action: audit.Action,
    obj: str,
    detail: dict[str, Json] | None = None,
    *,
    actor: audit.Actor | None = None,
) -> None:
    """Record `action` on `obj` by the request's principal (or `actor`), from the request's client."""
    trail = trail_of(current_engine(request))
    await trail.record(action, obj, actor=actor or actor_of(request), origin=origin_of(request), detail=detail)


def decision_witness(
    request: Request, task_id: str, decision: str, *, actor: audit.Actor | None = None
) -> engine.Witness:
    """The approvals code's hook: the audit entry of a decision on task `task_id` (`approve`,
    `reject`, `return`) by the request's principal (or `actor`: the assignee a decision link or
    card was for), written in the decision's own transaction."""
    who, origin = actor or actor_of(request), origin_of(request)

    def witness(tx: store.RunTx, is_settled: bool) -> None:
        detail: dict[str, Json] = {"decision": decision, "settled": is_settled}
        tx.append_audit_entry(
            audit.entry_after(audit.Action.APPROVAL_DECIDED, f"task:{task_id}", actor=who, origin=origin, detail=detail)
        )

    return witness


@router.get("/api/v1/audit")
async def list_audit(
    eng: EngineDep,
    since: datetime | None = None,
    after: Annotated[int, Query(ge=0, description="entries after this seq (for paging)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Audit entries in chain order (oldest first): who, when, what, on which object, from where."""
    if since is not None and since.tzinfo is None:
        raise errors.InvalidInput(
            f"since {since.isoformat()} has no time zone; expected an instant such as 2026-12-01T00:00:00+08:00",
            code="request.invalid",
        )
    entries: list[Json] = list(await trail_of(eng).entries(since=since, after_seq=after, limit=limit))
    return json_response(entries)
