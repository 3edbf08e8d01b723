"""`POST /api/v1/flows/test`: the console editor's "try it" — one rehearsed run of a flow's text.

The flow is validated as `seamflow flow validate` would (422 with every problem, file:line:column),
then run for the event on a scratch store with every connection answered by the recording
sandbox (fixtures, else `{}`): nothing reaches a target, nothing is stored in the project.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.responses import Response

from seamflow import errors, lifecycle
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.api.problems import problem
from seamflow.ids import Json

__all__ = ["FlowTestBody", "router"]

router = APIRouter(dependencies=[Depends(require_token)])

_MAX_SOURCE_CHARS = 1_000_000


class FlowTestBody(BaseModel):
    """A flow's text, the event to run it for, and fixtures answering its calls."""

    source: str = Field(max_length=_MAX_SOURCE_CHARS, description="the flow file's YAML text")
    event: Any = Field(description='the event as the flow sees it: {"body": …, "headers"?: {…}, "query"?: {…}}')
    fixtures: Any = Field(
        None, description="step id or connection.action -> {answer: …} | {error: …}, as in flow-test files"
    )


@router.post("/api/v1/flows/test", tags=["flows"])
async def test_flow(body: FlowTestBody, eng: EngineDep) -> Response:
    """Run a flow's text once for an event with its calls captured; answer its outcome, steps and effects."""
    bench = eng.services.get(lifecycle.Workbench)
    if bench is None:
        raise errors.Conflict("this process cannot test flows; expected a `seamflow serve` or `seamflow api`")
    try:
        rehearsal = await bench.test(body.source, body.event, body.fixtures)
    except errors.FlowInvalid as exc:
        found: list[Json] = [
            {"where": str(p.where), "problem": p.problem, "expected": p.expected, "message": str(p)}
            for p in exc.problems
        ]
        return problem(422, exc.code, f"{len(found)} problem(s) found", errors=found)
    return json_response(rehearsal.as_json())
