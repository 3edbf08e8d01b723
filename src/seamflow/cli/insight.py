"""`seamflow kpi` and `seamflow insight map|export`: KPIs, the process map and exports of the event log.

The commands read the project's store (no running server needed), or with `--log` a CSV or XES
event log exported from another system. The index is built in memory for the command, or kept
in a DuckDB file with `--index` so that the next command reads only the rows appended since (a
`--log` file is read into an empty index only: a kept index has its events already).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import click

from seamflow import errors
from seamflow.cli.options import database_option, duration, fail, project_option, run
from seamflow.cli.project import ProjectPaths
from seamflow.cli.table import json_option, print_json, print_table
from seamflow.ids import Json

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from seamflow import flows as flows_package
    from seamflow import insight as insight_package
    from seamflow import store

__all__ = ["insight_group", "kpi_command"]

T = TypeVar("T")


def _log_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(
        [
            click.option(
                "--log",
                "log_file",
                type=click.Path(dir_okay=False, exists=True, path_type=Path),
                help="a CSV or XES event log to read instead of the project's store",
            ),
            click.option("--case", "case_column", default="case_id", show_default=True, help="--log CSV: case column"),
            click.option(
                "--activity",
                "activity_column",
                default="activity",
                show_default=True,
                help="--log CSV: activity column",
            ),
            click.option(
                "--timestamp",
                "timestamp_column",
                default="timestamp",
                show_default=True,
                help="--log CSV: time column (ISO 8601; naive times are UTC)",
            ),
            click.option(
                "--archive",
                "archive_folder",
                type=click.Path(file_okay=False, exists=True, path_type=Path),
                help="start from an archive (`insight archive`), then read the log after it",
            ),
            click.option(
                "--index",
                "index_file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="keep the index in this DuckDB file between commands (default: in memory)",
            ),
            project_option,
            database_option,
        ]
    ):
        command = option(command)
    return command


async def _with_insight(
    options: dict[str, object], object_type: str, work: Callable[[insight_package.Insight], Awaitable[T]]
) -> T:
    from seamflow import insight
    from seamflow.cli.project import open_store

    log_file = options["log_file"]
    index_file = options["index_file"]
    archive = options["archive_folder"]
    assert index_file is None or isinstance(index_file, Path)
    if isinstance(log_file, Path):
        found = insight.Insight(_NoLog(), index_file)
        try:
            if isinstance(archive, Path):
                found.load_archive(archive)
            if not found.index.last_seq:  # a kept --index has the file's events already: not twice
                found.index.append(_read_log(log_file, object_type, options, first_seq=1))
            return await work(found)
        finally:
            found.close()
    project = options["project"]
    assert isinstance(project, Path)
    paths = ProjectPaths(project)
    paths.load_dotenv()
    db = open_store(paths, options["database"])  # type: ignore[arg-type]  # a click option: str | None
    await db.open()
    found = insight.Insight(db, index_file)
    try:
        if isinstance(archive, Path):
            found.load_archive(archive)
        return await work(found)
    finally:
        found.close()
        await db.close()


class _NoLog:
    """The event log of an imported file: everything is in the index already."""

    async def list_event_log(
        self, *, after_seq: int = 0, limit: int = 100, run_id: str | None = None
    ) -> list[store.LogEntry]:
        return []


def _read_log(path: Path, object_type: str, options: dict[str, object], first_seq: int) -> list[insight_package.Event]:
    from seamflow import insight

    if path.suffix.lower() == ".xes":
        return insight.read_xes_log(path, object_type=object_type, first_seq=first_seq)
    return insight.read_csv_log(
        path,
        case=str(options["case_column"]),
        activity=str(options["activity_column"]),
        timestamp=str(options["timestamp_column"]),
        object_type=object_type,
        first_seq=first_seq,
    )


@click.command("kpi")
@click.argument("kpi_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--object-type", default="order", show_default=True, help="--log: the object type of its cases")
@click.option(
    "--before-after",
    "go_live",
    type=click.DateTime(),
    metavar="DATE",
    help="each KPI twice: cases started before DATE (UTC) and from DATE on, e.g. a flow's go-live",
)
@json_option
@_log_options
def kpi_command(
    kpi_file: Path | None, object_type: str, go_live: datetime | None, as_json: bool, **options: object
) -> None:
    """KPIs declared in KPI_FILE (default: <project>/kpis.yaml), computed over the event log."""
    from datetime import UTC

    from seamflow import insight

    project = options["project"]
    assert isinstance(project, Path)
    try:
        spec = insight.load_kpis(kpi_file or project / "kpis.yaml")
    except errors.SeamflowError as exc:
        fail(exc)

    parts: list[tuple[str, insight.CaseFilter | None]] = [("", None)]
    if go_live is not None:
        at = go_live.replace(tzinfo=UTC)
        parts = [("before", insight.CaseFilter("", end=at)), ("after", insight.CaseFilter("", start=at))]

    async def work(found: insight.Insight) -> list[tuple[str, insight.KpiResult]]:
        return [(label, await found.kpi(k, spec.offset(), cases)) for k in spec.kpis for label, cases in parts]

    results = run(_with_insight(options, object_type, work))
    if as_json:
        print_json([{**_object(r.to_json()), **({"part": label} if label else {})} for label, r in results])
        return
    for label, r in results:
        click.echo(f"\n{r.kpi.id}: {r.kpi.name or r.kpi.kind}{f' ({label} {go_live:%Y-%m-%d})' if label else ''}")
        print_table(
            r.columns, [[_cell(c, v) for c, v in zip(r.columns, row, strict=True)] for row in r.rows], empty="no cases"
        )


def _object(value: Json) -> dict[str, Json]:
    assert isinstance(value, dict)  # a KPI result is an object
    return value


def _cell(column: str, value: object) -> object:
    if column.endswith("_ms") and isinstance(value, int | float):
        return _duration(float(value))
    if column.endswith("share") or column == "share_within_sla":
        return f"{float(value):.1%}" if isinstance(value, int | float) else value
    return value


def _duration(ms: float) -> str:
    hours = ms / 3_600_000
    return f"{hours / 24:.1f} d" if hours >= 48 else f"{hours:.1f} h" if hours >= 1 else f"{ms / 60000:.1f} min"


@click.group("insight")
def insight_group() -> None:
    """Process insight: the process map and exports of the event log."""


@insight_group.command("map")
@click.option("--object-type", required=True, help="the object type whose objects are the cases, e.g. order")
@click.option("--where", "where", multiple=True, metavar="ATTR=VALUE", help="only cases whose object has this value")
@click.option("--from", "start", type=click.DateTime(), help="only cases started at or after (UTC)")
@click.option("--until", "end", type=click.DateTime(), help="only cases started before (UTC)")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), help="write the map as HTML")
@click.option("--svg", "svg_file", type=click.Path(dir_okay=False, path_type=Path), help="write the map as SVG")
@json_option
@_log_options
def insight_map(
    object_type: str,
    where: tuple[str, ...],
    start: datetime | None,
    end: datetime | None,
    html_file: Path | None,
    svg_file: Path | None,
    as_json: bool,
    **options: object,
) -> None:
    """The process map: directly-follows edges with frequency and times, variants, bottlenecks."""
    from datetime import UTC

    from seamflow import insight

    attributes = {}
    for item in where:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected ATTR=VALUE, e.g. region=华东", param_hint="--where")
        attributes[name] = value
    case_filter = insight.CaseFilter(
        object_type, attributes, start and start.replace(tzinfo=UTC), end and end.replace(tzinfo=UTC)
    )

    async def work(found: insight.Insight) -> insight.ProcessMap:
        return await found.process_map(case_filter)

    result = run(_with_insight(options, object_type, work))
    if html_file:
        html_file.write_text(insight.map_html(result, f"Process map: {object_type}"), encoding="utf-8")
    if svg_file:
        svg_file.write_text(insight.map_svg(result), encoding="utf-8")
    if as_json:
        print_json(result.to_json())
        return
    click.echo(f"{result.cases} cases, {result.events} events, {result.variant_count} variants")
    print_table(
        ("from", "to", "cases", "median", "p90"),
        [[e.source, e.target, e.frequency, _duration(e.median_ms), _duration(e.p90_ms)] for e in result.edges],
        empty="no edges",
    )
    for written in (html_file, svg_file):
        if written:
            click.echo(f"wrote {written}")


@insight_group.command("conformance")
@click.option("--object-type", required=True, help="the object type whose objects are the cases, e.g. order")
@click.option("--designed", metavar="A,B,C", help="the designed path: activities in order, by commas")
@click.option(
    "--flow", "flow_id", metavar="FLOW_ID", help="the designed path: the activities the flow's emit steps name"
)
@json_option
@_log_options
def insight_conformance(
    object_type: str, designed: str | None, flow_id: str | None, as_json: bool, **options: object
) -> None:
    """Cases against the designed path: skipped, repeated, out-of-order and unexpected activities."""
    from seamflow import insight

    if (designed is None) == (flow_id is None):
        raise click.UsageError("give the designed path with either --designed A,B,C or --flow FLOW_ID")
    path = [a.strip() for a in (designed or "").split(",") if a.strip()]
    if flow_id is not None:
        path = insight.designed_path(_flow(options, flow_id))

    async def work(found: insight.Insight) -> insight.Conformance:
        return await found.conformance(insight.CaseFilter(object_type), path)

    report = run(_with_insight(options, object_type, work))
    if as_json:
        print_json(report.to_json())
        return
    click.echo(f"{report.conforming} of {report.cases} cases followed the designed path")
    print_table(
        ("deviation", "activity", "cases", "examples"),
        [[d.kind, d.activity, d.cases, " ".join(d.examples[:5])] for d in report.deviations],
        empty="no deviations",
    )


@insight_group.command("diagnose")
@click.option("--object-type", required=True, help="the object type whose objects are the cases, e.g. order")
@click.option("--top", type=click.IntRange(1, 50), default=5, show_default=True, help="findings of each kind")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), help="write the report as HTML")
@json_option
@_log_options
def insight_diagnose(object_type: str, top: int, html_file: Path | None, as_json: bool, **options: object) -> None:
    """A diagnosis: bottlenecks, hand-offs between people, systems and departments (the wait at each),
    rework and data typed into two systems, with their cases."""
    from seamflow import insight, store

    async def work(found: insight.Insight) -> insight.Diagnosis:
        people = found.log if isinstance(found.log, store.SqlStore) else None  # the directory: departments
        return await found.diagnosis(insight.CaseFilter(object_type), top, people=people)

    report = run(_with_insight(options, object_type, work))
    if html_file is not None:
        html_file.write_text(insight.diagnosis_html(report, f"Process diagnosis: {object_type}"), encoding="utf-8")
        click.echo(f"wrote {html_file}")
    if as_json:
        print_json(report.to_json())
        return
    click.echo(f"{report.cases} cases")
    print_table(
        ("finding", "where", "cases", "median", "examples"),
        [
            [f.kind, f.subject, f.cases, "-" if f.median_ms is None else _duration(f.median_ms), " ".join(f.examples)]
            for f in report.findings
        ],
        empty="no findings",
    )


def _flow(options: dict[str, object], flow_id: str) -> flows_package.spec.Flow:
    from seamflow.flows import validate

    project = options["project"]
    assert isinstance(project, Path)
    paths = ProjectPaths(project)
    try:
        loaded = validate.validate_project(paths.flows, paths.connections).flows
    except errors.SeamflowError as exc:
        fail(exc)
    if flow_id not in loaded:
        fail(errors.NotFound(f"no flow {flow_id!r}; the project has {', '.join(sorted(loaded)) or 'none'}"))
    return loaded[flow_id].spec


@insight_group.command("value")
@click.option("--from", "start", type=click.DateTime(), help="runs completed at or after (UTC)")
@click.option("--until", "end", type=click.DateTime(), help="runs completed before (UTC)")
@json_option
@_log_options
def insight_value(start: datetime | None, end: datetime | None, as_json: bool, **options: object) -> None:
    """The manual work the flows saved: completed runs times each flow's `manual_minutes`."""
    from datetime import UTC

    from seamflow import insight
    from seamflow.flows import validate

    project = options["project"]
    assert isinstance(project, Path)
    paths = ProjectPaths(project)
    try:
        flows = validate.validate_project(paths.flows, paths.connections).flows
    except errors.SeamflowError as exc:
        fail(exc)
    minutes = {fid: f.spec.manual_minutes for fid, f in flows.items() if f.spec.manual_minutes is not None}
    period = (start and start.replace(tzinfo=UTC), end and end.replace(tzinfo=UTC))

    async def work(found: insight.Insight) -> list[insight.WorkSaved]:
        return await found.work_saved(minutes, *period)

    saved = run(_with_insight(options, "flow", work))
    if as_json:
        print_json([s.to_json() for s in saved])
        return
    print_table(
        ("flow", "runs", "minutes per run", "hours saved"),
        [[s.flow, s.runs, f"{s.manual_minutes:g}", f"{s.minutes_saved / 60:.1f}"] for s in saved],
        empty="no flow declares manual_minutes",
    )


@insight_group.command("archive")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--prune-older-than",
    "keep",
    callback=duration,
    metavar="DURATION",
    help="then delete the archived rows older than this (e.g. 90d) from the store's event log",
)
@_log_options
def insight_archive(folder: Path, keep: timedelta | None, **options: object) -> None:
    """Write the indexed event log as Parquet files into FOLDER; `--archive FOLDER` reads it again."""
    from seamflow import clock, insight

    async def work(found: insight.Insight) -> tuple[int, int]:
        last = await found.archive(folder)
        if keep is None:
            return last, 0
        if options["log_file"] is not None:
            raise errors.InvalidInput(
                "--prune-older-than prunes the project's store; a --log file is not pruned",
                code="insight.archive_invalid",
            )
        pruning = cast("store.EventLogPruning", found.log)  # the project's store (SqlStore)
        return last, await found.prune_archived(pruning, last, clock.now() - keep)

    last, pruned = run(_with_insight(options, "case", work))
    click.echo(
        f"wrote {folder}: the event log up to seq {last}" + (f"; pruned {pruned} rows from the store" if keep else "")
    )


@insight_group.command("export")
@click.argument("form", type=click.Choice(["ocel-json", "ocel-sqlite", "xes"]))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--object-type", help="xes: the object type whose objects become traces")
@_log_options
def insight_export(form: str, out: Path, object_type: str | None, **options: object) -> None:
    """Write the event log as OCEL 2.0 (JSON or SQLite) or XES flattened on an object type."""
    from seamflow import insight

    async def work(found: insight.Insight) -> int:
        return await found.export(form, out, object_type)

    count = run(_with_insight(options, object_type or "case", work))
    click.echo(f"wrote {out}: {count} {'traces' if form == 'xes' else 'events'}")
