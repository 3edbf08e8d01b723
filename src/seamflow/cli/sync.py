"""`seamflow sync list|status|check|conflicts|resolve`: record syncs from the command line."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from seamflow import codec, errors, redact
from seamflow.cli import sync_sides
from seamflow.cli.options import database_option, open_project, project_option
from seamflow.cli.signals import stop_on_ctrl_c
from seamflow.cli.table import json_option, print_json, print_table

if TYPE_CHECKING:
    from seamflow import sync

__all__ = ["sync_group"]

T = TypeVar("T")


def _project_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return project_option(database_option(fn))


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

    paths = open_project(project)

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
@json_option
@_project_option
def sync_list(as_json: bool, project: Path, database: str | None) -> None:
    """Each sync with its records, links per side and open conflicts."""

    async def work(service: sync.SyncService) -> list[Any]:
        return [await service.status(s) for s in sorted(service.syncs)]

    found = _with_sync(project, database, work, connect=False)
    if as_json:
        print_json(found)
        return
    rows = [
        [
            status["sync"],
            status["mode"],
            status["records"],
            status["deleted"],
            ", ".join(f"{side} {count}" for side, count in status["linked"].items()),
            status["open_conflicts"],
        ]
        for status in found
    ]
    print_table(["sync", "mode", "records", "deleted", "linked", "open conflicts"], rows, empty="no syncs")


@sync_group.command("check")
@click.argument("name")
@click.option("--repair", is_flag=True, help="converge the differences by ownership and policy")
@json_option
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
    from seamflow.cli.progress import Progress

    stop_on_ctrl_c()
    with Progress(f"loading {name} from {side}") as shown:

        async def work(service: sync.SyncService) -> sync.LoadProgress:
            def progress(p: sync.LoadProgress) -> None:
                shown.update(p.done, p.total)

            return await service.load(name, side, chunk=chunk, parallel=parallel, restart=restart, on_progress=progress)

        try:
            result = _with_sync(project, database, work)
        except KeyboardInterrupt:
            click.echo("\nstopped; run the same command to continue", err=True)
            sys.exit(130)
    if result.already_finished:
        click.echo(f"the load of {name} from {side} had finished ({result.done} records); --restart runs it again")
        return
    click.echo(f"loaded {result.loaded_now} records from {side} ({result.done} in all, {result.failed} failed)")
    for message in result.errors:
        click.echo(f"  {message}", err=True)


@sync_group.command("conflicts")
@click.option("--sync", "sync_id", default=None, help="only this sync")
@click.option("--all", "show_all", is_flag=True, help="resolved ones too")
@json_option
@_project_option
def sync_conflicts(sync_id: str | None, show_all: bool, as_json: bool, project: Path, database: str | None) -> None:
    """Conflicts the policy could not settle, with both values."""
    from seamflow.cli.options import run
    from seamflow.cli.project import open_store

    paths = open_project(project)

    async def work() -> list[Any]:
        db = open_store(paths, database)
        await db.open()
        try:
            return await db.list_sync_conflicts(sync_id, status=None if show_all else "open")
        finally:
            await db.close()

    found = run(work())
    if as_json:
        names = ("id", "sync", "record", "field", "candidates", "status")
        print_json([dict(zip(names, _conflict_row(c), strict=True)) for c in found])
        return
    rows = [[*_conflict_row(c)[:4], codec.dumps_text(c.candidates), c.status] for c in found]
    print_table(["conflict", "sync", "record", "field", "values", "status"], rows, empty="no conflicts")


def _conflict_row(c: Any) -> list[Any]:
    return [c.id, c.sync_id, c.canonical_id, c.field, c.candidates, c.status]


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
