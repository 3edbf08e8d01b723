"""Live shadows from the command line: started, listed and stopped as rows of the project's store.

The running `seamflow serve` (its process that fires timers) picks a started live shadow up on its
next look at the store and mirrors each new live event to the candidate; stopping it is seen the
same way. Like every module of the CLI, this one imports only click and the leaves at start.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from seamflow import errors
from seamflow.cli.options import database_option, open_project, project_option, run
from seamflow.cli.table import print_json, print_table

if TYPE_CHECKING:
    from seamflow import store
    from seamflow.cli.project import ProjectPaths

__all__ = ["flow_shadow_stop", "list_live", "start_live"]


def start_live(
    paths: ProjectPaths, database: str | None, flow_id: str, candidate: Path, *, max_events: int, minutes: int
) -> store.LiveShadow:
    """Start a live shadow of the candidate file (checked as `flow validate` would); the shadow."""
    from seamflow.cli.versions import with_store

    text = candidate.read_text(encoding="utf-8")

    async def work(db: store.Store) -> store.LiveShadow:
        from seamflow import engine, lifecycle
        from seamflow.cli.audit import cli_actor, record_cli_action
        from seamflow.flows import expressions

        context = {"secrets": expressions.Secrets(engine.load_secrets(root=paths.root)), "env": engine.load_env()}
        flow = lifecycle.Workbench(paths.connections, context=context).check(text, str(candidate))
        if flow.id != flow_id:
            raise errors.InvalidInput(
                f"the candidate's id is {flow.id!r}; expected {flow_id!r}", code="shadow.other_flow"
            )
        shadow = await lifecycle.start_live_shadow(
            db, flow, by=cli_actor().id, max_events=max_events, duration=timedelta(minutes=minutes)
        )
        detail = {"shadow_id": shadow.shadow_id, "candidate_version": flow.version, "live": "started"}
        await record_cli_action(db, "flow.shadowed", f"flow:{flow_id}", detail)
        return shadow

    return run(with_store(paths, database, work))


def list_live(paths: ProjectPaths, database: str | None, flow_id: str, as_json: bool) -> None:
    """Print the flow's live shadows with how many events each rehearsed."""
    from seamflow.cli.versions import with_store

    async def work(db: store.Store) -> list[tuple[store.LiveShadow, int]]:
        shadows = await db.list_live_shadows(flow_id)
        return [(s, len(await db.list_shadow_results(flow_id, s.shadow_id))) for s in shadows]

    found = run(with_store(paths, database, work))
    if as_json:
        from seamflow import lifecycle

        print_json([lifecycle.live_shadow_json(s, n) for s, n in found])
        return
    rows = [
        (
            s.shadow_id,
            s.candidate_version,
            f"{n}/{s.max_events}",
            s.until.isoformat(timespec="seconds"),
            s.stopped_at.isoformat(timespec="seconds") if s.stopped_at else None,
            s.started_by,
        )
        for s, n in found
    ]
    print_table(["shadow", "candidate", "events", "until", "stopped", "by"], rows, empty="no live shadows")


@click.command("shadow-stop")
@click.argument("flow_id")
@click.argument("shadow_id")
@database_option
@project_option
def flow_shadow_stop(flow_id: str, shadow_id: str, database: str | None, project: Path) -> None:
    """Stop a live shadow of a flow now (its results stay: `seamflow flow shadows FLOW_ID --shadow ID`)."""
    from seamflow.cli.versions import with_store

    paths = open_project(project)

    async def work(db: store.Store) -> None:
        from seamflow import clock
        from seamflow.cli.audit import cli_actor, record_cli_action

        ours = {s.shadow_id for s in await db.list_live_shadows(flow_id)}
        if shadow_id not in ours or not await db.stop_live_shadow(shadow_id, clock.now(), cli_actor().id):
            raise errors.NotFound(
                f"flow {flow_id!r} has no live shadow {shadow_id!r} running;"
                f" expected one of `seamflow flow shadows {flow_id} --live`",
                code="shadow.not_found",
            )
        await record_cli_action(db, "flow.shadowed", f"flow:{flow_id}", {"shadow_id": shadow_id, "live": "stopped"})

    run(with_store(paths, database, work))
    click.echo(f"live shadow {shadow_id} of {flow_id} stopped")
