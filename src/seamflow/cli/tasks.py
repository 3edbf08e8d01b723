"""`seamflow tasks list|show|decide|resubmit|link|delegate|delegations`: the approval inbox from the command line.

Each command opens the project's store directly (no running server needed), like `seamflow
users`. A decision is the same journal transaction as `POST /api/v1/tasks/{id}/decision`: if it
settles the approval, the run is queued again and a running `seamflow serve` resumes it (at
its next claim round, or at once on PostgreSQL, which notifies it). `--as` names who decides:
the command is an operator's tool on the server, so the login is given, not signed in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
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


@tasks_group.command("resubmit")
@click.argument("task_id")
@click.option("--as", "login", metavar="LOGIN", required=True, help="the requester")
@click.option("--changes", "changes_text", metavar="JSON", help="what changed, e.g. '{\"amount\": 4800}'")
@click.option("--comment", help="a note for the approvers")
@project_option
@database_option
def tasks_resubmit(
    task_id: str, login: str, changes_text: str | None, comment: str | None, project: Path, database: str | None
) -> None:
    """Resubmit a returned request (its amend task TASK_ID); the level that returned it decides again."""
    from seamflow import engine

    changes = _form(changes_text, "--changes")

    async def work(db: store.Store) -> None:
        await engine.Journal(db).resubmit(task_id, login, changes, comment)

    run(_with_store(project, database, work))
    click.echo(f"{task_id}: resubmitted by {login}; the approvers are asked again")


@tasks_group.command("link")
@click.argument("task_id")
@click.option("--base-url", default="http://127.0.0.1:8080", show_default=True, help="the server's public address")
@project_option
@database_option
def tasks_link(task_id: str, base_url: str, project: Path, database: str | None) -> None:
    """Print a signed, single-use decision link for a pending task (for its assignee only)."""
    from seamflow import engine

    async def work(db: store.Store) -> store.StoredTask | None:
        return await db.get_task(task_id)

    task = run(_with_store(project, database, work))
    if task is None:
        raise errors.NotFound(f"task {task_id} does not exist", code="approval.task_not_found")
    if task.status != "pending":
        raise errors.Conflict(
            f"task {task_id} is {task.status}; a link is only for a pending task", code="approval.already_decided"
        )
    paths = ProjectPaths(project)
    links = engine.DecisionLinks(lambda: engine.secrets.read_key(paths.root))
    click.echo(links.url(links.grant_for(task), base_url))


@tasks_group.command("delegate")
@click.option("--as", "login", metavar="LOGIN", required=True, help="the user who is away")
@click.option("--to", "delegate", metavar="LOGIN", help="who gets their tasks meanwhile")
@click.option("--from", "starts", metavar="TIME", help="ISO 8601, e.g. 2026-12-10T00:00:00+08:00 (default: now)")
@click.option("--until", "ends", metavar="TIME", help="ISO 8601; a time without an offset is this machine's local time")
@click.option("--hand-over", is_flag=True, help="also give LOGIN's pending tasks to the delegate now")
@click.option("--end", "is_ending", is_flag=True, help="end LOGIN's delegation instead")
@project_option
@database_option
def tasks_delegate(
    login: str,
    delegate: str | None,
    starts: str | None,
    ends: str | None,
    hand_over: bool,
    is_ending: bool,
    project: Path,
    database: str | None,
) -> None:
    """While LOGIN is away, send their new tasks to another user (event log: task.delegated)."""
    from seamflow import clock, engine, store

    if is_ending:

        async def end(db: store.Store) -> bool:
            return await engine.Journal(db).end_delegation(login)

        if not run(_with_store(project, database, end)):
            raise errors.NotFound(f"{login} has no delegation", code="approval.delegation_not_found")
        click.echo(f"{login}: delegation ended; new tasks go to {login} again")
        return
    if delegate is None or ends is None:
        raise errors.InvalidInput("--to and --until are needed to delegate (or --end to stop)")
    delegation = store.Delegation(
        login, delegate, clock.now() if starts is None else _time(starts, "--from"), _time(ends, "--until"), login
    )

    async def work(db: store.Store) -> list[str]:
        for who in (login, delegate):
            if not any(u.login == who and u.is_active for u in await db.list_users(who)):
                raise errors.InvalidInput(
                    f"no active user {errors.redact(who, 70)} in the directory; expected a user's login",
                    code="approval.delegation_invalid",
                )
        return await engine.Journal(db).delegate(delegation, hand_over=hand_over)

    handed = run(_with_store(project, database, work))
    until = delegation.ends.isoformat()
    click.echo(
        f"{login}: tasks go to {delegate} until {until}" + (f"; {len(handed)} pending handed over" if handed else "")
    )


@tasks_group.command("delegations")
@json_option
@project_option
@database_option
def tasks_delegations(as_json: bool, project: Path, database: str | None) -> None:
    """Who is away, to whom their tasks go, and when."""
    from seamflow import clock

    async def work(db: store.Store) -> list[store.Delegation]:
        return await db.list_delegations()

    now = clock.now()
    found: list[Json] = [
        {
            "login": d.login,
            "delegate": d.delegate,
            "from": d.starts.isoformat(),
            "until": d.ends.isoformat(),
            "set_by": d.set_by,
            "is_active": d.is_active(now),
        }
        for d in run(_with_store(project, database, work))
    ]
    if as_json:
        print_json(found)
        return
    columns = ("login", "delegate", "from", "until", "is_active")
    rows = [[d[c] for c in columns] for d in found if isinstance(d, dict)]
    print_table(columns, rows, empty="no delegations")


def _time(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise errors.InvalidInput(
            f"{option}: got {errors.redact(text)}; expected an ISO 8601 time such as 2026-12-10T00:00:00+08:00"
        ) from None
    return value if value.tzinfo is not None else value.astimezone()


def _form(text: str | None, option: str = "--form") -> Json:
    if text is None:
        return None
    try:
        value = codec.loads(text)
    except (ValueError, TypeError) as exc:
        expected = """expected a JSON object such as '{"budget_code": "IT-07"}'"""
        raise errors.InvalidInput(f"{option}: {exc}; {expected}") from None
    if not isinstance(value, dict):
        raise errors.InvalidInput(f"{option}: got {errors.redact(value)}; expected a JSON object")
    return value
