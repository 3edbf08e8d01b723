"""`/api/v1/insight/…`: the process map (JSON, SVG or HTML), KPIs and exports of the event log.

Each serving process keeps one `insight.Insight`: `serve` opens it at start (its index kept in a
DuckDB file, current in the background); any question also reads the rows appended since first.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, Response

from seamflow import errors, insight
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.ids import Json

__all__ = ["router"]

router = APIRouter(dependencies=[Depends(require_token)])


def _insight(request: Request, eng: EngineDep) -> insight.Insight:
    # The process's insight (kept current in the background by `serve`), else one for this app.
    found = eng.services.get(insight.Insight) or getattr(request.app.state, "insight", None)
    if found is None:  # no await between the check and the set: one Insight per app
        found = insight.Insight(eng.db)
    request.app.state.insight = found
    return cast(insight.Insight, found)


InsightDep = Annotated[insight.Insight, Depends(_insight)]
_FRESH = "recompute before answering, counting every event arrived so far (else the last result may answer)"


def _filter(object_type: str, where: list[str], start: datetime | None, end: datetime | None) -> insight.CaseFilter:
    attributes: dict[str, str] = {}
    for item in where:
        name, sep, value = item.partition(":")
        if not sep or not name:
            raise errors.InvalidInput(
                f"where={errors.redact(item)}: expected attribute:value, e.g. region:华东",
                code="insight.filter_invalid",
            )
        attributes[name] = value
    return insight.CaseFilter(object_type, attributes, start, end)


@router.get("/api/v1/insight/map", tags=["insight"])
async def process_map(
    found: InsightDep,
    object_type: Annotated[str, Query(min_length=1, max_length=200)],
    where: Annotated[list[str] | None, Query(description="attribute:value of the case object")] = None,
    start: Annotated[datetime | None, Query(alias="from", description="cases started at or after")] = None,
    end: Annotated[datetime | None, Query(alias="until", description="cases started before")] = None,
    form: Annotated[Literal["json", "svg", "html"], Query(alias="format")] = "json",
) -> Response:
    """The directly-follows graph of one object type with frequency, performance, variants and bottlenecks."""
    result = await found.process_map(_filter(object_type, where or [], start, end))
    if form == "svg":
        return Response(insight.map_svg(result), media_type="image/svg+xml")
    if form == "html":
        return Response(insight.map_html(result, f"Process map: {object_type}"), media_type="text/html")
    return json_response(result.to_json())


@router.get("/api/v1/insight/conformance", tags=["insight"])
async def conformance(
    found: InsightDep,
    object_type: Annotated[str, Query(min_length=1, max_length=200)],
    designed: Annotated[list[str], Query(min_length=1, description="the designed path's activities, in order")],
    where: Annotated[list[str] | None, Query(description="attribute:value of the case object")] = None,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="until")] = None,
) -> Response:
    """Cases against the designed path: skipped, repeated, out-of-order and unexpected activities, with cases."""
    report = await found.conformance(_filter(object_type, where or [], start, end), designed)
    return json_response(report.to_json())


@router.get("/api/v1/insight/diagnosis", tags=["insight"])
async def diagnosis(
    found: InsightDep,
    eng: EngineDep,
    object_type: Annotated[str, Query(min_length=1, max_length=200)],
    where: Annotated[list[str] | None, Query(description="attribute:value of the case object")] = None,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="until")] = None,
    top: Annotated[int, Query(ge=1, le=50)] = 5,
    fresh: Annotated[bool, Query(description=_FRESH)] = False,
) -> Response:
    """Where cases wait; where work passes between people, systems or departments (the wait at each); what is
    done twice, and the data typed into two systems — each finding with its cases.

    Answered from the last diagnosis while the log grows (`as_of` says how recent); see `kpis`."""
    cases = _filter(object_type, where or [], start, end)
    held = await found.recent.answer(
        f"diagnosis {cases!r} {top}", lambda: found.diagnosis(cases, top, people=eng.db), is_fresh=fresh
    )
    answer = _as_object(held.value.to_json())
    answer["as_of"] = held.as_of()
    return json_response(answer)


@router.get("/api/v1/insight/object-types", tags=["insight"])
async def object_types(found: InsightDep) -> Response:
    """The object types the event log's events touched, in order of first appearance (what a map can be of)."""
    await found.catch_up()
    types: list[Json] = list(found.index.object_types())
    return json_response(types)


@router.get("/api/v1/insight/kpis", tags=["insight"])
async def project_kpis(
    request: Request,
    found: InsightDep,
    go_live: Annotated[
        datetime | None,
        Query(alias="before_after", description="also each KPI for cases started before, and from, this time"),
    ] = None,
    fresh: Annotated[bool, Query(description=_FRESH)] = False,
) -> Response:
    """The KPIs of the project's `kpis.yaml`; with `before_after`, also before and after it.

    A KPI of an object type no event touched yet answers no rows and its `problem`. While events
    arrive, the last result is answered at once and a recompute starts in the background: `as_of`
    says when it was computed (`computed_at`), the log's seq it counts through (`through_seq`) and
    the events that arrived since (`arrived_since`, up to 100). One older than a minute with events
    since is recomputed first; `fresh=true` always recomputes first.
    """
    spec = await asyncio.to_thread(_project_kpis, getattr(request.app.state, "kpi_file", None))
    at = go_live if go_live is None or go_live.tzinfo else go_live.replace(tzinfo=UTC)
    held = await found.recent.answer(f"kpis {spec!r} {at}", lambda: _kpi_answer(found, spec, at), is_fresh=fresh)
    answer = {"timezone": spec.timezone, "before_after": at.isoformat() if at else None, "kpis": held.value}
    return json_response({**answer, "as_of": held.as_of()})


async def _kpi_answer(found: insight.Insight, spec: insight.KpiFile, at: datetime | None) -> list[Json]:
    answer: list[Json] = []
    for kpi in spec.kpis:
        try:
            result = await found.kpi(kpi, spec.offset())
        except errors.NotFound as exc:  # no case of its type yet: the other KPIs still answer
            answer.append(
                {
                    "id": kpi.id,
                    "name": kpi.name or kpi.id,
                    "kind": kpi.kind,
                    "rows": [],
                    "problem": exc.message,
                    "problem_code": exc.code,
                    "object_type": kpi.object_type,
                }
            )
            continue
        shown = _as_object(result.to_json())
        if at is not None:
            before = await found.kpi(kpi, spec.offset(), insight.CaseFilter("", end=at))
            after = await found.kpi(kpi, spec.offset(), insight.CaseFilter("", start=at))
            shown["before"] = _as_object(before.to_json())["rows"]
            shown["after"] = _as_object(after.to_json())["rows"]
        shown["period"] = kpi.period
        shown["sla"] = kpi.sla
        answer.append(shown)
    return answer


def _project_kpis(path: Path | None) -> insight.KpiFile:
    """The project's KPI file, read and checked; its errors name it as the project does (`kpis.yaml`)."""
    if path is None or not path.is_file():
        raise errors.NotFound(
            "this project declares no KPIs: expected a kpis.yaml in the project folder (docs/howto/insight.md#kpis)",
            code="insight.no_kpi_file",
        )
    try:
        return insight.load_kpis(path)
    except errors.InvalidInput as exc:  # not where the server keeps the project
        raise errors.InvalidInput(exc.message.replace(str(path), path.name), code=exc.code) from None


def _as_object(value: Json) -> dict[str, Json]:
    assert isinstance(value, dict)  # a KPI result is an object
    return value


@router.post("/api/v1/insight/kpis", tags=["insight"])
async def kpis(found: InsightDep, body: Annotated[dict[str, Any], Body()]) -> Response:
    """KPIs of a KPI file given as JSON (`{"timezone": "+08:00", "kpis": [...]}`), computed now."""
    try:
        spec = insight.KpiFile.model_validate(body)
    except ValueError as exc:
        raise errors.InvalidInput(f"the KPI file is not valid: {exc}", code="insight.kpi_invalid") from None
    results = [await found.kpi(k, spec.offset()) for k in spec.kpis]
    return json_response([r.to_json() for r in results])


@router.get("/api/v1/insight/export", tags=["insight"])
async def export(
    found: InsightDep,
    form: Annotated[Literal["ocel-json", "ocel-sqlite", "xes"], Query(alias="format")],
    object_type: str | None = None,
) -> Response:
    """The event log as OCEL 2.0 (JSON or SQLite) or XES flattened on an object type."""
    folder = Path(tempfile.mkdtemp(prefix="seamflow-export-"))
    path = folder / {"ocel-json": "log.jsonocel", "ocel-sqlite": "log.sqlite", "xes": "log.xes"}[form]
    try:
        await found.export(form, path, object_type)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    media = {"ocel-json": "application/json", "ocel-sqlite": "application/vnd.sqlite3", "xes": "application/xml"}
    # Streamed from the file (a whole log can be large); the folder goes once the answer is sent.
    return FileResponse(
        path, media_type=media[form], filename=path.name, background=BackgroundTask(shutil.rmtree, folder, True)
    )
