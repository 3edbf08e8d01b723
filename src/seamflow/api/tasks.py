"""`/api/v1/tasks`: the inbox — approval tasks, their request, decisions and withdrawal.

`assignee=me` is the caller's login. Deciding needs the `approve` scope and being the task's
assignee (else 403); a task decided already (by this or another approver of its level) is a
409 `approval.already_decided`. Withdrawing is the requester's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from seamflow import codec, directory, engine, errors, flows, store
from seamflow.api import audit as audit_api
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.ids import Json

__all__ = ["DecisionBody", "router"]

router = APIRouter(dependencies=[Depends(require_token)], tags=["tasks"])


class DecisionBody(BaseModel):
    """An approver's decision on a task."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject", "return"]
    comment: str | None = Field(None, max_length=4000)
    form: dict[str, Any] | None = Field(None, description="data for the approval's form (its JSON Schema)")


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
    tasks = await eng.db.list_tasks(store.TaskFilter(assignee=who, status=status, limit=limit))
    return json_response([engine.task_json(t) for t in tasks])


@router.get("/api/v1/tasks/{task_id}")
async def get_task(task_id: str, eng: EngineDep) -> Response:
    """One task with the request's data and `form_schema`: the JSON Schema of the approval's form
    in the flow's current version (null without a form), for the console to draw the form."""
    task = await _task(eng.db, task_id)
    return json_response({**engine.task_json(task), "form_schema": _form_schema(eng, task)})


@router.post("/api/v1/tasks/{task_id}/decision")
async def decide(task_id: str, body: DecisionBody, request: Request, eng: EngineDep) -> Response:
    """Approve, reject or return a task; 403 if it is not yours, 409 if it was decided already."""
    form: Json = None if body.form is None else codec.loads(codec.dumps(body.form))
    is_settled = await eng.decide_task(task_id, _login(request), body.decision, body.comment, form)
    await audit_api.record_decision(request, task_id, body.decision, is_settled=is_settled)
    task = await _task(eng.db, task_id)
    return json_response({**engine.task_json(task), "approval_settled": is_settled})


@router.post("/api/v1/tasks/{task_id}/withdraw")
async def withdraw(task_id: str, request: Request, eng: EngineDep) -> Response:
    """The requester withdraws the approval this task belongs to; the run resumes with `withdrawn`."""
    await eng.withdraw_task(task_id, _login(request))
    return json_response(engine.task_json(await _task(eng.db, task_id)))


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
