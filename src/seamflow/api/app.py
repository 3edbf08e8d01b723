"""The HTTP interface: webhooks (public, optionally signed), the REST API (bearer token), health and metrics."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from seamflow import codec, engine, errors, redact, store
from seamflow.api import connections, operations, syncs
from seamflow.api.problems import problem, problem_from_error
from seamflow.api.webhooks import HOOKS_PREFIX, WebhookLimits, handle_webhook
from seamflow.ids import Json, RunId

__all__ = ["SeamflowApp", "WebhookLimits", "create_app", "hash_token"]

log = logging.getLogger("seamflow.api")


_DEFAULT_LIMITS = WebhookLimits()


def hash_token(token: str) -> str:
    """The stored form of an API token (SHA-256; tokens are long random strings, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


class SignalBody(BaseModel):
    """A signal for runs waiting in a `wait` step."""

    name: str = Field(min_length=1, max_length=100)
    key: str = Field(min_length=1, max_length=500)
    payload: Any = None


class ManualRunBody(BaseModel):
    """Input of a manually started run; it becomes `event.body`."""

    input: Any = None
    idempotency_key: str | None = Field(None, max_length=500)


def _json(value: Json, status: int = 200) -> Response:
    return Response(codec.dumps(redact.mask(value)), status, media_type="application/json")


def create_app(
    eng: engine.Engine,
    *,
    limits: WebhookLimits = _DEFAULT_LIMITS,
    context: Mapping[str, object],
    manage_engine: bool = True,
) -> SeamflowApp:
    """Build the ASGI app around a started (or, with `manage_engine`, lifespan-started) engine."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_engine:
            await eng.start()
        try:
            yield
        finally:
            if manage_engine:
                await eng.stop()

    app = FastAPI(
        title="Seamflow", version="0.1.0", lifespan=lifespan, description="Flows, runs, events, dead letters, signals."
    )
    known_tokens: set[str] = set()

    async def require_token(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise errors.Unauthorized("missing API token; expected the header Authorization: Bearer <token>")
        digest = hash_token(token.strip())
        if digest not in known_tokens:
            if not await eng.db.has_api_token(digest):
                raise errors.Unauthorized("the API token is not valid")
            known_tokens.add(digest)

    async def webhook(request: Request) -> Response:
        return await handle_webhook(request, eng, limits, context)

    _install_error_handlers(app)
    api = [Depends(require_token)]
    operations.health_routes(app, eng)
    operations.cluster_routes(app, eng, api)
    _flow_routes(app, eng, api, context)
    _run_routes(app, eng, api)
    connections.connection_routes(app, eng, api)
    syncs.sync_routes(app, eng, api)
    return SeamflowApp(app, webhook)


class SeamflowApp:
    """The ASGI app: webhooks are answered directly, everything else by the FastAPI app.

    Webhooks are the hot path (one per event), so they skip FastAPI's routing, dependency
    and middleware layers; the REST API keeps them.
    """

    def __init__(self, api: FastAPI, webhook: Callable[[Request], Awaitable[Response]]) -> None:
        self.api = api
        self._webhook = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(HOOKS_PREFIX):
            await self.api(scope, receive, send)
            return
        if scope["method"] != "POST":
            response = problem(405, "http.405", "webhooks accept POST only", headers={"Allow": "POST"})
        else:
            try:
                response = await self._webhook(Request(scope, receive))
            except Exception:  # the server keeps serving; the failure is logged with its request path
                log.exception("webhook failed", extra={"path": scope["path"]})
                response = problem(500, "internal", "an unexpected error occurred; see the server log")
        await response(scope, receive, send)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.SeamflowError)
    async def _seamflow(_: Request, exc: errors.SeamflowError) -> Response:
        return problem_from_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return problem(400, "request.invalid", details or "the request is not valid")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        return problem(exc.status_code, f"http.{exc.status_code}", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:  # the server keeps serving
        return problem(500, "internal", "an unexpected error occurred; see the server log")


def _flow_routes(app: FastAPI, eng: engine.Engine, api: list[Any], context: Mapping[str, object]) -> None:
    @app.get("/api/v1/flows", dependencies=api, tags=["flows"])
    async def list_flows() -> Response:
        """Loaded flows with their current version and trigger."""
        return _json([_flow_json(f) for f in eng.catalog.current.values()])

    @app.get("/api/v1/flows/{flow_id}", dependencies=api, tags=["flows"])
    async def get_flow(flow_id: str) -> Response:
        """One flow, with its source."""
        flow = eng.catalog.flow(flow_id)
        return _json({**_flow_json(flow), "source": flow.source})

    @app.post("/api/v1/flows/{flow_id}/runs", dependencies=api, tags=["runs"], status_code=202)
    async def start_run(flow_id: str, body: ManualRunBody) -> Response:
        """Start a run manually (the flow needs a `manual` trigger)."""
        flow = eng.catalog.flow(flow_id)
        if flow.spec.trigger.manual is None:
            raise errors.Conflict(f"flow {flow_id!r} has a {flow.spec.trigger.kind} trigger; expected a manual trigger")
        event = engine.Event("manual", body.input, dedupe_key=body.idempotency_key)
        accepted = await eng.accept(flow, event)
        if accepted is None:
            return _json({"status": "ignored", "reason": "the flow's when condition is false"})
        return _json(
            {"run_id": accepted.run_id, "duplicate": accepted.is_duplicate}, 200 if accepted.is_duplicate else 202
        )

    @app.post("/api/v1/signals", dependencies=api, tags=["runs"])
    async def send_signal(body: SignalBody) -> Response:
        """Deliver a signal to runs waiting for (name, key); kept until a run waits for it."""
        woken = await eng.signal(body.name, body.key, _plain(body.payload))
        return _json({"delivered_to": list(woken), "kept": not woken})


def _flow_json(flow: Any) -> dict[str, Json]:
    return {
        "id": flow.id,
        "name": flow.spec.name,
        "version": flow.version,
        "trigger": flow.spec.trigger.kind,
        "path": flow.path,
    }


def _run_routes(app: FastAPI, eng: engine.Engine, api: list[Any]) -> None:
    @app.get("/api/v1/runs", dependencies=api, tags=["runs"])
    async def list_runs(
        flow: str | None = None,
        status: Annotated[list[store.RunStatus] | None, Query()] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: str | None = None,
    ) -> Response:
        """Runs, newest first, filtered by flow, status and creation time; page with `before`."""
        query = store.RunFilter(
            flow_id=flow,
            statuses=tuple(status or ()),
            since=_instant(since, "since"),
            until=_instant(until, "until"),
            limit=limit,
            before_id=before,
        )
        return _json([_summary_json(r) for r in await eng.db.list_runs(query)])

    @app.get("/api/v1/runs/{run_id}", dependencies=api, tags=["runs"])
    async def get_run(run_id: str) -> Response:
        """A run with every journaled step attempt: input, output, error, timing."""
        summary, state = await eng.db.get_run(RunId(run_id))
        return _json(
            {**_summary_json(summary), "event": state.event_body, "steps": [_entry_json(e) for e in state.journal]}
        )

    @app.post("/api/v1/runs/{run_id}/replay", dependencies=api, tags=["runs"])
    async def replay(run_id: str) -> Response:
        """Re-run a failed or dead-lettered run from its failed step."""
        await eng.replay(RunId(run_id))
        return _json({"run_id": run_id, "status": "queued"}, 202)

    @app.get("/api/v1/dead-letters", dependencies=api, tags=["runs"])
    async def dead_letters(flow: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
        """Runs parked as dead letters, with their error."""
        query = store.RunFilter(flow_id=flow, statuses=(store.RunStatus.DEAD_LETTER,), limit=limit)
        return _json([_summary_json(r) for r in await eng.db.list_runs(query)])

    @app.get("/api/v1/events", dependencies=api, tags=["events"])
    async def event_log(
        after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        run: str | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> Response:
        """The event log in order: every state change and business event."""
        rows = await eng.db.list_event_log(after_seq=after, limit=limit, run_id=run)
        return _json(
            [
                {
                    "seq": r.seq,
                    "at": r.at.isoformat(),
                    "kind": r.kind,
                    "flow": r.flow_id,
                    "run_id": r.run_id,
                    "step": r.path,
                    "activity": r.activity,
                    "objects": r.objects,
                    "attributes": r.attributes,
                }
                for r in rows
            ]
        )


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
