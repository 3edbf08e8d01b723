"""`/api/v1/flows/{flow_id}/shadows`: shadow runs of a candidate version — started (rehearsed on the
latest live runs' events, nothing sent) and listed with their per-event reports."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from seamflow import audit, errors, lifecycle, store
from seamflow.api import audit as audit_api
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.api.problems import problem
from seamflow.ids import Json

__all__ = ["ShadowBody", "router", "shadow_json"]

router = APIRouter(dependencies=[Depends(require_token)])


class ShadowBody(BaseModel):
    """A candidate version's text and how many of the latest finished live runs to replay."""

    source: str = Field(max_length=1_000_000, description="the candidate flow file's YAML text (same flow id)")
    runs: int = Field(20, ge=1, le=500, description="the latest finished live runs to replay, newest first")


def shadow_json(results: list[store.ShadowResult]) -> list[Json]:
    """Shadow results as the API and `flow shadows --json` show them."""
    return [
        {
            "shadow_id": r.shadow_id,
            "seq": r.seq,
            "flow_id": r.flow_id,
            "live_version": r.live_version,
            "candidate_version": r.candidate_version,
            "run_id": r.run_id,
            "at": r.at.isoformat(),
            "report": r.report,
        }
        for r in results
    ]


@router.post("/api/v1/flows/{flow_id}/shadows", tags=["flows"])
async def start_shadow(flow_id: str, body: ShadowBody, request: Request, eng: EngineDep) -> Response:
    """Rehearse a candidate on the latest live runs' events; answer each event's report (also kept)."""
    bench = eng.services.get(lifecycle.Workbench)
    if bench is None:
        raise errors.Conflict("this process cannot run shadows; expected a `seamflow serve` or `seamflow api`")
    eng.catalog.flow(flow_id)  # 404 for a flow that is not live
    try:
        candidate = bench.check(body.source, "<candidate>")
    except errors.FlowInvalid as exc:
        found: list[Json] = [{"where": str(p.where), "message": str(p)} for p in exc.problems]
        return problem(422, exc.code, f"{len(found)} problem(s) found", errors=found)
    if candidate.id != flow_id:
        raise errors.InvalidInput(
            f"the candidate's id is {candidate.id!r}; expected {flow_id!r}", code="shadow.other_flow"
        )
    results = await bench.shadow(eng.db, body.source, runs=body.runs)
    detail: dict[str, Json] = {
        "shadow_id": results[0].shadow_id,
        "candidate_version": candidate.version,
        "events": len(results),
    }
    await audit_api.record(request, audit.Action.FLOW_SHADOWED, f"flow:{flow_id}", detail)
    return json_response({"shadow_id": results[0].shadow_id, "results": shadow_json(results)})


@router.get("/api/v1/flows/{flow_id}/shadows", tags=["flows"])
async def list_shadows(flow_id: str, eng: EngineDep, shadow: str | None = None) -> Response:
    """The flow's shadow results (or one shadow's), newest shadow first."""
    return json_response(shadow_json(await eng.db.list_shadow_results(flow_id, shadow)))
