"""`/api/v1/flows/{flow_id}/shadows`: shadow runs of a candidate version — started (rehearsed on the
latest live runs' events, nothing sent) and listed with their per-event reports."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from seamflow import audit, clock, errors, lifecycle, store
from seamflow.api import audit as audit_api
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.api.problems import problem
from seamflow.ids import Json

__all__ = ["LiveShadowBody", "ShadowBody", "router", "shadow_json"]

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


class LiveShadowBody(BaseModel):
    """A candidate version's text and the live shadow's bounds: events and time."""

    source: str = Field(max_length=1_000_000, description="the candidate flow file's YAML text (same flow id)")
    max_events: int = Field(100, ge=1, le=10_000, description="stop after rehearsing this many live events")
    minutes: int = Field(60, ge=1, le=10_080, description="stop after this many minutes (at most a week)")


@router.post("/api/v1/flows/{flow_id}/shadows/live", tags=["flows"], status_code=201)
async def start_live_shadow(flow_id: str, body: LiveShadowBody, request: Request, eng: EngineDep) -> Response:
    """Mirror each new live event of the flow to the candidate (rehearsed after the live run), within bounds."""
    bench = eng.services.get(lifecycle.Workbench)
    if bench is None:
        raise errors.Conflict("this process cannot run shadows; expected a `seamflow serve` or `seamflow api`")
    eng.catalog.flow(flow_id)
    try:
        candidate = bench.check(body.source, "<candidate>")
    except errors.FlowInvalid as exc:
        found: list[Json] = [{"where": str(p.where), "message": str(p)} for p in exc.problems]
        return problem(422, exc.code, f"{len(found)} problem(s) found", errors=found)
    if candidate.id != flow_id:
        raise errors.InvalidInput(
            f"the candidate's id is {candidate.id!r}; expected {flow_id!r}", code="shadow.other_flow"
        )
    by = str(getattr(getattr(request.state, "principal", None), "login", "@unknown"))
    shadow = await lifecycle.start_live_shadow(
        eng.db, candidate, by=by, max_events=body.max_events, duration=timedelta(minutes=body.minutes)
    )
    detail: dict[str, Json] = {"shadow_id": shadow.shadow_id, "candidate_version": candidate.version, "live": "started"}
    await audit_api.record(request, audit.Action.FLOW_SHADOWED, f"flow:{flow_id}", detail)
    return json_response(lifecycle.live_shadow_json(shadow, 0), 201)


@router.get("/api/v1/flows/{flow_id}/shadows/live", tags=["flows"])
async def list_live_shadows(flow_id: str, eng: EngineDep) -> Response:
    """The flow's live shadows, newest first, with how many events each has rehearsed."""
    shadows = await eng.db.list_live_shadows(flow_id)
    counted = [(s, len(await eng.db.list_shadow_results(flow_id, s.shadow_id))) for s in shadows]
    return json_response([lifecycle.live_shadow_json(s, n) for s, n in counted])


@router.post("/api/v1/flows/{flow_id}/shadows/live/{shadow_id}/stop", tags=["flows"])
async def stop_live_shadow(flow_id: str, shadow_id: str, request: Request, eng: EngineDep) -> Response:
    """Stop a live shadow now (its results stay); 404 unless it is one of the flow's, not stopped yet."""
    by = str(getattr(getattr(request.state, "principal", None), "login", "@unknown"))
    ours = {s.shadow_id for s in await eng.db.list_live_shadows(flow_id)}
    if shadow_id not in ours or not await eng.db.stop_live_shadow(shadow_id, clock.now(), by):
        raise errors.NotFound(
            f"flow {flow_id!r} has no live shadow {shadow_id!r} running; expected one of `GET …/shadows/live`",
            code="shadow.not_found",
        )
    detail: dict[str, Json] = {"shadow_id": shadow_id, "live": "stopped"}
    await audit_api.record(request, audit.Action.FLOW_SHADOWED, f"flow:{flow_id}", detail)
    return json_response({"shadow_id": shadow_id, "stopped_by": by})
