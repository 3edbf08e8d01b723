"""The `seamflow` command: init, serve, api, worker, workers, db, flow, run, runs, signal, and the groups it gathers."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from seamflow import errors, redact
from seamflow.cli import options
from seamflow.cli import runs as run_commands
from seamflow.cli.audit import audit_group
from seamflow.cli.connections import connections
from seamflow.cli.connections import secrets as secrets_group
from seamflow.cli.data import data_group, migrate
from seamflow.cli.dev import dev as dev_group
from seamflow.cli.feedback import feedback_group
from seamflow.cli.flow_tests import flow_test
from seamflow.cli.identity import identity_group
from seamflow.cli.insight import insight_group, kpi_command
from seamflow.cli.live_shadows import flow_shadow_stop
from seamflow.cli.options import database_option, open_project, project_option, run
from seamflow.cli.project import ProjectPaths, check_secrets_set, next_steps
from seamflow.cli.promotions import flow_promote, flow_promotions
from seamflow.cli.reload import flow_reload
from seamflow.cli.signals import stop_on_ctrl_c
from seamflow.cli.sync import sync_group
from seamflow.cli.table import json_option, print_json, print_table
from seamflow.cli.tasks import tasks_group
from seamflow.cli.users import users_group
from seamflow.cli.versions import flow_diff, flow_rollback, flow_shadow, flow_shadows, flow_versions
from seamflow.ids import Json

if TYPE_CHECKING:
    from seamflow import store

__all__ = ["main"]


class _Seamflow(click.Group):
    """The root group: Ctrl-C in any command ends it with one line and exit 130, not click's `Aborted!`."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("\nstopped (Ctrl-C)", err=True)
            ctx.exit(130)


@click.group(cls=_Seamflow)
@click.version_option(package_name="seamflow")
def main() -> None:
    """Seamflow: durable flows between your business systems."""


main.add_command(connections)
main.add_command(secrets_group)
main.add_command(sync_group)
main.add_command(dev_group)
main.add_command(users_group)
main.add_command(tasks_group)
main.add_command(audit_group)
main.add_command(data_group)
main.add_command(migrate)
main.add_command(identity_group)
main.add_command(feedback_group)
main.add_command(insight_group)
main.add_command(kpi_command)
for _command in (run_commands.run_flow, run_commands.runs, run_commands.signal, *run_commands.legacy_aliases()):
    main.add_command(_command)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Scaffold a project in DIRECTORY: flows/, connections.yaml, .env.example, an example flow, an API token."""
    import secrets as token_source
    import shutil
    from importlib import resources

    from seamflow.cli.connections import prepare_secrets

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
    run(_store_token(ProjectPaths(directory), token))
    click.echo(f"Created a Seamflow project in {directory}")
    click.echo(f"API token (shown once, stored hashed): {token}")
    click.echo(next_steps(directory))


async def _store_token(paths: ProjectPaths, token: str) -> None:
    from seamflow import api
    from seamflow.cli.project import open_store

    db = open_store(paths)
    await db.open()
    try:
        await db.add_api_token("init", api.hash_token(token))
    finally:
        await db.close()


def _process_options(database: Callable[..., Any]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return lambda fn: _with_process_options(fn, database)


def _with_process_options(fn: Callable[..., None], database: Callable[..., Any]) -> Callable[..., None]:
    for option in reversed([project_option, database, *options.PROCESS_OPTIONS]):
        fn = option(fn)
    return fn


def _start_process(role: str, project: Path, database: str | None, log_level: str, log_format: str, **kw: Any) -> None:
    """Run a long-running process; its end (Ctrl-C, a taken port, a bad project) is one line, never a traceback."""
    from seamflow.cli import processes
    from seamflow.cli.logs import configure_logging
    from seamflow.cli.project import require_project

    configure_logging(log_level, log_format)
    paths = ProjectPaths(project)
    try:
        require_project(paths)
        paths.load_dotenv()
        processes.run_process(role, paths, database, **kw)
    except errors.SeamflowError as exc:
        click.echo(f"error [{exc.code}]: {redact.mask_text(exc.message)}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        # uvicorn re-raises the SIGINT it handled once it has drained; the stop was asked for.
        # A terminal's Ctrl-C reaches every process of a serve group: the first one says it.
        if getattr(kw.get("group"), "member", 0) == 0:
            click.echo(f"{role} stopped (Ctrl-C)", err=True)


def _processes(_: object, __: object, value: str) -> int:
    if value == "auto":
        from seamflow.cli import supervisor

        return supervisor.default_processes()
    try:
        count = int(value)
    except ValueError:
        count = 0
    if not 1 <= count <= 64:
        raise click.BadParameter(f"got {value!r}; expected auto or a number from 1 to 64")
    return count


@main.command()
@_process_options(database_option)
@click.option("--port", default=8080, show_default=True, type=int, help="the port of the API and webhooks")
@click.option(
    "--processes",
    "process_count",
    default="auto",
    show_default=True,
    envvar="SEAMFLOW_PROCESSES",
    callback=_processes,
    help="processes serving together behind the port; auto: one per core, at most 4 [$SEAMFLOW_PROCESSES]",
)
@click.option("--member", type=int, default=0, hidden=True)
@click.option("--first-pid", type=int, default=None, hidden=True)
def serve(
    project: Path,
    database: str | None,
    log_level: str,
    log_format: str,
    process_count: int,
    member: int,
    first_pid: int | None,
    **kw: Any,
) -> None:
    """Serve the API, webhooks and workers: one command, one process per core (--processes)."""
    if process_count > 1 and member == 0 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from seamflow.cli import supervisor

        # before anything imports prometheus_client; the others inherit it
        folder = supervisor.metrics_folder(ProjectPaths(project).root / ".seamflow" / "metrics")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    from seamflow.cli import processes

    group = processes.Group(process_count, member, first_pid)
    _start_process("serve", project, database, log_level, log_format, group=group, **kw)


@main.command("api")
@_process_options(options.postgres_database_option)
@click.option("--port", default=8080, show_default=True, type=int, help="the port of the API and webhooks")
def api_process(project: Path, database: str | None, log_level: str, log_format: str, **kw: Any) -> None:
    """Serve the API and webhooks only; `seamflow worker` processes execute the runs (PostgreSQL)."""
    _start_process("api", project, database, log_level, log_format, **kw)


@main.command()
@_process_options(options.postgres_database_option)
@click.option("--port", default=None, type=int, help="serve /health and /metrics on this port (default: none)")
def worker(project: Path, database: str | None, log_level: str, log_format: str, **kw: Any) -> None:
    """Execute runs, timers, schedules and feeds; no API (PostgreSQL, any number of them)."""
    _start_process("worker", project, database, log_level, log_format, **kw)


@main.command()
@project_option
@database_option
@click.option("--all", "show_all", is_flag=True, help="also stopped processes")
@json_option
def workers(project: Path, database: str | None, show_all: bool, as_json: bool) -> None:
    """List the processes sharing the database: heartbeat, roles, runs held."""
    from seamflow.cli.project import open_store

    paths = open_project(project) if database is None else ProjectPaths(project)

    async def work() -> list[store.WorkerInfo]:
        target = open_store(paths, database)
        await target.open()
        try:
            return await target.list_workers(include_stopped=show_all)
        finally:
            await target.close()

    now = datetime.now(UTC)
    rows: list[list[Json]] = []
    for w in run(work()):
        age = (now - w.heartbeat).total_seconds()
        state = "stopped" if w.stopped else ("silent" if age > 60 else "live")
        rows.append([w.id, w.roles, round(age, 1), w.runs_held, state])
    if as_json:
        names = ("worker", "roles", "heartbeat_age_s", "runs_held", "state")
        print_json([dict(zip(names, row, strict=True)) for row in rows])
        return
    shown: list[list[object]] = [[w, roles, f"{age}s", held, state] for w, roles, age, held, state in rows]
    print_table(["worker", "roles", "heartbeat", "runs", "state"], shown, empty="no live workers")


@main.group("db")
def db_group() -> None:
    """The database: schema migrations."""


@db_group.command("upgrade")
@project_option
@database_option
def db_upgrade(project: Path, database: str | None) -> None:
    """Apply pending schema migrations (every process also does at start) and print the version."""
    from seamflow.cli.project import open_store

    paths = open_project(project) if database is None else ProjectPaths(project)

    async def work() -> tuple[int, int]:
        target = open_store(paths, database)
        await target.open()
        try:
            return await target.schema_status()
        finally:
            await target.close()

    current, expected = run(work())
    click.echo(f"schema at version {current} (this Seamflow expects {expected})")


@main.group()
def flow() -> None:
    """Validate, list, describe and test flows; reload them in a running serve."""


flow.add_command(flow_reload)
flow.add_command(flow_test)
for _command in (
    flow_versions,
    flow_diff,
    flow_rollback,
    flow_shadow,
    flow_shadows,
    flow_shadow_stop,
    flow_promote,
    flow_promotions,
):
    flow.add_command(_command)


@flow.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@project_option
def flow_validate(paths: tuple[Path, ...], project: Path) -> None:
    """Check flow files (default: the whole project) and print every problem with file:line:column."""
    from seamflow import sync
    from seamflow.flows import validate

    proj = open_project(project)
    try:
        loaded = validate.validate_project(proj.flows, proj.connections)
        check_secrets_set(proj, loaded)
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
@json_option
@project_option
def flow_list(as_json: bool, project: Path) -> None:
    """List the project's flows: id, version, trigger, where it listens or when it runs, file."""
    from seamflow.flows import validate

    proj = open_project(project)
    try:
        loaded = validate.validate_project(proj.flows, proj.connections)
    except errors.FlowInvalid as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    rows: list[list[Json]] = []
    for flow_id, item in sorted(loaded.flows.items()):
        trigger = item.spec.trigger
        detail = (
            f"/hooks/{trigger.hook_path}"
            if trigger.hook_path
            else (trigger.schedule.cron or str(trigger.schedule.every))
            if trigger.schedule
            else None
        )
        rows.append([flow_id, item.version, trigger.kind, detail, str(item.path)])
    if as_json:
        names = ("id", "version", "trigger", "detail", "file")
        print_json([dict(zip(names, row, strict=True)) for row in rows])
        return
    print_table(["flow", "version", "trigger", "detail", "file"], rows, empty="no flows in flows/")


@flow.command("schema")
def flow_schema() -> None:
    """Print the JSON Schema of flow files (for editor auto-completion)."""
    import json

    from seamflow.flows import validate

    click.echo(json.dumps(validate.flow_json_schema(), indent=2, ensure_ascii=False))


@main.group()
def connector() -> None:
    """Declarative connectors: HTTP/JSON systems described in connectors/*.yaml."""


@connector.command("schema")
def connector_schema() -> None:
    """Print the JSON Schema of declarative connector files (connectors/*.yaml)."""
    import json

    from seamflow.flows import connector_files

    click.echo(json.dumps(connector_files.connector_file_schema(), indent=2, ensure_ascii=False))


def _approver_pace(_: click.Context, __: click.Parameter, value: str) -> str:
    low, _sep, high = value.partition(":")
    try:
        low_s, high_s = float(low), float(high or low)
    except ValueError:
        low_s, high_s = -1.0, -1.0
    if not 0 <= low_s <= high_s:
        raise click.BadParameter(f"got {value!r}; expected MIN:MAX seconds with 0 <= MIN <= MAX, e.g. 1:4")
    return value


@main.command()
@click.option("--rate", default=5.0, show_default=True, help="sales-team actions per second")
@click.option("--duration", default=30.0, show_default=True, help="seconds of traffic")
@click.option("--port", default=8080, show_default=True, help="Seamflow's port (the CRM, ERP and SMTP take free ones)")
@click.option(
    "--keep",
    is_flag=True,
    help="leave the temporary folder (project, databases, logs, mails) and print how to inspect it",
)
@click.option(
    "--lang",
    type=click.Choice(["both", "en", "zh"]),
    default="both",
    show_default=True,
    help="language of the business summary: English, Chinese (中文) or both",
)
@click.option(
    "--approver-pace",
    default="1:4",
    show_default=True,
    metavar="MIN:MAX",
    callback=_approver_pace,
    help="seconds a simulated approver takes to decide, in DingTalk and in Seamflow's inbox",
)
def demo(rate: float, duration: float, port: int, keep: bool, lang: str, approver_pace: str) -> None:
    """Run the lead-to-cash demo: a CRM, an ERP, a mail server and Seamflow, with realistic traffic.

    Besides, employees ask for approvals: reimbursements decided in a simulated DingTalk and paid by
    the example finance system, purchase requests decided in Seamflow's inbox and ordered in the ERP.

    At the end it waits until every feed has caught up, compares the CRM's and the ERP's customers
    and prints a summary for the business and for the engineer. Ctrl-C prints the summary so far
    (exit 130).
    """
    from seamflow.cli import processes
    from seamflow.cli.demo import DemoOptions, run_demo
    from seamflow.cli.logs import configure_logging

    stop_on_ctrl_c()
    configure_logging("error")  # the demo prints its own summary; dead letters are expected in it
    processes.install_uvloop()
    languages = ("en", "zh") if lang == "both" else (lang,)
    try:
        run(run_demo(DemoOptions(rate, duration, port, keep, languages, approver_pace=approver_pace)))
    except KeyboardInterrupt:
        sys.exit(130)  # the summary so far is printed; 128 + SIGINT, as a shell reports Ctrl-C
