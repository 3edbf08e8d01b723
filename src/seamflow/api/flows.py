"""`/api/v1/flows`: the loaded flows and their source, and starting a run by hand."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from seamflow import audit, directory, engine, errors, flows, lifecycle
from seamflow.api import access
from seamflow.api import audit as audit_api
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.ids import Json

__all__ = ["ManualRunBody", "outline", "router"]

router = APIRouter(dependencies=[Depends(require_token)])


class ManualRunBody(BaseModel):
    """Input of a manually started run; it becomes `event.body`."""

    input: Any = None
    idempotency_key: str | None = Field(None, max_length=500)


@router.get("/api/v1/flows", tags=["flows"])
async def list_flows(request: Request, eng: EngineDep) -> Response:
    """Loaded flows the caller may see, with their current version, trigger and `scopes`: what the
    caller may do on each (global roles and grants; the console hides the rest). The built-in flow
    of promotion requests is not listed."""
    visible = access.visible_flows(request, eng, directory.Scope.READ)
    shown = [
        f
        for f in eng.catalog.current.values()
        if (visible is None or f.id in visible) and f.id != lifecycle.PROMOTION_FLOW_ID  # built in: not the company's
    ]
    return json_response([{**_flow_json(f), "scopes": _scopes(request, eng, f.id)} for f in shown])


@router.post("/api/v1/flows/reload", tags=["flows"])
async def reload_flows(request: Request, eng: EngineDep) -> Response:
    """Read the flow files again and serve the valid ones now; answer what was added, changed,
    removed, and which files were not loaded (their flows keep their earlier version)."""
    reloader = eng.services.get(engine.Reloader)
    if reloader is None:
        raise errors.Conflict("this process does not reload flows; expected a `seamflow serve` or `seamflow api`")
    principal = getattr(request.state, "principal", None)
    result = await reloader.reload(cause="api", by=getattr(principal, "login", None))
    await reloader.wait_for_group()  # the caller's next request may reach another process of the group
    for flow_id in (*result.change.added, *result.change.changed):
        flow = eng.catalog.current.get(flow_id)
        version: Json = flow.version if flow is not None else None
        await audit_api.record(request, audit.Action.FLOW_DEPLOYED, f"flow:{flow_id}", {"version": version})
    return json_response(result.as_json())


@router.get("/api/v1/flows/{flow_id}", tags=["flows"])
async def get_flow(flow_id: str, request: Request, eng: EngineDep) -> Response:
    """One flow, with its source, its outline (trigger and steps as a tree, what the console draws)
    and what the caller may do on it (`scopes`)."""
    flow = eng.catalog.flow(flow_id)
    return json_response(
        {
            **_flow_json(flow),
            "scopes": _scopes(request, eng, flow_id),
            "source": flow.source,
            "outline": outline(flow.spec),
        }
    )


def _scopes(request: Request, eng: engine.Engine, flow_id: str) -> list[Json]:
    held = access.principal_of(request).scopes_on(access.flow_ref(eng, flow_id))
    return [str(s) for s in sorted(held)]


@router.post("/api/v1/flows/{flow_id}/runs", tags=["runs"], status_code=202)
async def start_run(flow_id: str, body: ManualRunBody, eng: EngineDep) -> Response:
    """Start a run manually (the flow needs a `manual` trigger)."""
    flow = eng.catalog.flow(flow_id)
    if flow.spec.trigger.manual is None:
        raise errors.Conflict(f"flow {flow_id!r} has a {flow.spec.trigger.kind} trigger; expected a manual trigger")
    event = engine.Event("manual", body.input, dedupe_key=body.idempotency_key)
    accepted = await eng.accept(flow, event)
    if accepted is None:
        return json_response({"status": "ignored", "reason": "the flow's when condition is false"})
    return json_response(
        {"run_id": accepted.run_id, "duplicate": accepted.is_duplicate}, 200 if accepted.is_duplicate else 202
    )


def _flow_json(flow: Any) -> dict[str, Json]:
    return {
        "id": flow.id,
        "name": flow.spec.name,
        "version": flow.version,
        "trigger": flow.spec.trigger.kind,
        "path": flow.path,
    }


def outline(spec: flows.spec.Flow) -> dict[str, Json]:
    """The flow's shape: `{"trigger": {"kind","label"}, "steps": [node…]}`, a node being
    `{"id","kind","label"}` plus `then`/`else` (an `if`) or `steps` (a `foreach`) holding nodes."""
    trigger = spec.trigger
    label = {
        "webhook": lambda: f"/hooks/{trigger.webhook.path}" if trigger.webhook else "",
        "schedule": lambda: (trigger.schedule.cron or "") if trigger.schedule else "",
        "poll": lambda: f"{trigger.poll.connection}.{trigger.poll.feed}" if trigger.poll else "",
        "consume": lambda: f"{trigger.consume.connection}.{trigger.consume.feed}" if trigger.consume else "",
    }.get(trigger.kind, lambda: "")()
    return {"trigger": {"kind": trigger.kind, "label": label}, "steps": [_node(s) for s in spec.steps]}


def _node(step: Any) -> dict[str, Json]:
    kind = flows.spec.step_kind(step) or "step"
    node: dict[str, Json] = {"id": step.id, "kind": kind, "label": _label(kind, step)}
    if kind == "if":
        node["then"] = [_node(s) for s in step.then]
        node["else"] = [_node(s) for s in step.else_]
    elif kind == "foreach":
        node["steps"] = [_node(s) for s in step.steps]
    return node


def _label(kind: str, step: Any) -> str:
    if kind == "action":
        return str(step.action)
    if kind == "call":
        return str(step.call)
    if kind == "if":
        return str(step.if_)
    if kind == "foreach":
        return str(step.foreach)
    if kind == "wait":
        wait = step.wait
        return f"signal {wait.signal}" if wait.signal else str(wait.duration or wait.until or "")
    if kind == "approval":
        return " → ".join(level.name or f"#{i + 1}" for i, level in enumerate(step.approval.levels))
    if kind == "emit":
        return str(step.emit.activity)
    return ""
