"""`/api/v1/tasks` and `/api/v1/delegations`: the inbox — tasks, decisions, resubmission, withdrawal, delegation.

`assignee=me` is the caller's login. Deciding needs the `approve` scope and being the task's
assignee (else 403); a task decided already (by this or another approver of its level) is a
409 `approval.already_decided`. Withdrawing and resubmitting a returned request are the
requester's. A decision link is issued to the task's assignee (or an admin). A delegation is
set by the user for themselves, or by an admin for anyone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from seamflow import clock, codec, directory, engine, errors, flows, store
from seamflow.api import access
from seamflow.api import audit as audit_api
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.ids import Json

__all__ = ["DecisionBody", "DelegationBody", "ResubmitBody", "apply_decision", "router"]

router = APIRouter(dependencies=[Depends(require_token)], tags=["tasks"])


class DecisionBody(BaseModel):
    """An approver's decision on a task."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject", "return"]
    comment: str | None = Field(None, max_length=4000)
    form: dict[str, Any] | None = Field(None, description="data for the approval's form (its JSON Schema)")


class ResubmitBody(BaseModel):
    """The requester's amended request, sent back to the level that returned it."""

    model_config = ConfigDict(extra="forbid")

    changes: dict[str, Any] | None = Field(None, description='what changed, e.g. {"amount": 4800}')
    comment: str | None = Field(None, max_length=4000)


class DelegationBody(BaseModel):
    """While the user is away, their new tasks go to `delegate`."""

    model_config = ConfigDict(extra="forbid")

    delegate: str = Field(min_length=1, max_length=200)
    starts: datetime = Field(alias="from", description="ISO 8601 with an offset, e.g. 2026-12-10T00:00:00+08:00")
    ends: datetime = Field(alias="until", description="ISO 8601 with an offset; after `from`")
    hand_over: bool = Field(False, description="also give the user's pending tasks to the delegate now")


@router.get("/api/v1/tasks")
async def list_tasks(
    request: Request,
    eng: EngineDep,
    assignee: str | None = None,
    status: Literal["pending", "decided", "closed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Tasks, newest first; `assignee=me` for the caller's own."""
    who = _login(request) if assignee == "me" else assignee
    visible = access.visible_flows(request, eng, directory.Scope.READ)
    tasks = await eng.db.list_tasks(store.TaskFilter(assignee=who, status=status, limit=limit, flow_ids=visible))
    return json_response([engine.task_json(t) for t in tasks])


@router.get("/api/v1/tasks/{task_id}")
async def get_task(task_id: str, eng: EngineDep) -> Response:
    """One task with the request's data and `form_schema`: the JSON Schema of the approval's form
    in the flow's current version (null without a form), for the console to draw the form."""
    task = await _task(eng.db, task_id)
    return json_response({**engine.task_json(task), "form_schema": _form_schema(eng, task)})


@router.post("/api/v1/tasks/{task_id}/decision")
async def decide(task_id: str, body: DecisionBody, request: Request, eng: EngineDep) -> Response:
    """Approve, reject or return a task; 403 if it is not yours, 409 if it was decided already.

    The server answers this route outside FastAPI's layers (`api.decision_route`); this
    declaration documents it in the OpenAPI document and answers when the app runs alone."""
    return await apply_decision(task_id, body, request, eng)


async def apply_decision(task_id: str, body: DecisionBody, request: Request, eng: engine.Engine) -> Response:
    """Decide task `task_id` as the request's principal, with the audit entry in the same commit."""
    form: Json = None if body.form is None else codec.loads(codec.dumps(body.form))
    witness = audit_api.decision_witness(request, task_id, body.decision)
    decided = await eng.decide_task(task_id, _login(request), body.decision, body.comment, form, witness)
    return json_response({**engine.task_json(decided.task), "approval_settled": decided.is_settled})


@router.post("/api/v1/tasks/{task_id}/withdraw")
async def withdraw(task_id: str, request: Request, eng: EngineDep) -> Response:
    """The requester withdraws the approval this task belongs to; the run resumes with `withdrawn`."""
    await eng.withdraw_task(task_id, _login(request))
    return json_response(engine.task_json(await _task(eng.db, task_id)))


@router.post("/api/v1/tasks/{task_id}/resubmit")
async def resubmit(task_id: str, body: ResubmitBody, request: Request, eng: EngineDep) -> Response:
    """The requester resubmits a returned request (its `amend` task); the level that returned it decides again."""
    changes: Json = None if body.changes is None else codec.loads(codec.dumps(body.changes))
    await eng.resubmit_task(task_id, _login(request), changes, body.comment)
    return json_response(engine.task_json(await _task(eng.db, task_id)))


@router.post("/api/v1/tasks/{task_id}/link")
async def decision_link(task_id: str, request: Request, eng: EngineDep) -> Response:
    """A signed, single-use decision link for a pending task: for its assignee (or an admin)."""
    task = await _task(eng.db, task_id)
    principal: directory.Principal = request.state.principal
    if task.assignee != principal.login and directory.Scope.ADMIN not in principal.scopes:
        raise errors.Forbidden(f"task {task_id} is assigned to someone else", code="approval.not_assignee")
    if task.status != "pending":
        raise errors.Conflict(
            f"task {task_id} is {task.status}; a link is only for a pending task", code="approval.already_decided"
        )
    links = decision_links(eng)
    grant = links.grant_for(task)
    url = links.url(grant, str(request.base_url))
    answer: Json = {"task_id": task.id, "assignee": task.assignee, "url": url, "expires": grant.expires.isoformat()}
    return json_response(answer, is_redacted=False)


@router.get("/api/v1/delegations")
async def list_delegations(eng: EngineDep) -> Response:
    """Every delegation: who is away, to whom their tasks go, and when."""
    return json_response([_delegation_json(d) for d in await eng.db.list_delegations()])


@router.put("/api/v1/delegations/{login}")
async def put_delegation(login: str, body: DelegationBody, request: Request, eng: EngineDep) -> Response:
    """Set `login`'s delegation (their own, or an admin's for them); replaces an earlier one."""
    who = _self_or_admin(request, login)
    await _check_user(eng, body.delegate, "delegate")
    await _check_user(eng, login, "login")
    for name, value in (("from", body.starts), ("until", body.ends)):
        if value.tzinfo is None:
            raise errors.InvalidInput(f"{name}: got {value.isoformat()}; expected a time with an offset (+08:00 or Z)")
    delegation = store.Delegation(login, body.delegate, body.starts, body.ends, who)
    handed = await eng.journal.delegate(delegation, hand_over=body.hand_over)
    return json_response({**_delegation_json(delegation), "handed_over": list[Json](handed)})


@router.delete("/api/v1/delegations/{login}")
async def delete_delegation(login: str, request: Request, eng: EngineDep) -> Response:
    """End `login`'s delegation; new tasks go to them again (handed-over tasks stay with the delegate)."""
    _self_or_admin(request, login)
    if not await eng.journal.end_delegation(login):
        raise errors.NotFound(f"{login} has no delegation", code="approval.delegation_not_found")
    return Response(status_code=204)


def decision_links(eng: engine.Engine) -> engine.DecisionLinks:
    """The process's decision links (made with the project's key when the engine was built)."""
    links = eng.services.get(engine.DecisionLinks)
    if links is None:
        raise errors.InvalidInput("this server has no project secret key for decision links", code="secrets.no_key")
    return links


def _delegation_json(d: store.Delegation) -> dict[str, Json]:
    return {
        "login": d.login,
        "delegate": d.delegate,
        "from": d.starts.isoformat(),
        "until": d.ends.isoformat(),
        "set_by": d.set_by,
        "is_active": d.is_active(clock.now()),
    }


def _self_or_admin(request: Request, login: str) -> str:
    principal: directory.Principal = request.state.principal
    if principal.login != login and directory.Scope.ADMIN not in principal.scopes:
        raise errors.Forbidden(
            f"only {login} or an admin may change {login}'s delegation", code="approval.not_delegator"
        )
    return principal.login


async def _check_user(eng: engine.Engine, login: str, name: str) -> None:
    users = await eng.db.list_users(login)
    if not any(u.login == login and u.is_active for u in users):
        raise errors.InvalidInput(
            f"{name}: no active user {errors.redact(login, 70)} in the directory; expected a user's login",
            code="approval.delegation_invalid",
        )


def _login(request: Request) -> str:
    principal: directory.Principal = request.state.principal
    return principal.login


async def _task(db: store.TaskStore, task_id: str) -> store.StoredTask:
    task = await db.get_task(task_id)
    if task is None:
        raise errors.NotFound(f"task {task_id} does not exist", code="approval.task_not_found")
    return task


def _form_schema(eng: engine.Engine, task: store.StoredTask) -> Json:
    """The form's JSON Schema of the approval step the task belongs to (matched by step id)."""
    try:
        flow = eng.catalog.flow(task.flow_id)
    except errors.NotFound:
        return None
    approvals = {s.id: s for s in _steps(flow.spec.steps) if isinstance(s, flows.spec.ApprovalStep)}
    names = [n for n in re.findall(r"[A-Za-z0-9_-]+", task.path) if n in approvals]
    if not names:
        return None
    form: Json = approvals[names[-1]].approval.form
    return form


def _steps(steps: list[Any]) -> Iterator[Any]:
    for step in steps:
        yield step
        for inner in ("then", "else_", "steps"):
            yield from _steps(getattr(step, inner, None) or [])
