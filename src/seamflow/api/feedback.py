"""`/api/v1/feedback`: suggestions and problem reports on a flow, a step or a run, and their closing.

Any signed-in user may leave feedback; whoever may operate (a process owner) closes it with a
note. Both land in the event log (`feedback.created`, `feedback.closed`), so insight counts them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from seamflow import clock, errors, ids, store
from seamflow.api.audit import actor_of
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.api.flows import outline
from seamflow.ids import Json, RunId

__all__ = ["CloseBody", "FeedbackBody", "feedback_json", "router"]

router = APIRouter(dependencies=[Depends(require_token)], tags=["feedback"])


class FeedbackKind(StrEnum):
    """What the feedback is."""

    SUGGESTION = "suggestion"
    PROBLEM = "problem"


class FeedbackBody(BaseModel):
    """Feedback on a flow, one of its steps, or one of its runs."""

    model_config = ConfigDict(extra="forbid")
    kind: FeedbackKind
    flow: str = Field(min_length=1, max_length=200, description="the flow's id")
    run: str | None = Field(default=None, max_length=100, description="a run of the flow, if about a run")
    step: str | None = Field(default=None, min_length=1, max_length=200, description="a step's id or path")
    text: str = Field(min_length=1, max_length=4000)


class CloseBody(BaseModel):
    """Closing feedback: what was done about it."""

    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=4000)


def feedback_json(f: store.StoredFeedback) -> dict[str, Json]:
    """Feedback as the API and `seamflow feedback list --json` show it."""
    return {
        "id": f.id,
        "kind": f.kind,
        "flow": f.flow_id,
        "run": f.run_id,
        "step": f.step,
        "text": f.body,
        "author": f.author,
        "created_at": f.created_at.isoformat(),
        "status": "open" if f.closed_at is None else "closed",
        "closed_at": None if f.closed_at is None else f.closed_at.isoformat(),
        "closed_by": f.closed_by,
        "note": f.close_note,
    }


@router.post("/api/v1/feedback", status_code=201)
async def leave_feedback(body: FeedbackBody, request: Request, eng: EngineDep) -> Response:
    """Leave a suggestion or a problem report on a flow, a step or a run (any signed-in user)."""
    flow = eng.catalog.flow(body.flow)
    steps = _step_ids(outline(flow.spec)["steps"])
    if body.run is not None:
        summary, state = await eng.db.get_run(RunId(body.run))
        if summary.flow_id != body.flow:
            raise errors.InvalidInput(
                problem=f"run {body.run} is a run of flow {summary.flow_id!r}", expected=f"a run of {body.flow!r}"
            )
        steps |= {entry.path for entry in state.journal}
    if body.step is not None and body.step not in steps:
        raise errors.InvalidInput(
            problem=f"flow {body.flow!r} has no step {body.step!r}",
            expected="one of " + ", ".join(sorted(steps)) if steps else "no step (the flow has none)",
        )
    feedback = store.StoredFeedback(
        id=ids.new_id("fb"),
        kind=body.kind.value,
        flow_id=body.flow,
        run_id=body.run,
        step=body.step,
        body=body.text,
        author=actor_of(request).id,
        created_at=clock.now(),
    )
    await eng.db.add_feedback(feedback)
    return json_response(feedback_json(feedback), 201)


@router.get("/api/v1/feedback")
async def list_feedback(
    eng: EngineDep,
    status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
    flow: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(description="the `created_at|id` of the previous page's last item")] = None,
) -> Response:
    """Feedback, newest first, open or closed, of one flow or all; page with `before`."""
    query = store.FeedbackFilter(
        is_open=None if status is None else status == "open", flow_id=flow, before=_keyset(before), limit=limit
    )
    return json_response([feedback_json(f) for f in await eng.db.list_feedback(query)])


@router.post("/api/v1/feedback/{feedback_id}/close")
async def close_feedback(feedback_id: str, body: CloseBody, request: Request, eng: EngineDep) -> Response:
    """Close open feedback with a note saying what was done (a process owner: the operate scope)."""
    closed = await eng.db.close_feedback(feedback_id, actor_of(request).id, body.note, clock.now())
    return json_response(feedback_json(closed))


def _step_ids(nodes: Json) -> set[str]:
    found: set[str] = set()
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, dict):
            found.add(str(node["id"]))
            for branch in ("then", "else", "steps"):
                found |= _step_ids(node.get(branch))
    return found


def _keyset(before: str | None) -> tuple[datetime, str] | None:
    if before is None:
        return None
    at, _, last_id = before.partition("|")
    try:
        return datetime.fromisoformat(at), last_id
    except ValueError:
        raise errors.InvalidInput(
            problem=f"before={before!r}", expected="`created_at|id` of the previous page's last item"
        ) from None
