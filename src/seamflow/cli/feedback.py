"""`seamflow feedback list|close`: users' suggestions and problem reports on flows, steps and runs.

Each command opens the project's store directly (no running server needed); closing is logged in
the event log like a close in the console (`feedback.closed`), by `@cli:<os user>`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from seamflow.cli.options import database_option, open_project, project_option, run
from seamflow.cli.table import json_option, print_json, print_table

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from seamflow import store

__all__ = ["feedback_group"]

T = TypeVar("T")


@click.group("feedback")
def feedback_group() -> None:
    """Suggestions and problem reports users left on flows, steps and runs; close them with a note."""


async def _with_store(project: Path, database: str | None, work: Callable[[store.Store], Awaitable[T]]) -> T:
    from seamflow.cli.project import open_store

    db = open_store(open_project(project), database)
    await db.open()
    try:
        return await work(db)
    finally:
        await db.close()


@feedback_group.command("list")
@click.option(
    "--status", type=click.Choice(["open", "closed", "all"]), default="open", show_default=True, help="which feedback"
)
@click.option("--flow", "flow_id", help="only the feedback on this flow")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True, help="at most this many")
@json_option
@project_option
@database_option
def list_feedback(
    status: str, flow_id: str | None, limit: int, as_json: bool, project: Path, database: str | None
) -> None:
    """Feedback, newest first: open by default."""
    from seamflow import api, store

    query = store.FeedbackFilter(is_open=None if status == "all" else status == "open", flow_id=flow_id, limit=limit)
    found = run(_with_store(project, database, lambda db: db.list_feedback(query)))
    if as_json:
        print_json([api.feedback_json(f) for f in found])
        return
    rows = [
        (f.id, f.kind, f.flow_id, f.step or f.run_id, f.author, _day(f.created_at), f.body, f.close_note) for f in found
    ]
    columns = ["id", "kind", "flow", "about", "author", "created", "text", "note"]
    print_table(columns, rows, empty=f"no {'' if status == 'all' else status + ' '}feedback")


@feedback_group.command("close")
@click.argument("feedback_id")
@click.option("--note", required=True, help="what was done about it (kept with the feedback and in the event log)")
@project_option
@database_option
def close_feedback(feedback_id: str, note: str, project: Path, database: str | None) -> None:
    """Close open feedback FEEDBACK_ID with a note."""
    from seamflow import clock
    from seamflow.cli.audit import cli_actor

    if not note.strip():
        raise click.BadParameter("expected what was done about the feedback, not an empty note", param_hint="--note")
    who = cli_actor().id
    closed = run(_with_store(project, database, lambda db: db.close_feedback(feedback_id, who, note, clock.now())))
    click.echo(f"closed {closed.id} ({closed.kind} on {closed.flow_id} by {closed.author})")


def _day(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")
