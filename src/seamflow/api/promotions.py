"""`/api/v1/flows/{flow_id}/promotions`: asking the flow's owner to approve a candidate version, and
making an approved candidate live. Without the owner's approval, promotion is refused (409)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from seamflow import audit, engine, errors, lifecycle, store
from seamflow.api import audit as audit_api
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.api.problems import problem
from seamflow.ids import FlowId, Json, RunId

__all__ = ["PromotionBody", "router"]

router = APIRouter(dependencies=[Depends(require_token)])


class PromotionBody(BaseModel):
    """The candidate version's text (the same flow id)."""

    source: str = Field(max_length=1_000_000, description="the candidate flow file's YAML text")


@router.post("/api/v1/flows/{flow_id}/promotions", tags=["flows"], status_code=202)
async def request_promotion(flow_id: str, body: PromotionBody, request: Request, eng: EngineDep) -> Response:
    """Ask the flow's owner to approve the candidate: a task in their inbox; answer the promotion's id."""
    live = eng.catalog.flow(flow_id)
    owner = live.spec.owner
    if owner is None:
        raise errors.Conflict(
            f"flow {flow_id!r} has no owner; expected `owner: <login>` in its file, who approves promotions",
            code="promotion.no_owner",
        )
    lifecycle.check_requester(
        flow_id, owner, str(getattr(getattr(request.state, "principal", None), "login", "@unknown"))
    )
    bench = eng.services.get(lifecycle.Workbench)
    if bench is None:
        raise errors.Conflict("this process cannot promote flows; expected a `seamflow serve` or `seamflow api`")
    try:
        candidate = bench.check(body.source, "<candidate>")
    except errors.FlowInvalid as exc:
        found: list[Json] = [{"where": str(p.where), "message": str(p)} for p in exc.problems]
        return problem(422, exc.code, f"{len(found)} problem(s) found", errors=found)
    if candidate.id != flow_id:
        raise errors.InvalidInput(
            f"the candidate's id is {candidate.id!r}; expected {flow_id!r}", code="promotion.other_flow"
        )
    await eng.db.save_flow_versions(
        [store.FlowVersion(FlowId(flow_id), candidate.version, candidate.source, live.path)]
    )
    principal = getattr(request.state, "principal", None)
    asked: dict[str, Json] = {
        "flow_id": flow_id,
        "live_version": live.version,
        "candidate_version": candidate.version,
        "owner": owner,
        "requested_by": str(getattr(principal, "login", "@unknown")),
    }
    accepted = await eng.accept(eng.catalog.flow(lifecycle.PROMOTION_FLOW_ID), engine.Event("manual", asked))
    assert accepted is not None  # the promotion flow has no `when`
    return json_response({"promotion_id": accepted.run_id, **asked}, 202)


@router.get("/api/v1/flows/{flow_id}/promotions", tags=["flows"])
async def list_promotions(flow_id: str, eng: EngineDep) -> Response:
    """The flow's latest promotion requests (of the last 200 of every flow), newest first, with their decisions."""
    summaries = await eng.db.list_runs(store.RunFilter(flow_id=lifecycle.PROMOTION_FLOW_ID, limit=200))
    states = await eng.db.load_runs([s.run_id for s in summaries])
    found = [lifecycle.promotion_json(s, states[s.run_id]) for s in summaries]
    return json_response([p for p in found if p is not None and p.get("flow_id") == flow_id])


@router.post("/api/v1/flows/{flow_id}/promotions/{promotion_id}/apply", tags=["flows"])
async def apply_promotion(flow_id: str, promotion_id: str, request: Request, eng: EngineDep) -> Response:
    """Make the approved candidate live: its source becomes the flow's file, reloaded at once.

    Refused (409 `promotion.not_approved`) unless the owner approved the promotion.
    """
    summary, state = await eng.db.get_run(RunId(promotion_id))
    asked = lifecycle.approved_promotion(summary, state, flow_id)
    version = str(asked["candidate_version"])
    source = await eng.db.load_flow_source(FlowId(flow_id), version)
    if source is None:
        raise errors.NotFound(f"flow {flow_id!r} version {version} is not in the store", code="promotion.not_found")
    reloader = eng.services.get(engine.Reloader)
    if reloader is None:
        raise errors.Conflict("this process does not reload flows; expected a `seamflow serve` or `seamflow api`")
    await asyncio.to_thread(_write_atomically, Path(eng.catalog.flow(flow_id).path), source)
    principal = getattr(request.state, "principal", None)
    result = await reloader.reload(cause="promote", by=getattr(principal, "login", None))
    detail: dict[str, Json] = {"version": version, "approved_by": asked.get("owner"), "promotion_id": promotion_id}
    await audit_api.record(request, audit.Action.FLOW_PROMOTED, f"flow:{flow_id}", detail)
    return json_response({"flow_id": flow_id, "version": version, "reload": result.as_json()})


def _write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)
