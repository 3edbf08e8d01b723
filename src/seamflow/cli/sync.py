"""`seamflow sync list|status|check|conflicts|resolve`: record syncs from the command line."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from seamflow import codec, errors, redact
from seamflow.cli import sync_sides
from seamflow.cli.project import ProjectPaths
from seamflow.cli.signals import stop_on_ctrl_c

if TYPE_CHECKING:
    from seamflow import sync

__all__ = ["sync_group"]

T = TypeVar("T")


def _project_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--database", help="SQLite file or postgresql:// URL (default: the project's store)")(fn)
    return click.option(
        "--project", "-p", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True
    )(fn)


def _with_sync(
    project: Path,
    database: str | None,
    work: Callable[[sync.SyncService], Awaitable[T]],
    *,
    connect: bool | str = True,
) -> T:
    """Run `work` with the project's sync service (no runs are executed here).

    Args:
        connect: False: open no connection (`sync list` reads only the store); a sync's id:
            open only its sides' connections, after checking each side answers; True: open all.
    """
    from seamflow import engine, sync
    from seamflow.cli.project import build_engine, open_store

    paths = ProjectPaths(project)
    paths.load_dotenv()

    async def main() -> T:
        db = open_store(paths, database)
        eng, _ = build_engine(paths, db, engine.EngineOptions(workers=1, claim=False, timers=False))
        service = eng.services.get(sync.SyncService)
        if service is None:
            raise errors.NotFound(f"the project at {paths.root} defines no syncs (syncs/*.yaml)")
        only = None
        if isinstance(connect, str):
            only = await sync_sides.reachable_sides(eng.pool, service.sync_spec(connect))
        await db.open()
        if connect is not False:
            await eng.pool.open(only)
        try:
            return await work(service)
        finally:
            await eng.pool.close()
            await db.close()

    import asyncio

    try:
        return asyncio.run(main())
    except sync_sides.Unreachable as exc:
        click.echo(exc.report, err=True)
        sys.exit(exc.exit_code)
    except errors.SeamflowError as exc:
        click.echo(f"error [{exc.code}]: {redact.mask_text(exc.message)}", err=True)
        sys.exit(exc.exit_code)


@click.group("sync")
def sync_group() -> None:
    """Record syncs: status, reconciliation, conflicts."""


@sync_group.command("list")
@_project_option
def sync_list(project: Path, database: str | None) -> None:
    """Each sync with its records, links per side and open conflicts."""
    import json

    async def work(service: sync.SyncService) -> list[Any]:
        return [await service.status(s) for s in sorted(service.syncs)]

    for status in _with_sync(project, database, work, connect=False):
        click.echo(
            f"{status['sync']:20} {status['mode']:8} records {status['records']:>7}  deleted {status['deleted']:>5}"
            f"  linked {json.dumps(status['linked'], ensure_ascii=False)}  open conflicts {status['open_conflicts']}"
        )


@sync_group.command("check")
@click.argument("name")
@click.option("--repair", is_flag=True, help="converge the differences by ownership and policy")
@click.option("--json", "as_json", is_flag=True)
@_project_option
def sync_check(name: str, repair: bool, as_json: bool, project: Path, database: str | None) -> None:
    """Compare both systems record by record: missing records and differing fields.

    Exit 1 if they differ, 3 if a side cannot be reached (each side is named with its
    connection and address).
    """
    report = _with_sync(project, database, lambda service: sync_sides.check(service, name, repair), connect=name)
    data = report.as_json()
    assert isinstance(data, dict)
    if as_json:
        click.echo(codec.dumps_text(data))
    else:
        click.echo(f"sync {name}: {report.compared} records compared")
        for item in report.missing:
            click.echo(f"  missing   {codec.dumps_text(item)}")
        for item in report.unlinked:
            click.echo(f"  unlinked  {codec.dumps_text(item)}")
        for item in report.differing:
            click.echo(f"  differs   {codec.dumps_text(item)}")
        if repair:
            click.echo(f"repaired {report.repaired} record(s); run `seamflow sync check {name}` again to confirm")
        elif data["in_sync"]:
            click.echo("in sync")
    if not data["in_sync"] and not repair:
        sys.exit(1)


@sync_group.command("load")
@click.argument("name")
@click.option("--from", "side", required=True, help="the side whose records are loaded (e.g. erp)")
@click.option("--chunk", default=500, show_default=True, help="records read and committed per step")
@click.option("--parallel", default=16, show_default=True, help="records applied at once")
@click.option("--restart", is_flag=True, help="start over instead of continuing a stopped load")
@_project_option
def sync_load(
    name: str, side: str, chunk: int, parallel: int, restart: bool, project: Path, database: str | None
) -> None:
    """Initial load: bring every record of one side through the sync, with progress; resumable.

    Ctrl-C (or a crash) stops it; the same command continues where it stopped.
    """
    stop_on_ctrl_c()
    state: dict[str, Any] = {}

    def progress(p: sync.LoadProgress) -> None:
        bar = state.get("bar")
        if bar is None and p.total is not None:
            bar = state["bar"] = click.progressbar(length=p.total, label=f"loading {name} from {side}", show_eta=True)
            bar.__enter__()
            bar.update(p.done)
            state["shown"] = p.done
            return
        if bar is not None:
            bar.update(p.done - state["shown"])
            state["shown"] = p.done
        else:
            click.echo(f"\r{p.done} records ({p.failed} failed)", nl=False)

    async def work(service: sync.SyncService) -> sync.LoadProgress:
        return await service.load(name, side, chunk=chunk, parallel=parallel, restart=restart, on_progress=progress)

    try:
        result = _with_sync(project, database, work)
    except KeyboardInterrupt:
        click.echo("\nstopped; run the same command to continue", err=True)
        sys.exit(130)
    finally:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)
    if result.already_finished:
        click.echo(f"the load of {name} from {side} had finished ({result.done} records); --restart runs it again")
        return
    click.echo(f"\nloaded {result.loaded_now} records from {side} ({result.done} in all, {result.failed} failed)")
    for message in result.errors:
        click.echo(f"  {message}", err=True)


@sync_group.command("conflicts")
@click.option("--sync", "sync_id", default=None, help="only this sync")
@click.option("--all", "show_all", is_flag=True, help="resolved ones too")
@_project_option
def sync_conflicts(sync_id: str | None, show_all: bool, project: Path, database: str | None) -> None:
    """Conflicts the policy could not settle, with both values."""
    import asyncio

    from seamflow.cli.project import open_store

    paths = ProjectPaths(project)
    paths.load_dotenv()

    async def work() -> list[Any]:
        db = open_store(paths, database)
        await db.open()
        try:
            return await db.list_sync_conflicts(sync_id, status=None if show_all else "open")
        finally:
            await db.close()

    found = asyncio.run(work())
    if not found:
        click.echo("no conflicts")
    for c in found:
        click.echo(
            f"{c.id}  {c.sync_id:12} {c.canonical_id}  {c.field:14} {codec.dumps_text(c.candidates)}  {c.status}"
        )


@sync_group.command("resolve")
@click.argument("conflict_id")
@click.option("--value", "value_json", required=True, help="JSON value the record takes, e.g. '\"张伟\"'")
@_project_option
def sync_resolve(conflict_id: str, value_json: str, project: Path, database: str | None) -> None:
    """Settle a conflict with a value: the canonical record and both systems take it."""
    try:
        value = codec.parse_untrusted(value_json.encode())
    except errors.PayloadInvalid as exc:
        raise click.BadParameter(exc.message, param_hint="--value") from None
    outcome = _with_sync(project, database, lambda service: service.resolve(conflict_id, value))
    click.echo(f"resolved {conflict_id}: {len(outcome.writes)} write(s)")
