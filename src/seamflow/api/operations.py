"""Operations endpoints: health (live vs ready), metrics, workers of the cluster, feed health.

Liveness is public and says nothing about flows. Readiness is public too (load balancers ask
it) but answers only `ready` and, when not ready, why; its details (run counts, queue depth,
the worker's id) need credentials with the read scope. `/metrics` needs the read scope, or a
listen address of its own (`seamflow serve --metrics-listen`, `create_metrics_app`) reachable
only from the monitoring network.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import APIRouter, Depends, FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from seamflow import clock, engine, errors, redact, store
from seamflow.api import access
from seamflow.api.dependencies import EngineDep, attach_engine, json_response, require_token
from seamflow.ids import Json

__all__ = ["cluster_router", "create_health_app", "create_metrics_app", "health_router", "metrics_router"]

health_router = APIRouter()
"""`/health/live`, `/health/ready`, `/health` (both); no token needed, details only with one."""
metrics_router = APIRouter(dependencies=[Depends(require_token)])
"""`/metrics`: Prometheus metrics, with the read scope."""
_open_metrics_router = APIRouter()
"""`/metrics` without a token, for the metrics listen address only."""
cluster_router = APIRouter(dependencies=[Depends(require_token)])
"""`/api/v1/workers` (live processes and what they hold) and `/api/v1/feeds` (trigger health)."""


def _json(value: Json, status: int = 200) -> Response:
    return json_response(value, status, is_redacted=False)  # health answers hold no secret values


async def _readiness(eng: engine.Engine, *, with_counts: bool) -> tuple[bool, dict[str, Json]]:
    """Whether the database answers with the expected schema; the run counts (a scan of every run)
    only for someone allowed to see them, so a readiness probe costs one cheap query."""
    try:
        current, expected = await eng.db.schema_status()
        counts = await eng.db.count_runs_by_status() if with_counts else None
    except errors.SeamflowError as exc:
        return False, {"database": "unreachable", "detail": redact.mask_text(exc.message)}
    detail: dict[str, Json] = {
        "database": "ok",
        "schema": {"version": current, "expected": expected},
        "queue_depth": eng.queue_depth,
        "worker": eng.worker_id,
    }
    if counts is not None:
        detail["runs"] = dict(counts)
    if current != expected:
        detail["detail"] = f"schema is at version {current}, this Seamflow expects {expected}; run seamflow db upgrade"
        return False, detail
    return True, detail


@health_router.get("/health/live", tags=["operations"])
async def live() -> Response:
    """The process runs and answers (restart it if not)."""
    return _json({"live": True})


@health_router.get("/health/ready", tags=["operations"])
async def ready(request: Request, eng: EngineDep) -> Response:
    """The database answers and its schema is current (send traffic only if so); details with the read scope."""
    return await _health_answer(request, eng)


@health_router.get("/health", tags=["operations"])
async def health(request: Request, eng: EngineDep) -> Response:
    """Live and ready in one answer (503 when not ready); details with the read scope."""
    return await _health_answer(request, eng)


async def _health_answer(request: Request, eng: engine.Engine) -> Response:
    details = await _may_see_details(request, eng)
    is_ready, detail = await _readiness(eng, with_counts=details)
    shown = detail if details else _short(detail)
    return _json({"live": True, "ready": is_ready, **shown}, 200 if is_ready else 503)


async def _may_see_details(request: Request, eng: engine.Engine) -> bool:
    if getattr(request.app.state, "is_metrics_listener", False):
        return True  # the monitoring network's own address
    return await access.may_read_details(request, request.app.state.known_tokens, eng)


def _short(detail: dict[str, Json]) -> dict[str, Json]:
    """What anyone may see: whether the database answers and why the process is not ready."""
    return {k: v for k, v in detail.items() if k in ("database", "detail")}


@metrics_router.get("/metrics", tags=["operations"])
async def metrics(eng: EngineDep) -> Response:
    """Prometheus metrics (the read scope; or without a token on `--metrics-listen`)."""
    return _exposition(eng)


@_open_metrics_router.get("/metrics", tags=["operations"])
async def open_metrics(eng: EngineDep) -> Response:
    """Prometheus metrics on the metrics listen address."""
    return _exposition(eng)


def _exposition(eng: engine.Engine) -> Response:
    engine.metrics.QUEUE_DEPTH.set(eng.queue_depth)
    return Response(engine.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@cluster_router.get("/api/v1/workers", tags=["operations"])
async def workers(eng: EngineDep) -> Response:
    """Registered processes, with their heartbeat and how many runs each holds."""
    found = await eng.db.list_workers()
    return _json(
        [
            {
                "id": w.id,
                "host": w.host,
                "pid": w.pid,
                "roles": w.roles,
                "started": w.started.isoformat(),
                "heartbeat": w.heartbeat.isoformat(),
                "runs_held": w.runs_held,
            }
            for w in found
        ]
    )


@cluster_router.get("/api/v1/overview", tags=["operations"])
async def overview(eng: EngineDep) -> Response:
    """Runs at a glance (what the console polls): unfinished, failed and dead-lettered runs, runs
    finished in the last minute, and this process's queue depth."""
    at = clock.now()
    counts = await eng.db.count_runs_at_a_glance(at - timedelta(minutes=1))
    finished = counts.pop("finished")
    return _json(
        {"at": at.isoformat(), "runs": dict(counts), "finished_last_minute": finished, "queue_depth": eng.queue_depth}
    )


@cluster_router.get("/api/v1/feeds", tags=["operations"])
async def feeds(eng: EngineDep) -> Response:
    """Every `poll`/`consume` trigger: cursor, last success, failing since, items, health."""
    return _json([_feed_json(eng, state) for state in await eng.db.list_feeds()])


def _feed_json(eng: engine.Engine, state: store.FeedState) -> Json:
    flow = eng.catalog.current.get(state.flow_id)
    trigger = flow.spec.trigger.feed if flow is not None else None
    pushed = flow is not None and flow.spec.trigger.consume is not None
    return {
        "flow": state.flow_id,
        "connection": trigger.connection if trigger else None,
        "feed": trigger.feed if trigger else None,
        "health": engine.feed_health(state.last_ok, state.failing_since, trigger.stall_after, pushed=pushed)
        if trigger
        else "unused",
        "held_by": state.owner,
        "cursor": state.cursor,
        "items": state.items,
        "last_poll": state.last_poll.isoformat() if state.last_poll else None,
        "last_ok": state.last_ok.isoformat() if state.last_ok else None,
        "last_item": state.last_item.isoformat() if state.last_item else None,
        "failing_since": state.failing_since.isoformat() if state.failing_since else None,
        "last_error": state.last_error,
    }


def create_health_app(eng: engine.Engine) -> FastAPI:
    """The small app of a `seamflow worker`: health and metrics only; it starts and stops the engine."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await eng.start()
        try:
            yield
        finally:
            await eng.stop()

    app = FastAPI(title="Seamflow worker", version="0.1.0", lifespan=lifespan)
    attach_engine(app, eng)
    app.include_router(health_router)
    app.include_router(metrics_router)
    return app


def create_metrics_app(eng: engine.Engine) -> FastAPI:
    """`/metrics` and detailed health without a token, for a listen address of their own.

    Bind it to an address only the monitoring network reaches (`--metrics-listen 10.0.0.5:9100`);
    the engine is started and stopped by the main app, not by this one.
    """
    app = FastAPI(title="Seamflow metrics", version="0.1.0", openapi_url=None, docs_url=None, redoc_url=None)
    attach_engine(app, eng)
    app.state.is_metrics_listener = True
    app.include_router(health_router)
    app.include_router(_open_metrics_router)
    return app
