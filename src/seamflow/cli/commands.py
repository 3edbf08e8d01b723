"""The `seamflow` command: init, serve, flow validate|list|schema, run, runs list|show, dead-letters, replay, signal."""

from __future__ import annotations

import asyncio
import json
import secrets as token_source
import shutil
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click

from seamflow import api, codec, engine, errors, redact, store, sync
from seamflow.cli import processes, supervisor
from seamflow.cli.connections import connections, prepare_secrets, remember_secrets
from seamflow.cli.connections import secrets as secrets_group
from seamflow.cli.logs import configure_logging
from seamflow.cli.project import ProjectPaths, build_engine, open_store
from seamflow.cli.render import print_run, print_runs
from seamflow.cli.sync import sync_group
from seamflow.flows import spec, validate
from seamflow.ids import Json, RunId

__all__ = ["main"]

T = TypeVar("T")
_project_option = click.option(
    "--project",
    "-p",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="the project folder (holds flows/ and connections.yaml)",
)
_db_option = click.option(
    "--database", help="SQLite file (default: <project>/.seamflow/seamflow.db or $SEAMFLOW_DATABASE)"
)


def _run(coro: Awaitable[T]) -> T:
    """The one `asyncio.run` of a CLI process; our errors become a message and an exit code."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]  # a coroutine
    except errors.SeamflowError as exc:
        click.echo(f"error [{exc.code}]: {redact.mask_text(exc.message)}", err=True)
        sys.exit(exc.exit_code)


@click.group()
@click.version_option(package_name="seamflow")
def main() -> None:
    """Seamflow: durable flows between your business systems."""


main.add_command(connections)
main.add_command(secrets_group)
main.add_command(sync_group)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Scaffold a project in DIRECTORY: flows/, connections.yaml, .env.example, an example flow, an API token."""
    if (directory / "flows").exists():
        raise click.ClickException(f"{directory}/flows already exists; expected a new or empty folder")
    scaffold = resources.files("seamflow.cli").joinpath("scaffold")
    (directory / "flows").mkdir(parents=True)
    (directory / "flows" / "hello.yaml").write_text(
        scaffold.joinpath("flows", "hello.yaml").read_text("utf-8"), "utf-8"
    )
    (directory / "connections.yaml").write_text(scaffold.joinpath("connections.yaml").read_text("utf-8"), "utf-8")
    (directory / ".env.example").write_text(scaffold.joinpath("env.example").read_text("utf-8"), "utf-8")
    if not (directory / ".env").exists():
        shutil.copyfile(directory / ".env.example", directory / ".env")
    (directory / ".gitignore").write_text(".seamflow/\n.env\n", "utf-8")
    prepare_secrets(directory)
    token = "sf_" + token_source.token_urlsafe(32)
    _run(_store_token(ProjectPaths(directory), token))
    click.echo(f"Created a Seamflow project in {directory}")
    click.echo(f"API token (shown once, stored hashed): {token}")
    click.echo(f"Next: cd {directory} && seamflow flow validate && seamflow serve")


async def _store_token(paths: ProjectPaths, token: str) -> None:
    db = open_store(paths)
    await db.open()
    try:
        await db.add_api_token("init", api.hash_token(token))
    finally:
        await db.close()


def _duration(_: object, __: object, value: str | None) -> timedelta | None:
    if value is None or value == "":
        return None
    try:
        return spec.parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _process_options(fn: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(
        [
            _project_option,
            _db_option,
            click.option("--host", default="127.0.0.1", show_default=True),
            click.option("--workers", default=64, show_default=True, type=int, help="runs executing at once"),
            click.option(
                "--lease",
                default="30s",
                show_default=True,
                envvar="SEAMFLOW_LEASE",
                callback=_duration,
                help="how long a run stays with a silent process before others take it over [$SEAMFLOW_LEASE]",
            ),
            click.option(
                "--retention",
                default=None,
                envvar="SEAMFLOW_RETENTION",
                callback=_duration,
                help="prune runs finished longer ago than this, e.g. 30d (default: keep) [$SEAMFLOW_RETENTION]",
            ),
            click.option("--log-level", default="info", show_default=True),
        ]
    ):
        fn = option(fn)
    return fn


def _start_process(role: processes.Role, project: Path, database: str | None, log_level: str, **kw: Any) -> None:
    configure_logging(log_level)
    paths = ProjectPaths(project)
    paths.load_dotenv()
    try:
        processes.run_process(role, paths, database, **kw)
    except errors.SeamflowError as exc:
        click.echo(f"error [{exc.code}]: {redact.mask_text(exc.message)}", err=True)
        sys.exit(exc.exit_code)


def _processes(_: object, __: object, value: str) -> int:
    if value == "auto":
        return supervisor.default_processes()
    try:
        count = int(value)
    except ValueError:
        count = 0
    if not 1 <= count <= 64:
        raise click.BadParameter(f"got {value!r}; expected auto or a number from 1 to 64")
    return count


@main.command()
@_process_options
@click.option("--port", default=8080, show_default=True, type=int)
@click.option(
    "--processes",
    "process_count",
    default="auto",
    show_default=True,
    envvar="SEAMFLOW_PROCESSES",
    callback=_processes,
    help="processes serving together behind the port; auto: one per core, at most 4 [$SEAMFLOW_PROCESSES]",
)
@click.option("--listen-fd", type=int, default=None, hidden=True)
@click.option("--member", type=int, default=0, hidden=True)
@click.option("--first-pid", type=int, default=None, hidden=True)
def serve(
    project: Path,
    database: str | None,
    log_level: str,
    process_count: int,
    listen_fd: int | None,
    member: int,
    first_pid: int | None,
    **kw: Any,
) -> None:
    """Serve the API, webhooks and workers: one command, one process per core (--processes)."""
    group = processes.Group(process_count, listen_fd, member, first_pid)
    _start_process("serve", project, database, log_level, group=group, **kw)


@main.command("api")
@_process_options
@click.option("--port", default=8080, show_default=True, type=int)
def api_process(project: Path, database: str | None, log_level: str, **kw: Any) -> None:
    """Serve the API and webhooks only; `seamflow worker` processes execute the runs (PostgreSQL)."""
    _start_process("api", project, database, log_level, **kw)


@main.command()
@_process_options
@click.option("--port", default=None, type=int, help="serve /health and /metrics on this port (default: none)")
def worker(project: Path, database: str | None, log_level: str, **kw: Any) -> None:
    """Execute runs, timers, schedules and feeds; no API (PostgreSQL, any number of them)."""
    _start_process("worker", project, database, log_level, **kw)


@main.command()
@_project_option
@_db_option
@click.option("--all", "show_all", is_flag=True, help="also stopped processes")
def workers(project: Path, database: str | None, show_all: bool) -> None:
    """List the processes sharing the database: heartbeat, roles, runs held."""
    paths = ProjectPaths(project)
    paths.load_dotenv()

    async def work() -> list[store.WorkerInfo]:
        target = open_store(paths, database)
        await target.open()
        try:
            return await target.list_workers(include_stopped=show_all)
        finally:
            await target.close()

    found = _run(work())
    if not found:
        click.echo("no live workers")
        return
    now = datetime.now(UTC)
    click.echo(f"{'WORKER':44} {'ROLES':22} {'HEARTBEAT':>10} {'RUNS':>6}  STATE")
    for w in found:
        age = (now - w.heartbeat).total_seconds()
        state = "stopped" if w.stopped else ("silent" if age > 60 else "live")
        click.echo(f"{w.id:44} {w.roles:22} {age:>9.1f}s {w.runs_held:>6}  {state}")


@main.group("db")
def db_group() -> None:
    """The database: schema migrations."""


@db_group.command("upgrade")
@_project_option
@_db_option
def db_upgrade(project: Path, database: str | None) -> None:
    """Apply pending schema migrations (every process also does at start) and print the version."""
    paths = ProjectPaths(project)
    paths.load_dotenv()

    async def work() -> tuple[int, int]:
        target = open_store(paths, database)
        await target.open()
        try:
            return await target.schema_status()
        finally:
            await target.close()

    current, expected = _run(work())
    click.echo(f"schema at version {current} (this Seamflow expects {expected})")


@main.group()
def flow() -> None:
    """Validate, list and describe flows."""


@flow.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@_project_option
def flow_validate(paths: tuple[Path, ...], project: Path) -> None:
    """Check flow files (default: the whole project) and print every problem with file:line:column."""
    proj = ProjectPaths(project)
    proj.load_dotenv()
    try:
        loaded = validate.validate_project(proj.flows, proj.connections)
    except errors.FlowInvalid as exc:
        wanted = {p.resolve() for p in paths}
        problems = [p for p in exc.problems if not wanted or _in(p.where.file, wanted)]
        if problems:
            for problem in problems:
                click.echo(str(problem), err=True)
            click.echo(f"{len(problems)} problem(s) found", err=True)
            sys.exit(2)
        loaded = None
    if loaded is not None:  # the project's models and syncs (syncs/*.yaml), checked the same way
        try:
            syncs = sync.load_project(proj.root, loaded.connections)
        except errors.FlowInvalid as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            click.echo(f"{len(exc.problems)} problem(s) found", err=True)
            sys.exit(2)
        if syncs.syncs:
            click.echo(f"ok: {len(syncs.syncs)} sync(s) valid ({len(syncs.models)} model(s))")
    count = len(loaded.flows) if loaded else len(paths)
    click.echo(f"ok: {count} flow(s) valid")


def _in(file: str | None, wanted: set[Path]) -> bool:
    if file is None:
        return True
    resolved = Path(file).resolve()
    return any(resolved == w or w in resolved.parents for w in wanted)


@flow.command("list")
@_project_option
def flow_list(project: Path) -> None:
    """List the project's flows: id, version, trigger, file."""
    proj = ProjectPaths(project)
    proj.load_dotenv()
    try:
        loaded = validate.validate_project(proj.flows, proj.connections)
    except errors.FlowInvalid as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    for flow_id, item in sorted(loaded.flows.items()):
        trigger = item.spec.trigger
        detail = (
            f"/hooks/{trigger.webhook.path}"
            if trigger.webhook
            else (trigger.schedule.cron or str(trigger.schedule.every))
            if trigger.schedule
            else ""
        )
        click.echo(f"{flow_id:30} {item.version}  {trigger.kind:9} {detail:30} {item.path}")


@flow.command("schema")
def flow_schema() -> None:
    """Print the JSON Schema of flow files (for editor auto-completion)."""
    click.echo(json.dumps(validate.flow_json_schema(), indent=2, ensure_ascii=False))


async def _with_engine(paths: ProjectPaths, database: str | None, work: Callable[[engine.Engine], Awaitable[T]]) -> T:
    """Run `work` with an engine embedded in this CLI process (it does not resume other runs)."""
    db = open_store(paths, database)
    eng, _ = build_engine(paths, db, engine.EngineOptions(workers=8, claim=False, timers=False))
    await db.open()
    await eng.start()
    try:
        return await work(eng)
    finally:
        await eng.stop()
        await db.close()


async def _settle(eng: engine.Engine, run_id: RunId, timeout_s: float) -> store.RunSummary:
    """Wait until the run finished or parked (or the timeout passed); return its summary."""
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


@main.command("run")
@click.argument("flow_id")
@click.option("--input", "input_json", default="null", help="JSON that becomes event.body")
@click.option("--timeout", default=60.0, show_default=True, help="seconds to wait for the run to finish or park")
@_project_option
@_db_option
def run_flow(flow_id: str, input_json: str, timeout: float, project: Path, database: str | None) -> None:
    """Start FLOW_ID manually with --input and print the run."""
    body = _json_option(input_json, "--input")
    paths = ProjectPaths(project)
    paths.load_dotenv()

    async def work(eng: engine.Engine) -> None:
        target = eng.catalog.flow(flow_id)
        accepted = await eng.accept(target, engine.Event("manual", body))
        if accepted is None:
            click.echo("ignored: the flow's when condition is false for this input; no run was started")
            return
        await _settle(eng, accepted.run_id, timeout)
        print_run(*(await eng.db.get_run(accepted.run_id)))

    _run(_with_engine(paths, database, work))


@main.group()
def runs() -> None:
    """List and inspect runs."""


@runs.command("list")
@click.option("--flow", "flow_id")
@click.option("--status", multiple=True, type=click.Choice([s.value for s in store.RunStatus]))
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@_project_option
@_db_option
def runs_list(
    flow_id: str | None, status: tuple[str, ...], limit: int, as_json: bool, project: Path, database: str | None
) -> None:
    """List runs, newest first."""
    query = store.RunFilter(flow_id=flow_id, statuses=tuple(store.RunStatus(s) for s in status), limit=limit)
    print_runs(_run(_read(ProjectPaths(project), database, lambda db: db.list_runs(query))), as_json=as_json)


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
@_project_option
@_db_option
def runs_show(run_id: str, as_json: bool, project: Path, database: str | None) -> None:
    """Show a run: every step attempt with input, output, error and timing."""
    summary, state = _run(_read(ProjectPaths(project), database, lambda db: db.get_run(RunId(run_id))))
    print_run(summary, state, as_json=as_json)


@main.command("dead-letters")
@click.option("--flow", "flow_id")
@click.option("--json", "as_json", is_flag=True)
@_project_option
@_db_option
def dead_letters(flow_id: str | None, as_json: bool, project: Path, database: str | None) -> None:
    """List runs parked as dead letters, with their error."""
    query = store.RunFilter(flow_id=flow_id, statuses=(store.RunStatus.DEAD_LETTER,), limit=1000)
    print_runs(
        _run(_read(ProjectPaths(project), database, lambda db: db.list_runs(query))), as_json=as_json, with_error=True
    )


async def _read(paths: ProjectPaths, database: str | None, fn: Callable[[store.SqlStore], Awaitable[T]]) -> T:
    remember_secrets(paths)
    db = open_store(paths, database)
    if isinstance(db, store.SqliteStore) and not db.path.exists():
        raise errors.NotFound(f"no database at {db.path}; run `seamflow serve` or pass --database")
    await db.open()
    try:
        return await fn(db)
    finally:
        await db.close()


@main.command()
@click.argument("run_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="replay every dead letter")
@click.option("--timeout", default=60.0, show_default=True)
@_project_option
@_db_option
def replay(run_id: str | None, replay_all: bool, timeout: float, project: Path, database: str | None) -> None:
    """Re-run a failed or dead-lettered run (or --all dead letters) from its failed step."""
    if not run_id and not replay_all:
        raise click.UsageError("give a RUN_ID or --all")
    paths = ProjectPaths(project)
    paths.load_dotenv()

    async def work(eng: engine.Engine) -> None:
        if replay_all:
            dead = await eng.db.list_runs(store.RunFilter(statuses=(store.RunStatus.DEAD_LETTER,), limit=10_000))
            targets = [r.run_id for r in dead]
        else:
            targets = [RunId(str(run_id))]
        for target in targets:
            await eng.replay(target)
        for target in targets:
            summary = await _settle(eng, target, timeout)
            click.echo(f"{target}  {summary.status.value}")

    _run(_with_engine(paths, database, work))


@main.command()
@click.argument("name")
@click.argument("key")
@click.option("--payload", default="null", help="JSON given to the waiting step")
@_project_option
@_db_option
def signal(name: str, key: str, payload: str, project: Path, database: str | None) -> None:
    """Send signal NAME with correlation KEY to the runs waiting for it."""
    value = _json_option(payload, "--payload")
    paths = ProjectPaths(project)
    paths.load_dotenv()

    async def work(eng: engine.Engine) -> None:
        woken = await eng.signal(name, key, value)
        for run_id in woken:
            summary = await _settle(eng, run_id, 60)
            click.echo(f"{run_id}  {summary.status.value}")
        if not woken:
            click.echo("no run waits for this signal yet; it is kept and delivered when one does")

    _run(_with_engine(paths, database, work))


@main.command()
@click.option("--rate", default=5.0, show_default=True, help="sales-team actions per second")
@click.option("--duration", default=30.0, show_default=True, help="seconds of traffic")
@click.option("--port", default=8080, show_default=True, help="Seamflow's port (the CRM, ERP and SMTP take free ones)")
@click.option("--keep", is_flag=True, help="leave the temporary folder (project, databases, logs, mails)")
def demo(rate: float, duration: float, port: int, keep: bool) -> None:
    """Run the lead-to-cash demo: a CRM, an ERP, a mail server and Seamflow, with realistic traffic."""
    from seamflow.cli.demo import run_demo

    configure_logging("error")  # the demo prints its own summary; dead letters are expected in it
    processes.install_uvloop()
    try:
        _run(run_demo(rate, duration, port, keep=keep))
    except KeyboardInterrupt:
        click.echo("stopped")
