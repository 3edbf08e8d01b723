"""`seamflow tasks list|show|decide`: the approval inbox from the command line.

Each command opens the project's store directly (no running server needed), like `seamflow
users`. A decision is the same journal transaction as `POST /api/v1/tasks/{id}/decision`: if it
settles the approval, the run is queued again and a running `seamflow serve` resumes it (at
its next claim round, or at once on PostgreSQL, which notifies it). `--as` names who decides:
the command is an operator's tool on the server, so the login is given, not signed in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from seamflow import codec, errors
from seamflow.cli.options import database_option, project_option, run
from seamflow.cli.project import ProjectPaths
from seamflow.cli.table import json_option, print_json, print_table
from seamflow.ids import Json

if TYPE_CHECKING:
    from seamflow import store

__all__ = ["tasks_group"]

T = TypeVar("T")
_COLUMNS = ("id", "subject", "requester", "level", "assignee", "status", "decision", "due")


async def _with_store(project: Path, database: str | None, work: Callable[[store.Store], Awaitable[T]]) -> T:
    from seamflow.cli.project import open_store

    paths = ProjectPaths(project)
    paths.load_dotenv()
    db = open_store(paths, database)
    await db.open()
    try:
        return await work(db)
    finally:
        await db.close()


@click.group("tasks")
def tasks_group() -> None:
    """The approval inbox: list, show and decide tasks."""


@tasks_group.command("list")
@click.option("--as", "login", metavar="LOGIN", help="only LOGIN's tasks (default: everyone's)")
@click.option(
    "--status",
    type=click.Choice(["pending", "decided", "closed", "all"]),
    default="pending",
    show_default=True,
    help="which tasks",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="at most this many")
@json_option
@project_option
@database_option
def tasks_list(login: str | None, status: str, limit: int, as_json: bool, project: Path, database: str | None) -> None:
    """Tasks, newest first: what is asked of whom, and its state."""
    from seamflow import engine, store

    query = store.TaskFilter(assignee=login, status=None if status == "all" else status, limit=limit)

    async def work(db: store.Store) -> list[store.StoredTask]:
        return await db.list_tasks(query)

    tasks = [engine.task_json(t) for t in run(_with_store(project, database, work))]
    if as_json:
        print_json(list[Json](tasks))
        return
    rows = [[t[c] for c in _COLUMNS] for t in tasks]
    print_table(_COLUMNS, rows, empty=f"no {'' if status == 'all' else status + ' '}tasks")


@tasks_group.command("show")
@click.argument("task_id")
@json_option
@project_option
@database_option
def tasks_show(task_id: str, as_json: bool, project: Path, database: str | None) -> None:
    """One task with the request's data."""
    from seamflow import engine

    async def work(db: store.Store) -> store.StoredTask | None:
        return await db.get_task(task_id)

    found = run(_with_store(project, database, work))
    if found is None:
        raise errors.NotFound(f"task {task_id} does not exist", code="approval.task_not_found")
    task = engine.task_json(found)
    if as_json:
        print_json(task)
        return
    for key in ("id", "subject", "requester", "flow_id", "run_id", "level", "assignee", "status", "decision"):
        click.echo(f"{key + ':':11} {'-' if task[key] is None else task[key]}")
    for key in ("comment", "created", "due", "decided"):
        if task[key] is not None:
            click.echo(f"{key + ':':11} {task[key]}")
    click.echo(f"{'data:':11} {codec.dumps_text(task['data'])}")


@tasks_group.command("decide")
@click.argument("task_id")
@click.argument("decision", type=click.Choice(["approve", "reject", "return"]))
@click.option("--as", "login", metavar="LOGIN", required=True, help="the assignee who decides")
@click.option("--comment", help="a comment for the requester and later steps")
@click.option("--form", "form_text", metavar="JSON", help='form data, e.g. \'{"budget_code": "IT-07"}\'')
@json_option
@project_option
@database_option
def tasks_decide(
    task_id: str,
    decision: str,
    login: str,
    comment: str | None,
    form_text: str | None,
    as_json: bool,
    project: Path,
    database: str | None,
) -> None:
    """Approve, reject or return TASK_ID as LOGIN; the run resumes when the approval is settled."""
    from seamflow import engine

    form = _form(form_text)

    async def work(db: store.Store) -> tuple[bool, store.StoredTask | None]:
        from seamflow.cli.audit import record_cli_action

        woken = await engine.Journal(db).decide_task(task_id, login, decision, comment, form)
        detail = {"decision": decision, "as": login, "settled": bool(woken)}  # decided from the server's shell
        await record_cli_action(db, "approval.decided", f"task:{task_id}", detail)
        return bool(woken), await db.get_task(task_id)

    is_settled, task = run(_with_store(project, database, work))
    assert task is not None  # decided just now
    if as_json:
        print_json({**engine.task_json(task), "approval_settled": is_settled})
        return
    outcome = "the approval is settled; its run resumes" if is_settled else "the approval goes on"
    click.echo(f"{task.id}: {decision} by {login}; {outcome}")


def _form(text: str | None) -> Json:
    if text is None:
        return None
    try:
        value = codec.loads(text)
    except (ValueError, TypeError) as exc:
        expected = """expected a JSON object such as '{"budget_code": "IT-07"}'"""
        raise errors.InvalidInput(f"--form: {exc}; {expected}") from None
    if not isinstance(value, dict):
        raise errors.InvalidInput(f"--form: got {errors.redact(value)}; expected a JSON object")
    return value
