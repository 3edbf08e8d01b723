"""`seamflow identity resolve|explain|show|merge|split`: one member ID across sources, from the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from seamflow.cli.options import database_option, open_project, project_option, run
from seamflow.cli.signals import stop_on_ctrl_c
from seamflow.cli.table import json_option, print_json

if TYPE_CHECKING:
    from seamflow import identity
    from seamflow.cli.progress import Progress

__all__ = ["identity_group"]


@click.group("identity")
def identity_group() -> None:
    """Identity resolution: unified IDs and golden records across sources; a steward's merges and splits."""


def _resolution(path: Path) -> identity.Resolution:
    from seamflow import errors, identity
    from seamflow.cli.options import fail

    try:
        return identity.load_resolution(path)
    except errors.SeamflowError as exc:
        fail(exc)


@identity_group.command("resolve")
@click.argument("resolution_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--write-back", is_flag=True, help="call each source's write_back action for new or changed IDs")
@json_option
@project_option
@database_option
def resolve(resolution_file: Path, write_back: bool, as_json: bool, project: Path, database: str | None) -> None:
    """Resolve every record of the sources in RESOLUTION_FILE: clusters, unified IDs (kept from the
    last run), golden records, stored together.
    """
    from seamflow.cli.progress import Progress

    resolution = _resolution(resolution_file)
    paths = open_project(project)
    stop_on_ctrl_c()

    async def work(shown: Progress | None) -> tuple[identity.ResolveReport, dict[str, int]]:
        from seamflow import identity
        from seamflow.cli.data import _pool
        from seamflow.cli.project import open_store

        db = open_store(paths, database)
        await db.open()
        pool = _pool(paths)
        try:
            resolver = identity.Resolver(
                db, resolution, base=resolution_file.parent, resolve_url=lambda name: _url(pool, name)
            )
            report = await resolver.resolve(_progress(shown))
            written: dict[str, int] = {}
            if write_back:
                written = await identity.write_back(resolution, report.changes, pool)
            return report, written
        finally:
            await pool.close()
            await db.close()

    try:
        if as_json:
            report, written = run(work(None))
        else:
            with Progress(f"resolving {resolution.entity}", "records") as shown:
                report, written = run(work(shown))
    except KeyboardInterrupt:
        click.echo("\nstopped; nothing of this run was stored", err=True)
        sys.exit(130)
    if as_json:
        print_json({**report.as_json(), "written_back": dict(written)})
        return
    _print_report(report, written)


def _url(pool: Any, name: str) -> str:
    from seamflow import errors

    config = pool.resolve(name)
    url = config.config.get("url")
    if config.connector != "sql" or not isinstance(url, str):
        raise errors.InvalidInput(f"connection {name!r} is not a sql connection with a url", code="identity.source")
    return str(url)


def _progress(shown: Progress | None) -> Any:
    if shown is None:
        return None

    def update(phase: str, done: int, total: int | None) -> None:
        shown.update(done, total)

    return update


def _print_report(report: identity.ResolveReport, written: dict[str, int]) -> None:
    sources = ", ".join(f"{name} {count:,}" for name, count in report.by_source.items())
    click.echo(f"{report.entity}: {report.records:,} records ({sources})")
    click.echo(
        f"  compared {report.pairs:,} pairs, linked {report.links:,} ({report.by_rule:,} by a rule)"
        f" -> {report.clusters:,} unified IDs ({report.kept_ids:,} kept, {report.new_ids:,} new);"
        f" {report.changed:,} records got a new or other ID"
    )
    if report.skipped_keys:
        click.echo(f"  blocking keys shared by too many records, skipped: {', '.join(report.skipped_keys[:5])}")
    click.echo("  seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in report.seconds.items()))
    for name, count in written.items():
        click.echo(f"  wrote the unified ID back to {name}: {count:,} records")


@identity_group.command("explain")
@click.argument("resolution_file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("left")
@click.argument("right")
@json_option
@project_option
@database_option
def explain(resolution_file: Path, left: str, right: str, as_json: bool, project: Path, database: str | None) -> None:
    """Why records LEFT and RIGHT (`source:key`) are, or are not, the same: each comparison's level and weight."""
    resolution = _resolution(resolution_file)

    async def work() -> identity.Explanation:
        from seamflow import identity

        async with _store(project, database) as db:
            return await identity.Resolver(db, resolution).explain(left, right)

    found = run(work())
    if as_json:
        print_json(found.as_json())
        return
    click.echo(f"{found.left}  vs  {found.right}")
    for rule in found.rules:
        click.echo(f"  rule {rule}: the same")
    click.echo(f"  {'field':<12} {'level':<11} {'weight':>8}  values")
    click.echo(f"  {'(prior)':<12} {'':<11} {found.prior_weight:>8.2f}")
    for c in found.comparisons:
        click.echo(f"  {c.field:<12} {c.level:<11} {c.weight:>8.2f}  {c.left or '-'} | {c.right or '-'}")
    verdict = "the same" if found.is_match else "not the same"
    click.echo(f"  score {found.score:.2f}, match probability {found.probability:.4f}: {verdict}")


class _store:
    """The project's store, opened for one command."""

    def __init__(self, project: Path, database: str | None) -> None:
        from seamflow.cli.project import open_store

        self._db = open_store(open_project(project), database)

    async def __aenter__(self) -> Any:
        await self._db.open()
        return self._db

    async def __aexit__(self, *exc: object) -> None:
        await self._db.close()


@identity_group.command("show")
@click.argument("entity")
@click.argument("unified_id")
@json_option
@project_option
@database_option
def show(entity: str, unified_id: str, as_json: bool, project: Path, database: str | None) -> None:
    """A unified member of ENTITY: its golden record and its records in each source."""
    from seamflow import identity

    async def work() -> Any:
        async with _store(project, database) as db:
            found, records = await identity.Steward(db, entity).cluster(unified_id)
            return identity.member_json(found, records)

    member = run(work())
    if as_json:
        print_json(member)
        return
    click.echo(f"{entity} {unified_id}")
    for name, value in member["golden"].items():
        click.echo(f"  {name:<12} {value}")
    click.echo("records:")
    for record in member["records"]:
        click.echo(f"  {record['record']}")


def _steward_actor() -> Any:
    from seamflow.cli.audit import cli_actor

    return cli_actor()


@identity_group.command("merge")
@click.argument("entity")
@click.argument("first")
@click.argument("second")
@click.option("--reason", required=True, help="why they are one (kept with the decision and in the audit trail)")
@json_option
@project_option
@database_option
def merge(
    entity: str, first: str, second: str, reason: str, as_json: bool, project: Path, database: str | None
) -> None:
    """Merge the unified members FIRST and SECOND of ENTITY; the older ID stays."""
    from seamflow import audit, identity

    async def work() -> identity.StewardResult:
        async with _store(project, database) as db:
            steward = identity.Steward(db, entity, audit.AuditTrail(db))
            return await steward.merge(first, second, reason, _steward_actor())

    _print_result(run(work()), as_json)


@identity_group.command("split")
@click.argument("entity")
@click.argument("unified_id")
@click.option("--records", "refs", required=True, help="the records to take off, as source:key,source:key")
@click.option("--reason", required=True, help="why they are not the same (kept, and in the audit trail)")
@json_option
@project_option
@database_option
def split(
    entity: str, unified_id: str, refs: str, reason: str, as_json: bool, project: Path, database: str | None
) -> None:
    """Take records off the unified member UNIFIED_ID of ENTITY into a member of their own."""
    from seamflow import audit, identity

    async def work() -> identity.StewardResult:
        async with _store(project, database) as db:
            steward = identity.Steward(db, entity, audit.AuditTrail(db))
            wanted = [ref.strip() for ref in refs.split(",") if ref.strip()]
            return await steward.split(unified_id, wanted, reason, _steward_actor())

    _print_result(run(work()), as_json)


def _print_result(result: identity.StewardResult, as_json: bool) -> None:
    if as_json:
        print_json(result.as_json())
        return
    d = result.decision
    click.echo(f"{d.kind} {d.id} by {d.actor}: {d.reason}")
    for cluster in result.clusters:
        state = "retired" if cluster.size == 0 else f"{cluster.size} records"
        click.echo(f"  {cluster.unified_id}: {state}")
