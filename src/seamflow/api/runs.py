"""`/api/v1/runs`, `/api/v1/dead-letters`, `/api/v1/signals`: runs with their journal, replay, signals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from seamflow import audit, codec, directory, errors, store
from seamflow.api import access
from seamflow.api import audit as audit_api
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.flows import in_flow_order
from seamflow.ids import Json, RunId

__all__ = ["SignalBody", "router"]

router = APIRouter(dependencies=[Depends(require_token)])


class SignalBody(BaseModel):
    """A signal for runs waiting in a `wait` step."""

    name: str = Field(min_length=1, max_length=100)
    key: str = Field(min_length=1, max_length=500)
    payload: Any = None


@router.post("/api/v1/signals", tags=["runs"])
async def send_signal(body: SignalBody, eng: EngineDep) -> Response:
    """Deliver a signal to runs waiting for (name, key); kept until a run waits for it."""
    woken = await eng.signal(body.name, body.key, _plain(body.payload))
    return json_response({"delivered_to": list(woken), "kept": not woken})


@router.get("/api/v1/runs", tags=["runs"])
async def list_runs(
    request: Request,
    eng: EngineDep,
    flow: str | None = None,
    status: Annotated[list[store.RunStatus] | None, Query()] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: str | None = None,
    key: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Runs, newest first, filtered by flow, status, creation time and business key (the event's
    dedupe key); page with `before`. Only runs of flows the caller may read."""
    query = store.RunFilter(
        flow_ids=access.visible_flows(request, eng, directory.Scope.READ),
        flow_id=flow,
        statuses=tuple(status or ()),
        since=_instant(since, "since"),
        until=_instant(until, "until"),
        limit=limit,
        before_id=before,
        dedupe_key=key,
    )
    return json_response([_summary_json(r) for r in await eng.db.list_runs(query)])


@router.get("/api/v1/runs/{run_id}", tags=["runs"])
async def get_run(run_id: str, eng: EngineDep) -> Response:
    """A run with every journaled step attempt: input, output, error, timing."""
    summary, state = await eng.db.get_run(RunId(run_id))
    journal: Sequence[store.JournalEntry] = state.journal
    try:  # the flow's order: the store lists steps by start millisecond, and fast steps tie
        flow = await eng.catalog.at_version(eng.db, state.flow_id, state.flow_version)
        journal = in_flow_order(journal, flow.spec.steps)
    except errors.NotFound:  # the version's source is not kept: the store's order
        pass
    steps = [_entry_json(e) for e in journal]
    return json_response({**_summary_json(summary), "event": state.event_body, "steps": steps})


@router.post("/api/v1/runs/{run_id}/replay", tags=["runs"])
async def replay(run_id: str, request: Request, eng: EngineDep) -> Response:
    """Re-run a failed or dead-lettered run from its failed step."""
    await eng.replay(RunId(run_id))
    await audit_api.record(request, audit.Action.RUN_REPLAYED, f"run:{run_id}")
    return json_response({"run_id": run_id, "status": "queued"}, 202)


@router.get("/api/v1/dead-letters", tags=["runs"])
async def dead_letters(
    request: Request, eng: EngineDep, flow: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Response:
    """Runs parked as dead letters, with their error (of the flows the caller may read)."""
    visible = access.visible_flows(request, eng, directory.Scope.READ)
    query = store.RunFilter(flow_id=flow, statuses=(store.RunStatus.DEAD_LETTER,), limit=limit, flow_ids=visible)
    return json_response([_summary_json(r) for r in await eng.db.list_runs(query)])


def _summary_json(r: store.RunSummary) -> dict[str, Json]:
    return {
        "run_id": r.run_id,
        "flow": r.flow_id,
        "version": r.flow_version,
        "status": r.status.value,
        "event_id": r.event_id,
        "created": r.created.isoformat(),
        "updated": r.updated.isoformat(),
        "finished": r.finished.isoformat() if r.finished else None,
        "error": r.error,
    }


def _entry_json(e: store.JournalEntry) -> Json:
    return {
        "step": e.path,
        "kind": e.kind,
        "attempt": e.attempt,
        "generation": e.generation,
        "status": e.status.value,
        "input": e.input,
        "output": e.output,
        "error": e.error,
        "started": e.started.isoformat(),
        "finished": e.finished.isoformat(),
        "duration_ms": round((e.finished - e.started).total_seconds() * 1000, 3),
    }


def _instant(value: datetime | None, name: str) -> datetime | None:
    """A query instant; without an offset it is UTC. Out-of-range instants are bad input."""
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        aware.astimezone(UTC).timestamp()
    except (OverflowError, ValueError):
        raise errors.InvalidInput(
            f"{name}={errors.redact(value.isoformat())} is out of range; expected an instant between years 1 and 9999",
            code="request.invalid",
        ) from None
    return aware


def _plain(value: Any) -> Json:
    result: Json = codec.loads(codec.dumps(value))
    return result
