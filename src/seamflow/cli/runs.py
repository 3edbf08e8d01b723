"""`seamflow run`, `runs list|show|dead-letters|replay` and `signal`: runs from the command line.

`dead-letters` and `replay` were top-level commands; they live under `runs` now and the old
names are hidden aliases for one more release (`legacy_aliases`). Each command imports the
engine and the store inside its body, so that `seamflow --help` does not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from seamflow import codec, errors
from seamflow.cli.options import database_option, open_project, project_option, run
from seamflow.cli.project import ProjectPaths, require_project
from seamflow.cli.table import json_option
from seamflow.ids import Json, RunId

if TYPE_CHECKING:
    from seamflow import engine, store

__all__ = ["RUN_STATUSES", "legacy_aliases", "run_flow", "runs", "signal"]

T = TypeVar("T")
_PROGRESS_FROM = 20
"""`runs replay --all` shows a progress bar instead of a line per run from this many runs on."""
RUN_STATUSES = ("queued", "running", "waiting", "completed", "failed", "dead_letter")
"""The values of `store.RunStatus`, spelled out so that building the CLI imports no store
(tests/unit/test_cli_imports.py checks that they agree)."""


async def _with_engine(paths: ProjectPaths, database: str | None, work: Callable[[engine.Engine], Awaitable[T]]) -> T:
    """Run `work` with an engine embedded in this CLI process (it does not resume other runs).

    Only errors are logged: the command prints each run's outcome itself (a dead letter's
    warning would repeat it, in Python's bare last-resort format).
    """
    from seamflow import engine
    from seamflow.cli.logs import configure_logging
    from seamflow.cli.project import build_engine, open_store

    configure_logging("error")
    db = open_store(paths, database)
    eng, _ = build_engine(
        paths, db, engine.EngineOptions(workers=8, claim=False, timers=False, records_deployments=False)
    )
    await db.open()
    await eng.start()
    try:
        return await work(eng)
    finally:
        await eng.stop()
        await db.close()


async def _settle(eng: engine.Engine, run_id: RunId, timeout_s: float) -> store.RunSummary:
    """Wait until the run finished or parked (or the timeout passed); return its summary."""
    import asyncio

    from seamflow import store

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        summary, _ = await eng.db.get_run(run_id)
        if summary.status not in (store.RunStatus.QUEUED, store.RunStatus.RUNNING) and not eng.is_active(run_id):
            return summary
        if loop.time() > deadline:
            return summary
        await asyncio.sleep(0.02)


def _json_option(text: str, option: str) -> Json:
    """Parse a JSON option as strictly as a webhook body; a bad one is a usage error naming the option."""
    try:
        return codec.parse_untrusted(text.encode())
    except errors.PayloadInvalid as exc:
        raise click.BadParameter(exc.message, param_hint=option) from None


async def _read(paths: ProjectPaths, database: str | None, fn: Callable[[store.Store], Awaitable[T]]) -> T:
    from seamflow import store
    from seamflow.cli.connections import remember_secrets
    from seamflow.cli.project import open_store

    if database is None:
        require_project(paths)
    remember_secrets(paths)
    db = open_store(paths, database)
    if isinstance(db, store.SqliteStore) and not db.path.exists():
        raise errors.NotFound(
            f"no database at {db.path}: nothing has run in this project yet; start `seamflow serve`"
            " or `seamflow run FLOW`, or pass --database",
            code="cli.no_database",
        )
    await db.open()
    try:
        return await fn(db)
    finally:
        await db.close()


@click.command("run")
@click.argument("flow_id")
@click.option("--input", "input_json", default="null", help="JSON that becomes event.body")
@click.option(
    "--as-webhook",
    is_flag=True,
    help="start a webhook flow as if its webhook had received --input (no headers, no signature check)",
)
@click.option("--timeout", default=60.0, show_default=True, help="seconds to wait for the run to finish or park")
@project_option
@database_option
def run_flow(
    flow_id: str, input_json: str, as_webhook: bool, timeout: float, project: Path, database: str | None
) -> None:
    """Start FLOW_ID with --input, wait for the run and print it (`seamflow runs` lists runs).

    Only a flow with a manual trigger starts this way (as `POST /api/v1/flows/{id}/runs`);
    --as-webhook starts a webhook flow. Exits 1 if the run failed or became a dead letter.
    """
    from seamflow.cli.render import print_run

    body = _json_option(input_json, "--input")
    paths = open_project(project)

    async def work(eng: engine.Engine) -> store.RunStatus | None:
        target = eng.catalog.flow(flow_id)
        accepted = await eng.accept(target, _event_for(target.spec.trigger, flow_id, body, as_webhook=as_webhook))
        if accepted is None:
            click.echo("ignored: the flow's when condition is false for this input; no run was started")
            return None
        await _settle(eng, accepted.run_id, timeout)
        summary, state = await eng.db.get_run(accepted.run_id)
        print_run(summary, state)
        return summary.status

    status = run(_with_engine(paths, database, work))
    if status is not None and status.value in ("failed", "dead_letter"):
        click.echo(f"error: the run ended as {status.value}; see its error above", err=True)
        raise SystemExit(1)


def _event_for(trigger: Any, flow_id: str, body: Json, *, as_webhook: bool) -> engine.Event:
    """The event `seamflow run` starts; a flow that is not manual is refused as the REST API refuses it."""
    from seamflow import engine

    if as_webhook:
        if trigger.webhook is None:
            raise errors.InvalidInput(
                f"flow {flow_id!r} has a {trigger.kind} trigger;"
                " --as-webhook starts only a flow with a webhook trigger",
                code="cli.not_webhook",
            )
        return engine.Event("webhook", body, headers={}, query={})
    if trigger.manual is None:
        hint = "; or pass --as-webhook to start it as its webhook would" if trigger.webhook is not None else ""
        raise errors.Conflict(f"flow {flow_id!r} has a {trigger.kind} trigger; expected a manual trigger{hint}")
    return engine.Event("manual", body)


@click.group()
def runs() -> None:
    """List, inspect and replay runs; list dead letters (`seamflow run FLOW` starts a run)."""


@runs.command("list")
@click.option("--flow", "flow_id", help="only runs of this flow (its id)")
@click.option("--status", multiple=True, type=click.Choice(RUN_STATUSES), help="only runs in this status (repeatable)")
@click.option("--limit", default=50, show_default=True, help="at most this many runs, newest first")
@json_option
@project_option
@database_option
def runs_list(
    flow_id: str | None, status: tuple[str, ...], limit: int, as_json: bool, project: Path, database: str | None
) -> None:
    """List runs, newest first."""
    from seamflow import store
    from seamflow.cli.render import print_runs

    query = store.RunFilter(flow_id=flow_id, statuses=tuple(store.RunStatus(s) for s in status), limit=limit)
    print_runs(run(_read(ProjectPaths(project), database, lambda db: db.list_runs(query))), as_json=as_json)


@runs.command("show")
@click.argument("run_id")
@json_option
@project_option
@database_option
def runs_show(run_id: str, as_json: bool, project: Path, database: str | None) -> None:
    """Show a run: every step attempt with input, output, error and timing."""
    from seamflow.cli.render import print_run

    summary, state = run(_read(ProjectPaths(project), database, lambda db: db.get_run(RunId(run_id))))
    print_run(summary, state, as_json=as_json)


@runs.command("dead-letters")
@click.option("--flow", "flow_id", help="only dead letters of this flow (its id)")
@click.option("--limit", default=1000, show_default=True, help="at most this many, newest first")
@json_option
@project_option
@database_option
def dead_letters(flow_id: str | None, limit: int, as_json: bool, project: Path, database: str | None) -> None:
    """List runs parked as dead letters, with their error; `seamflow runs replay` re-runs them."""
    from seamflow import store
    from seamflow.cli.render import print_runs

    query = store.RunFilter(flow_id=flow_id, statuses=(store.RunStatus.DEAD_LETTER,), limit=limit)
    print_runs(
        run(_read(ProjectPaths(project), database, lambda db: db.list_runs(query))), as_json=as_json, with_error=True
    )


@runs.command("replay")
@click.argument("run_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="replay every dead letter")
@click.option(
    "--timeout", default=60.0, show_default=True, help="seconds to wait for each replayed run to finish or park"
)
@project_option
@database_option
def replay(run_id: str | None, replay_all: bool, timeout: float, project: Path, database: str | None) -> None:
    """Re-run a failed or dead-lettered RUN_ID (or --all dead letters) from its failed step."""
    from seamflow import store
    from seamflow.cli.progress import Progress

    if not run_id and not replay_all:
        raise click.UsageError("give a RUN_ID or --all")
    paths = open_project(project)

    async def work(eng: engine.Engine) -> None:
        if replay_all:
            dead = await eng.db.list_runs(store.RunFilter(statuses=(store.RunStatus.DEAD_LETTER,), limit=10_000))
            targets = [r.run_id for r in dead]
        else:
            targets = [RunId(str(run_id))]
        from seamflow.cli.audit import record_cli_action

        for target in targets:
            await eng.replay(target)
            await record_cli_action(eng.db, "run.replayed", f"run:{target}", {"all_dead_letters": replay_all})
        if len(targets) < _PROGRESS_FROM:
            for target in targets:
                click.echo(f"{target}  {(await _settle(eng, target, timeout)).status.value}")
            return
        outcomes: dict[str, int] = {}
        with Progress("replaying dead letters", "runs") as progress:
            for done, target in enumerate(targets, 1):
                status = (await _settle(eng, target, timeout)).status.value
                outcomes[status] = outcomes.get(status, 0) + 1
                progress.update(done, len(targets))
        click.echo("replayed: " + ", ".join(f"{count} {status}" for status, count in sorted(outcomes.items())))

    run(_with_engine(paths, database, work))


def legacy_aliases() -> list[click.Command]:
    """`seamflow dead-letters` and `seamflow replay`, hidden, as they were before `runs` took them.

    They work as before and say their new name on stderr; they go in a later release.
    """
    aliases = []
    for old, new in (("dead-letters", dead_letters), ("replay", replay)):
        aliases.append(
            click.Command(
                old,
                callback=_announcing(old, new),
                params=new.params,
                help=f"Old name of `seamflow runs {new.name}`.",
                hidden=True,
            )
        )
    return aliases


def _announcing(old: str, new: click.Command) -> Callable[..., Any]:
    def callback(**kwargs: Any) -> Any:
        note = f"note: `seamflow {old}` is now `seamflow runs {new.name}`; the old name goes in a later release"
        click.echo(note, err=True)
        assert new.callback is not None
        return new.callback(**kwargs)

    return callback


@click.command()
@click.argument("name")
@click.argument("key")
@click.option("--payload", default="null", help="JSON given to the waiting step (its output's payload)")
@project_option
@database_option
def signal(name: str, key: str, payload: str, project: Path, database: str | None) -> None:
    """Send signal NAME with correlation KEY to the runs waiting for it."""
    value = _json_option(payload, "--payload")
    paths = open_project(project)

    async def work(eng: engine.Engine) -> None:
        woken = await eng.signal(name, key, value)
        for run_id in woken:
            summary = await _settle(eng, run_id, 60)
            click.echo(f"{run_id}  {summary.status.value}")
        if not woken:
            click.echo("no run waits for this signal yet; it is kept and delivered when one does")

    run(_with_engine(paths, database, work))
