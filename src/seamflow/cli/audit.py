"""`seamflow audit verify|export|prune`: check, export and trim the audit trail from the command line.

Each command opens the project's store directly (no running server needed). `verify` exits 1
and names the first broken entry when an entry was deleted, edited or reordered.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from seamflow import codec, redact
from seamflow.cli.options import database_option, project_option, run
from seamflow.cli.project import ProjectPaths

if TYPE_CHECKING:
    from seamflow import audit

__all__ = ["audit_group", "cli_actor", "cli_origin", "record_cli_action", "record_in_project"]

T = TypeVar("T")


def cli_actor() -> audit.Actor:
    """Who acts from the command line: the operating-system user, `@cli:<user>`."""
    from seamflow import audit

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's uid): still someone
        user = "unknown"
    return audit.Actor(f"@cli:{user}", "cli")


def cli_origin() -> audit.Origin:
    """Where the command line acts from: this machine's host name."""
    from seamflow import audit

    return audit.Origin(f"local:{socket.gethostname()}", "seamflow-cli")


async def record_cli_action(db: object, action: str, obj: str, detail: Mapping[str, object] | None = None) -> None:
    """Record an action taken by a CLI command over the store `db` (a `store.AuditStore`)."""
    from seamflow import audit

    trail = audit.AuditTrail(db)  # type: ignore[arg-type]  # any opened store is an AuditStore
    await trail.record(
        audit.Action(action),
        obj,
        actor=cli_actor(),
        origin=cli_origin(),
        detail=codec.loads(codec.dumps(dict(detail or {}))),  # type: ignore[arg-type]  # a JSON object
    )


def record_in_project(paths: ProjectPaths, action: str, obj: str, detail: Mapping[str, object] | None = None) -> None:
    """Record an action of a command that works on files only (`secrets set`), opening the store for it.

    If the store cannot be opened the action stands and a warning says it was not recorded.
    """
    from seamflow import errors
    from seamflow.cli.project import open_store

    async def work() -> None:
        db = open_store(paths)
        await db.open()
        try:
            await record_cli_action(db, action, obj, detail)
        finally:
            await db.close()

    try:
        asyncio.run(work())  # the command's one event loop: it did its work on files only
    except errors.SeamflowError as exc:
        click.echo(f"warning: not recorded in the audit trail: {redact.mask_text(exc.message)}", err=True)


async def _with_trail(project: Path, database: str | None, work: Callable[[audit.AuditTrail], Awaitable[T]]) -> T:
    from seamflow import audit
    from seamflow.cli.project import open_store

    paths = ProjectPaths(project)
    paths.load_dotenv()
    db = open_store(paths, database)
    await db.open()
    try:
        return await work(audit.AuditTrail(db, anchor_key=_anchor_key(paths)))
    finally:
        await db.close()


def _anchor_key(paths: ProjectPaths) -> bytes | None:
    """The key that signs prune anchors, derived from the project's secret key (None if it has none)."""
    from seamflow import engine

    raw = os.environ.get(engine.secrets.KEY_ENV, "")
    key_file = paths.root / engine.secrets.KEY_FILE
    if not raw and key_file.is_file():
        raw = key_file.read_text(encoding="utf-8")
    if not raw.strip():
        return None
    return hashlib.sha256(b"seamflow.audit.anchor\0" + raw.strip().encode()).digest()


def _instant(_: object, __: object, value: str | None) -> datetime | None:
    """A click callback: an ISO 8601 date or instant (a date or an instant without zone is UTC)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date or time; expected ISO 8601, e.g. 2026-12-01 or 2026-12-01T08:00:00+08:00"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@click.group("audit")
def audit_group() -> None:
    """The audit trail: who did what, when, on which object and from where (hash-chained)."""


@audit_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="the verdict as one JSON document")
@project_option
@database_option
def audit_verify(as_json: bool, project: Path, database: str | None) -> None:
    """Check the hash chain; exit 1 naming the first entry deleted, edited or reordered.

    The last entry's seq and hash are printed: keep them elsewhere (a ticket, a log server) to
    notice later that entries were removed from the end, which no chain shows by itself.
    """

    async def work(trail: audit.AuditTrail) -> audit.Verdict:
        return await trail.verify()

    verdict = run(_with_trail(project, database, work))
    if as_json:
        click.echo(
            codec.dumps_text(
                {
                    "intact": verdict.is_intact,
                    "checked": verdict.checked,
                    "first_broken": verdict.first_broken,
                    "problem": verdict.problem,
                    "head_seq": verdict.head_seq,
                    "head_hash": verdict.head_hash,
                    "note": verdict.note,
                }
            )
        )
    elif verdict.is_intact:
        click.echo(f"audit trail intact: {verdict.checked} entries; head {verdict.head_seq} {verdict.head_hash or '-'}")
    else:
        click.echo(f"audit trail broken at entry {verdict.first_broken}: {verdict.problem}", err=True)
    if verdict.note and not as_json:
        click.echo(f"note: {verdict.note}", err=True)
    if not verdict.is_intact:
        sys.exit(1)


@audit_group.command("export")
@click.option("--since", callback=_instant, help="only entries from this date or instant (ISO 8601; UTC if no zone)")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="write to this file instead of stdout"
)
@project_option
@database_option
def audit_export(since: datetime | None, output: Path | None, project: Path, database: str | None) -> None:
    """Write the entries as JSON Lines, oldest first, each with its seq, hash and prev_hash."""

    async def work(trail: audit.AuditTrail) -> int:
        count = 0
        out = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            async for entry in trail.export(since=since):
                out.write(codec.dumps_text(entry) + "\n")
                count += 1
        finally:
            if output:
                out.close()
        return count

    count = run(_with_trail(project, database, work))
    if output:
        click.echo(f"exported {count} audit entries to {output}", err=True)


@audit_group.command("prune")
@click.option(
    "--before", required=True, callback=_instant, help="delete entries older than this date or instant (ISO 8601)"
)
@project_option
@database_option
def audit_prune(before: datetime, project: Path, database: str | None) -> None:
    """Delete old entries; an `audit.pruned` anchor entry keeps the chain verifiable.

    Export them first (`seamflow audit export`) if they must be kept elsewhere.
    """

    async def work(trail: audit.AuditTrail) -> int:
        return await trail.prune(before, actor=cli_actor(), origin=cli_origin())

    deleted = run(_with_trail(project, database, work))
    click.echo(f"deleted {deleted} audit entries older than {before.isoformat()}")
