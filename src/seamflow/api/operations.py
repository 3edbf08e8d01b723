"""Operations endpoints: health (live vs ready), metrics, workers of the cluster, feed health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from seamflow import codec, engine, errors, redact
from seamflow.engine.feeds import feed_health
from seamflow.ids import Json

__all__ = ["cluster_routes", "create_health_app", "health_routes"]


def _json(value: Json, status: int = 200) -> Response:
    return Response(codec.dumps(value), status, media_type="application/json")


def health_routes(app: FastAPI, eng: engine.Engine) -> None:
    """`/health/live`, `/health/ready`, `/health` (both) and `/metrics`; no token needed."""

    async def readiness() -> tuple[bool, dict[str, Json]]:
        try:
            current, expected = await eng.db.schema_status()
            counts = await eng.db.count_runs_by_status()
        except errors.SeamflowError as exc:
            return False, {"database": "unreachable", "detail": redact.mask_text(exc.message)}
        detail: dict[str, Json] = {
            "database": "ok",
            "schema": {"version": current, "expected": expected},
            "queue_depth": eng.queue_depth,
            "runs": dict(counts),
            "worker": eng.worker_id,
        }
        if current != expected:
            detail["detail"] = (
                f"schema is at version {current}, this Seamflow expects {expected}; run seamflow db upgrade"
            )
            return False, detail
        return True, detail

    @app.get("/health/live", tags=["operations"])
    async def live() -> Response:
        """The process runs and answers (restart it if not)."""
        return _json({"live": True})

    @app.get("/health/ready", tags=["operations"])
    async def ready() -> Response:
        """The database answers and its schema is current (send traffic only if so)."""
        is_ready, detail = await readiness()
        return _json({"live": True, "ready": is_ready, **detail}, 200 if is_ready else 503)

    @app.get("/health", tags=["operations"])
    async def health() -> Response:
        """Live and ready in one answer (503 when not ready)."""
        is_ready, detail = await readiness()
        return _json({"live": True, "ready": is_ready, **detail}, 200 if is_ready else 503)

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        """Prometheus metrics."""
        engine.metrics.QUEUE_DEPTH.set(eng.queue_depth)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def cluster_routes(app: FastAPI, eng: engine.Engine, api: list[Any]) -> None:
    """`/api/v1/workers` (live processes and what they hold) and `/api/v1/feeds` (trigger health)."""

    @app.get("/api/v1/workers", dependencies=api, tags=["operations"])
    async def workers() -> Response:
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

    @app.get("/api/v1/feeds", dependencies=api, tags=["operations"])
    async def feeds() -> Response:
        """Every `poll`/`consume` trigger: cursor, last success, failing since, items, health."""
        flows = eng.catalog.current
        answer: list[Json] = []
        for state in await eng.db.list_feeds():
            flow = flows.get(state.flow_id)
            trigger = flow.spec.trigger.feed if flow is not None else None
            answer.append(
                {
                    "flow": state.flow_id,
                    "connection": trigger.connection if trigger else None,
                    "feed": trigger.feed if trigger else None,
                    "health": feed_health(
                        state.last_ok,
                        state.failing_since,
                        trigger.stall_after,
                        pushed=flow is not None and flow.spec.trigger.consume is not None,
                    )
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
            )
        return _json(answer)


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
    health_routes(app, eng)
    return app
