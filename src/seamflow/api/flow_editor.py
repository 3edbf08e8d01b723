"""The console's flow editor: a flow's file with its version, saving it (never over someone else's
save), creating a flow, the palette of actions, and a preview of inputs against a real event.

A save names the version of the text it started from (`If-Match: "<etag>"`, from `GET
…/source`); if the file changed since, the answer is 409 with the saved text and a diff, and
nothing is written. The change is checked with the function `seamflow flow validate` uses
(`flows.validate.validate_project`, the draft in place of the file) and written into the file
round-tripped (`flows.roundtrip`): comments, key order and formatting outside the change stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, model_validator
from starlette.responses import Response

from seamflow import audit, codec, engine, errors, store
from seamflow.api import audit as audit_api
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.api.problems import problem
from seamflow.flows import expressions, load, roundtrip, validate
from seamflow.ids import Json

__all__ = ["FlowDraft", "PreviewBody", "router"]

router = APIRouter(dependencies=[Depends(require_token)])

_LOCK_FILE: Final = Path(".seamflow") / "flow-editor.lock"
"""Held (flock) from reading a flow file to writing it: the processes of a serve group share the
project folder, so the version check and the write are one step across them, not only in one."""
_STEP_KINDS: Final = ("action", "transform", "if", "foreach", "approval", "wait", "emit", "call")
_TRIGGER_KINDS: Final = ("webhook", "schedule", "manual", "poll", "consume", "oa")


class FlowDraft(BaseModel):
    """What the editor saves: the flow as data (written onto the file round-tripped) or its text."""

    flow: dict[str, Any] | None = None
    source: str | None = Field(None, max_length=load.MAX_FILE_BYTES)

    @model_validator(mode="after")
    def _one_of(self) -> FlowDraft:
        if (self.flow is None) == (self.source is None):
            raise ValueError("give exactly one of `flow` (the flow as data) or `source` (the YAML text)")
        return self


class PreviewBody(BaseModel):
    """A draft to check and render: its inputs against an event (pasted, or the flow's latest)."""

    flow_id: str | None = Field(None, max_length=100)
    """The saved flow the draft changes (its file is the base of the YAML; its latest run the event)."""
    flow: dict[str, Any] | None = None
    event: Any = None
    """The event as the flow sees it (`{"body": …}`); a value without `body` is taken as the body."""
    inputs: dict[str, str] = Field(default_factory=dict, max_length=500)
    """Input name (any label, e.g. `steps[2].with.amount`) -> its template."""


def _root(request: Request) -> Path:
    root = getattr(request.app.state, "project_root", None)
    if root is None:
        raise errors.Conflict(
            "this process serves no project folder; expected `seamflow serve` in a project", code="flow.no_project"
        )
    return Path(root)


def _relative(root: Path, path: Path | str) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def _file_of(eng: engine.Engine, root: Path, flow_id: str) -> Path:
    path = Path(eng.catalog.flow(flow_id).path)
    return path if path.is_absolute() else root / path


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def _source_json(root: Path, path: Path, text: str) -> dict[str, Json]:
    data, _ = load.parse_yaml(text, _relative(root, path))
    return {"path": _relative(root, path), "source": text, "etag": roundtrip.source_etag(text), "flow": data}


@router.get("/api/v1/flows/{flow_id}/source", tags=["flows"])
async def get_source(flow_id: str, request: Request, eng: EngineDep) -> Response:
    """The flow's file as it is on disk now, as text and as data, with its version (`ETag`)."""
    root = _root(request)
    path = _file_of(eng, root, flow_id)
    text = await asyncio.to_thread(_read, path)
    body = {"id": flow_id, **_source_json(root, path, text)}
    return _with_etag(json_response(body, is_redacted=False), text)


def _with_etag(response: Response, text: str) -> Response:
    response.headers["ETag"] = roundtrip.source_etag(text)
    return response


def _draft_text(draft: FlowDraft, base: str | None) -> str:
    if draft.source is not None:
        return draft.source
    if base is None:
        return roundtrip.new_source(draft.flow)
    return roundtrip.apply_to_source(base, draft.flow)


def _problems_json(root: Path, exc: errors.FlowInvalid) -> list[Json]:
    """Each problem as `seamflow flow validate` words it, the file named relative to the project."""
    found: list[Json] = []
    for p in exc.problems:
        where = errors.Location(_relative(root, p.where.file) if p.where.file else None, *_position(p.where))
        text = str(errors.Problem(where, p.problem, p.expected))
        found.append(
            {"where": str(where), "problem": p.problem, "expected": p.expected, "line": p.where.line, "text": text}
        )
    return found


def _invalid(root: Path, exc: errors.FlowInvalid) -> Response:
    found = _problems_json(root, exc)
    detail = "\n".join(str(f["text"]) for f in found if isinstance(f, dict))
    return problem(422, "flow.invalid", detail, errors=found)


def _position(where: errors.Location) -> tuple[int | None, int | None, str | None]:
    return where.line, where.column, where.path


def _check(root: Path, path: Path, text: str) -> None:
    """Validate the project with `text` as the file at `path`, as `seamflow flow validate` does."""
    connections = root / "connections.yaml"
    validate.validate_project(
        root / "flows", connections if connections.exists() else None, drafts={path: text.encode("utf-8")}
    )


def _write(path: Path, text: str) -> None:
    """Write the whole file or nothing: a reader (the reloader, git) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.saving")
    part.write_bytes(text.encode("utf-8"))
    os.replace(part, path)


@router.put("/api/v1/flows/{flow_id}/source", tags=["flows"])
async def save_source(flow_id: str, draft: FlowDraft, request: Request, eng: EngineDep) -> Response:
    """Save the flow: checked like `seamflow flow validate`, written round-tripped, then reloaded.

    Needs `If-Match` with the ETag the editor started from: 428 without it, 409 (with the saved text
    and a diff) if the file changed since, 422 (every problem with file:line:column) if invalid.
    """
    root = _root(request)
    expected = request.headers.get("if-match")
    if not expected:
        return problem(
            428,
            "flow.precondition_required",
            "a save needs the header If-Match with the ETag of the text it changes (from GET"
            f" /api/v1/flows/{flow_id}/source), so that no one's save is overwritten",
        )
    path = _file_of(eng, root, flow_id)

    def save() -> tuple[str, str | None]:
        with _locked(root):
            saved = _read(path)
            if expected.strip() not in (roundtrip.source_etag(saved), "*"):
                return saved, None
            text = _draft_text(draft, saved)
            _check(root, path, text)
            if text != saved:
                _write(path, text)
            return saved, text

    try:
        saved, text = await asyncio.to_thread(save)
    except errors.FlowInvalid as exc:
        return _invalid(root, exc)
    if text is None:
        return await asyncio.to_thread(_conflict, root, path, saved, draft)
    return await _saved(request, eng, root, path, text, flow_id)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    lock = root / _LOCK_FILE
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


def _conflict(root: Path, path: Path, saved: str, draft: FlowDraft) -> Response:
    try:
        theirs = _draft_text(draft, saved)
    except errors.FlowInvalid:
        theirs = draft.source or ""
    diff = roundtrip.diff_sources(saved, theirs, saved_name=f"{_relative(root, path)} (saved)", their_name="yours")
    return problem(
        409,
        "flow.conflict",
        f"{_relative(root, path)} was saved by someone else since you opened it; nothing was written."
        " Merge your change onto the saved version and save again",
        current=_source_json(root, path, saved),
        diff=diff,
        headers={"ETag": roundtrip.source_etag(saved)},
    )


async def _saved(request: Request, eng: EngineDep, root: Path, path: Path, text: str, flow_id: str) -> Response:
    reloaded: Json = None
    reloader = eng.services.get(engine.Reloader)
    if reloader is not None:
        result = await reloader.reload(cause="console")
        reloaded = result.as_json()
        await reloader.wait_for_group()  # the editor's next GET may reach another process of the group
        for changed in (*result.change.added, *result.change.changed):
            flow = eng.catalog.current.get(changed)
            version: Json = flow.version if flow is not None else None
            await audit_api.record(request, audit.Action.FLOW_DEPLOYED, f"flow:{changed}", {"version": version})
    body = {"id": flow_id, **_source_json(root, path, text), "reload": reloaded}
    return _with_etag(json_response(body, is_redacted=False), text)


@router.post("/api/v1/flows", tags=["flows"], status_code=201)
async def create_flow(draft: FlowDraft, request: Request, eng: EngineDep) -> Response:
    """Create a flow from scratch: written to `flows/<id>.yaml` after the same checks as a save.

    409 `flow.exists` if a flow with that id is loaded or the file exists.
    """
    root = _root(request)
    text = draft.source if draft.source is not None else roundtrip.new_source(draft.flow)
    data, _ = await asyncio.to_thread(_parse_or_none, text)
    flow_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(flow_id, str) or "/" in flow_id or flow_id.startswith("."):
        return problem(422, "flow.invalid", "flows/(new).yaml: the flow has no id; expected an id such as order-to-erp")
    path = root / "flows" / f"{flow_id}.yaml"

    def create() -> bool:
        with _locked(root):
            if flow_id in eng.catalog.current or path.exists():
                return False
            _check(root, path, text)
            _write(path, text)
            return True

    try:
        if not await asyncio.to_thread(create):
            return problem(409, "flow.exists", f"a flow {flow_id!r} exists already ({_relative(root, path)})")
    except errors.FlowInvalid as exc:
        return _invalid(root, exc)
    response = await _saved(request, eng, root, path, text, flow_id)
    response.status_code = 201
    return response


def _parse_or_none(text: str) -> tuple[Json, load.SourceMap | None]:
    try:
        return load.parse_yaml(text, "flows/(new).yaml")
    except errors.FlowInvalid:
        return None, None


@router.get("/api/v1/flows/palette", tags=["flows"])
async def palette(request: Request, eng: EngineDep) -> Response:
    """What a flow can use: the connections' actions (declarative connectors too) with their input
    schemas, the trigger and step kinds, and the expression filters for autocomplete."""
    root = _root(request)
    connections = root / "connections.yaml"
    infos, problems = await asyncio.to_thread(validate.connection_infos, connections if connections.exists() else None)
    listed: list[Json] = [
        {
            "name": info.name,
            "connector": info.connector,
            "actions": [_action_json(action) for _, action in sorted(_served_actions(eng, info).items())],
            "feeds": list[Json](sorted(info.feeds)),
        }
        for _, info in sorted(infos.items())
    ]
    return json_response(
        {
            "connections": listed,
            "triggers": list[Json](_TRIGGER_KINDS),
            "steps": list[Json](_STEP_KINDS),
            "filters": list[Json](expressions.filter_names()),
            "roots": list[Json](sorted(expressions.ROOTS - {"secrets"})),
            "problems": [str(p) for p in problems],
        }
    )


def _served_actions(eng: engine.Engine, info: validate.ConnectionInfo) -> Mapping[str, Any]:
    """The actions of the connection as this process opened it: an OpenAPI connection whose
    document is a URL knows its operations only once opened (validation never fetches)."""
    try:
        opened = eng.pool.get(info.name).connector.actions
    except errors.NotFound:
        return info.actions
    return opened if len(opened) > len(info.actions) else info.actions


def _action_json(action: Any) -> Json:
    schema: Json = codec.loads(codec.dumps(action.input.model_json_schema()))
    return {
        "name": action.name,
        "description": action.description,
        "is_idempotent": action.is_idempotent,
        "input": schema,
    }


@router.post("/api/v1/flows/preview", tags=["flows"])
async def preview(body: PreviewBody, request: Request, eng: EngineDep) -> Response:
    """Check a draft and render its inputs against a real event, in the flow sandbox.

    Answers the YAML the save would write, its problems (as `seamflow flow validate` words them),
    the event used and where it came from, the latest run's step outputs, and each input's
    value or error. `secrets` are not available to a preview.
    """
    root = _root(request)
    source: str | None = None
    problems: list[Json] = []
    if body.flow is not None:
        source, problems = await asyncio.to_thread(_draft_problems, eng, root, body)
    event, origin, outputs = await _sample(eng, body)
    scope: dict[str, object] = {
        "env": request.app.state.preview_env,
        "event": event,
        "steps": outputs,
        "run": {"id": "preview", "flow": body.flow_id or "", "version": "draft"},
    }
    rendered = {name: _render(name, template, scope) for name, template in body.inputs.items()}
    answer: dict[str, Json] = {"source": source, "problems": problems, "event": event, "event_from": origin}
    return json_response({**answer, "steps": outputs, "inputs": rendered})


def _draft_problems(eng: engine.Engine, root: Path, body: PreviewBody) -> tuple[str | None, list[Json]]:
    """The YAML the save would write and its problems (none: it would be saved)."""
    try:
        path: Path | None = _file_of(eng, root, body.flow_id) if body.flow_id else None
    except errors.NotFound:
        path = None
    flow_id = body.flow.get("id") if body.flow else None
    base = _read(path) if path is not None else None
    path = path or root / "flows" / f"{flow_id or 'new-flow'}.yaml"
    text = None
    try:
        text = _draft_text(FlowDraft(flow=body.flow, source=None), base)
        _check(root, path, text)
    except errors.FlowInvalid as exc:
        return text, _problems_json(root, exc)
    return text, []


async def _sample(eng: engine.Engine, body: PreviewBody) -> tuple[Json, str, dict[str, Json]]:
    """The event to render against, where it came from, and the step outputs of its run."""
    if body.event is not None:
        event = body.event if isinstance(body.event, dict) and "body" in body.event else {"body": body.event}
        return event, "pasted", {}
    if not body.flow_id:
        return {"body": {}}, "none", {}
    runs = await eng.db.list_runs(store.RunFilter(flow_id=body.flow_id, limit=1))
    if not runs:
        return {"body": {}}, "none", {}
    summary, state = await eng.db.get_run(runs[0].run_id)
    outputs = {e.path: e.output for e in state.journal if e.status == store.StepStatus.COMPLETED and "." not in e.path}
    return state.event_body, f"run:{summary.run_id}", outputs


def _render(name: str, template: str, scope: dict[str, object]) -> Json:
    try:
        value = expressions.Template.compile(template, where=name).render(scope)
    except errors.SeamflowError as exc:
        return {"error": exc.message, "code": exc.code}
    return {"value": value}
