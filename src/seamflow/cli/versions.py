"""`seamflow flow versions | diff | rollback | shadow | shadows`: a flow's deployed versions, what changed
between two, going back to an earlier one in one command, and shadow runs of a candidate.

Rollback writes the earlier version's kept source back to the flow's file: the file stays the one
truth (in git), and a running `serve` reloads it as for any edit. Each rollback and shadow is
recorded in the audit trail. Like every module of the CLI, this one imports only click and the
leaves at start.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from seamflow import errors
from seamflow.cli.options import database_option, open_project, project_option, run
from seamflow.cli.table import json_option, print_json, print_table

if TYPE_CHECKING:
    from seamflow import store
    from seamflow.cli.project import ProjectPaths

__all__ = ["flow_diff", "flow_rollback", "flow_shadow", "flow_shadows", "flow_versions", "with_store"]

T = TypeVar("T")


async def with_store(paths: ProjectPaths, database: str | None, work: Callable[[store.Store], Awaitable[T]]) -> T:
    from seamflow.cli.project import open_store

    db = open_store(paths, database)
    await db.open()
    try:
        return await work(db)
    finally:
        await db.close()


@click.command("versions")
@click.argument("flow_id")
@json_option
@database_option
@project_option
def flow_versions(flow_id: str, as_json: bool, database: str | None, project: Path) -> None:
    """List a flow's deployed versions, newest (live) first: version, when, by whom, how."""
    paths = open_project(project)

    async def work(db: store.Store) -> list[store.Deployment]:
        return await db.list_deployments(flow_id)

    rows = run(with_store(paths, database, work))
    if as_json:
        print_json([{"version": d.version, "at": d.at.isoformat(), "by": d.by, "how": d.how} for d in rows])
        return
    table = [
        [d.version, d.at.isoformat(timespec="seconds"), d.by, d.how, "live" if i == 0 else ""]
        for i, d in enumerate(rows)
    ]
    print_table(["version", "deployed", "by", "how", ""], table, empty=f"flow {flow_id!r} was never deployed here")


@click.command("diff")
@click.argument("flow_id")
@click.argument("a")
@click.argument("b")
@database_option
@project_option
def flow_diff(flow_id: str, a: str, b: str, database: str | None, project: Path) -> None:
    """Show what changed between two versions of a flow (each a version from `flow versions`, or a file)."""
    paths = open_project(project)

    files = {x: Path(x).read_text(encoding="utf-8") for x in (a, b) if Path(x).is_file()}

    async def work(db: store.Store) -> tuple[str, str]:
        return await _text_of(db, flow_id, a, files), await _text_of(db, flow_id, b, files)

    before, after = run(with_store(paths, database, work))
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"{flow_id}@{a}", f"{flow_id}@{b}"
    )
    click.echo("".join(lines) or f"{a} and {b} are the same", nl=False)


async def _text_of(db: store.Store, flow_id: str, which: str, files: dict[str, str]) -> str:
    from seamflow import ids

    if which in files:
        return files[which]
    source = await db.load_flow_source(ids.FlowId(flow_id), which)
    if source is None:
        raise errors.NotFound(
            f"flow {flow_id!r} has no version {which!r} in the store, and no file is called so;"
            " expected a version from `seamflow flow versions` or a file",
            code="flow.version_not_found",
        )
    return source


@click.command("rollback")
@click.argument("flow_id")
@click.option("--to", "version", help="the version to go back to (default: the one deployed before the live one)")
@database_option
@project_option
def flow_rollback(flow_id: str, version: str | None, database: str | None, project: Path) -> None:
    """Go back to an earlier version of a flow: its kept source is written back to the flow's file.

    A running `seamflow serve` reloads the file as for any edit; new runs use that version.
    """
    paths = open_project(project)
    file = _flow_file(paths, flow_id)
    done = run(with_store(paths, database, lambda db: _roll_back(db, flow_id, version, file)))
    click.echo(f"flow {flow_id} rolled back from {done[0]} to {done[1]}: {file} rewritten")
    click.echo("a running `seamflow serve` reloads it; otherwise run `seamflow flow reload`")


async def _roll_back(db: store.Store, flow_id: str, version: str | None, file: Path) -> tuple[str, str]:
    from seamflow import clock, ids, store
    from seamflow.cli.audit import cli_actor, record_cli_action

    deployed = await db.list_deployments(flow_id, limit=1000)
    if not deployed:
        raise errors.NotFound(
            f"flow {flow_id!r} was never deployed here; nothing to roll back", code="flow.no_versions"
        )
    live = deployed[0].version
    target = version or next((d.version for d in deployed if d.version != live), None)
    if target is None:
        raise errors.Conflict(
            f"flow {flow_id!r} has had one version ({live}); expected an earlier one to roll back to",
            code="flow.no_earlier_version",
        )
    source = await db.load_flow_source(ids.FlowId(flow_id), target)
    if source is None:
        known = ", ".join(dict.fromkeys(d.version for d in deployed))
        raise errors.NotFound(
            f"flow {flow_id!r} has no version {target!r} in the store; deployed: {known}", code="flow.version_not_found"
        )
    await asyncio.to_thread(_write_atomically, file, source)
    await db.record_deployments([store.Deployment(flow_id, target, clock.now(), cli_actor().id, "rollback")])
    await record_cli_action(db, "flow.rolled_back", f"flow:{flow_id}", {"from": live, "to": target})
    return live, target


def _flow_file(paths: ProjectPaths, flow_id: str) -> Path:
    """The file of `flow_id` in flows/ (a file with a problem counts: its `id:` is read as text)."""
    from seamflow.flows import validate

    project, _ = validate.check_project(paths.flows, paths.connections)
    if flow_id in project.flows:
        return project.flows[flow_id].path
    for candidate in sorted(paths.flows.rglob("*.y*ml")):
        if any(
            line.strip() in (f"id: {flow_id}", f'id: "{flow_id}"') for line in candidate.read_text("utf-8").splitlines()
        ):
            return candidate
    raise errors.NotFound(f"no file in {paths.flows} holds flow {flow_id!r}", code="flow.not_found")


def _write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)


@click.command("shadow")
@click.argument("flow_id")
@click.argument("candidate", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--runs", default=20, show_default=True, type=click.IntRange(1, 500), help="latest finished runs to replay"
)
@click.option("--live", is_flag=True, help="mirror each new live event instead (the running serve rehearses it)")
@click.option("--max-events", default=100, show_default=True, type=click.IntRange(1, 10_000), help="--live: cap")
@click.option("--minutes", default=60, show_default=True, type=click.IntRange(1, 10_080), help="--live: time limit")
@json_option
@database_option
@project_option
def flow_shadow(
    flow_id: str,
    candidate: Path,
    runs: int,
    live: bool,
    max_events: int,
    minutes: int,
    as_json: bool,
    database: str | None,
    project: Path,
) -> None:
    """Rehearse a candidate file of a flow on its latest live runs' events; report how its calls differ.

    With --live, mirror each new event the live version accepts to the candidate instead, until
    --max-events events or --minutes passed (or `seamflow flow shadow-stop`). Nothing reaches a
    target; the results are kept (`seamflow flow shadows FLOW_ID`).
    """
    paths = open_project(project)
    if live:
        from seamflow.cli.live_shadows import start_live

        shadow = start_live(paths, database, flow_id, candidate, max_events=max_events, minutes=minutes)
        click.echo(
            f"live shadow {shadow.shadow_id} of {flow_id} started: up to {max_events} events until"
            f" {shadow.until.isoformat(timespec='seconds')}; a running `seamflow serve` mirrors the new events"
        )
        return
    text = candidate.read_text(encoding="utf-8")

    async def work(db: store.Store) -> list[store.ShadowResult]:
        from seamflow import engine, lifecycle
        from seamflow.cli.audit import record_cli_action
        from seamflow.flows import expressions

        context = {"secrets": expressions.Secrets(engine.load_secrets(root=paths.root)), "env": engine.load_env()}
        bench = lifecycle.Workbench(paths.connections, context=context)
        flow = bench.check(text, str(candidate))
        if flow.id != flow_id:
            raise errors.InvalidInput(
                f"the candidate's id is {flow.id!r}; expected {flow_id!r}", code="shadow.other_flow"
            )
        results = await bench.shadow(db, text, runs=runs)
        detail = {"shadow_id": results[0].shadow_id, "candidate_version": flow.version, "events": len(results)}
        await record_cli_action(db, "flow.shadowed", f"flow:{flow_id}", detail)
        return results

    _show_shadow(run(with_store(paths, database, work)), as_json)


@click.command("shadows")
@click.argument("flow_id")
@click.option("--shadow", "shadow_id", help="one shadow's results (default: every kept shadow of the flow)")
@click.option("--live", is_flag=True, help="list the flow's live shadows (their bounds and events) instead")
@json_option
@database_option
@project_option
def flow_shadows(
    flow_id: str, shadow_id: str | None, live: bool, as_json: bool, database: str | None, project: Path
) -> None:
    """List the kept results of a flow's shadow runs, newest shadow first."""
    paths = open_project(project)
    if live:
        from seamflow.cli.live_shadows import list_live

        list_live(paths, database, flow_id, as_json)
        return

    async def work(db: store.Store) -> list[store.ShadowResult]:
        return await db.list_shadow_results(flow_id, shadow_id)

    _show_shadow(run(with_store(paths, database, work)), as_json)


def _show_shadow(results: list[store.ShadowResult], as_json: bool) -> None:
    if as_json:
        print_json([{"shadow_id": r.shadow_id, "run_id": r.run_id, "report": r.report} for r in results])
        return
    for r in results:
        report: Any = r.report
        outcome = report["outcome"]
        verdict = "same" if report["is_same"] else "differs"
        click.echo(f"{r.shadow_id}  {r.run_id}  {verdict}  outcome {outcome['live']} -> {outcome['candidate']}")
        for call in report["calls"]:
            if call["change"] == "same":
                continue
            click.echo(f"  {call['step']} ({call['call']}): {call['change']}")
            for field in call.get("fields", []):
                click.echo(f"    {field['field']}: {field['live']!r} -> {field['candidate']!r}")
    if not results:
        click.echo("no shadow results")
