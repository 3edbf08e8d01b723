"""`/api/v1/syncs`: status of each record sync, its conflict queue, resolving a conflict, a check."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from seamflow import engine, errors, redact, store, sync
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.api.problems import problem
from seamflow.ids import Json

__all__ = ["ResolveBody", "router"]

router = APIRouter(dependencies=[Depends(require_token)])


class ResolveBody(BaseModel):
    """The value the record takes for the conflicting field."""

    model_config = ConfigDict(extra="forbid")
    value: Any


def _service(eng: engine.Engine) -> sync.SyncService:
    service = eng.services.get(sync.SyncService)
    if service is None:
        raise errors.NotFound("this project defines no syncs (syncs/*.yaml)")
    return service


def _conflict(c: store.SyncConflict) -> Json:
    return {
        "id": c.id,
        "sync": c.sync_id,
        "canonical_id": c.canonical_id,
        "field": c.field,
        "candidates": c.candidates,
        "status": c.status,
        "resolution": c.resolution,
        "created": c.created.isoformat(),
        "resolved": c.resolved.isoformat() if c.resolved else None,
    }


@router.get("/api/v1/syncs", tags=["syncs"])
async def list_syncs(eng: EngineDep) -> Response:
    """Every sync: records, links per side, deletes, open conflicts, and per side its feed's
    health and lag, runs waiting (pending) and dead-lettered (failed records)."""
    service = _service(eng)
    side_flows = [f"sync.{sync_id}.{side}" for sync_id, spec in service.syncs.items() for side in spec.sides]
    counts = await eng.db.count_open_runs_of_flows(side_flows)
    feeds = {f.flow_id: f for f in await eng.db.list_feeds()}
    answer: list[Json] = []
    for sync_id, spec in sorted(service.syncs.items()):
        status = await service.status(sync_id)
        sides = {side: _side_json(eng, f"sync.{sync_id}.{side}", feeds, counts) for side in spec.sides}
        assert isinstance(status, dict)
        answer.append({**status, "per_side": sides})
    return json_response(answer)


@router.get("/api/v1/syncs/{sync_id}/conflicts", tags=["syncs"])
async def list_conflicts(sync_id: str, eng: EngineDep, status: str = "open") -> Response:
    """The conflict queue of a sync (`status=open|resolved|all`)."""
    _service(eng).sync_spec(sync_id)
    found = await eng.db.list_sync_conflicts(sync_id, status=None if status == "all" else status)
    return json_response([_conflict(c) for c in found])


@router.post("/api/v1/syncs/conflicts/{conflict_id}/resolve", tags=["syncs"])
async def resolve(conflict_id: str, body: ResolveBody, eng: EngineDep) -> Response:
    """Settle a conflict: the record takes `value` and both systems are written."""
    outcome = await _service(eng).resolve(conflict_id, body.value)
    return json_response(outcome.as_json())


@router.post("/api/v1/syncs/{sync_id}/check", tags=["syncs"])
async def check(sync_id: str, eng: EngineDep, repair: bool = False) -> Response:
    """Compare both systems now (`repair=true` converges them by the sync's rules).

    A system that does not answer is a 503 `sync.side_unreachable` naming each side, its
    connection and address, and whether it answers (as `seamflow sync check` prints them).
    """
    service = _service(eng)
    try:
        report = await service.check(sync_id, repair=repair)
    except errors.Transient as exc:
        sides = await _sides_reached(eng, service.sync_spec(sync_id))
        down = [side["side"] for side in sides if not side["answers"]]
        detail = (
            f"sync {sync_id}: cannot compare; side {', '.join(map(str, down))} cannot be reached"
            if down
            else f"sync {sync_id}: a system stopped answering during the comparison: {exc.message}"
        )
        shown: list[Json] = list(sides)
        return problem(
            503, "sync.side_unreachable", redact.mask_text(detail), headers={"Retry-After": "30"}, sides=shown
        )
    return json_response(report.as_json())


async def _sides_reached(eng: engine.Engine, spec: sync.Sync) -> list[dict[str, Json]]:
    """Each side of `spec`: its connection, address (no credentials) and whether it answers now."""
    names = sorted({side.connection for side in spec.sides.values()})
    answers = dict(zip(names, await asyncio.gather(*(eng.pool.check(name) for name in names)), strict=True))
    return [
        {
            "side": side_name,
            "connection": side.connection,
            "address": eng.pool.address_of(side.connection),
            "answers": answers[side.connection].is_ok,
            "message": None if answers[side.connection].is_ok else redact.mask_text(answers[side.connection].message),
        }
        for side_name, side in spec.sides.items()
    ]


def _side_json(
    eng: engine.Engine, flow_id: str, feeds: dict[str, store.FeedState], counts: dict[str, dict[str, int]]
) -> Json:
    """One side of a sync: its generated flow's feed health and lag, pending and failed runs."""
    feed = feeds.get(flow_id)
    per_status = counts.get(flow_id, {})
    return {
        "flow": flow_id if flow_id in eng.catalog.current else None,
        "feed_health": engine.feed_health(feed.last_ok, feed.failing_since, _stall(eng, flow_id)) if feed else None,
        "last_ok": feed.last_ok.isoformat() if feed and feed.last_ok else None,
        "lag_s": _lag(feed),
        "pending": per_status.get("queued", 0) + per_status.get("running", 0) + per_status.get("waiting", 0),
        "failed": per_status.get("dead_letter", 0) + per_status.get("failed", 0),
    }


def _stall(eng: engine.Engine, flow_id: str) -> timedelta:
    flow = eng.catalog.current.get(flow_id)
    trigger = flow.spec.trigger.feed if flow else None
    return trigger.stall_after if trigger else timedelta(minutes=10)


def _lag(feed: store.FeedState | None) -> float | None:
    if feed is None or feed.last_item is None or feed.last_ok is None:
        return None
    return round(max((feed.last_ok - feed.last_item).total_seconds(), 0.0), 3)
