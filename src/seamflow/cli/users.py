"""`seamflow users import|list|set-password|grant|revoke|grants|token …`: the directory from the command line.

Each command opens the project's store directly (no engine, no running server needed); the
directory package checks and decides. Passwords are read from a prompt or stdin, never from an
argument (arguments end up in shell history and `ps`).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from seamflow import codec
from seamflow.cli.audit import cli_actor, record_cli_action
from seamflow.cli.options import database_option, duration, project_option, run
from seamflow.cli.project import ProjectPaths
from seamflow.ids import Json

if TYPE_CHECKING:
    from seamflow import directory, store

__all__ = ["users_group"]

T = TypeVar("T")
_SCOPES = ("read", "operate", "build", "approve", "admin")


async def _with_directory(
    project: Path, database: str | None, work: Callable[[directory.Directory], Awaitable[T]]
) -> T:
    from seamflow import directory
    from seamflow.cli.project import open_store

    paths = ProjectPaths(project)
    paths.load_dotenv()
    db = open_store(paths, database)
    await db.open()
    try:
        return await work(directory.Directory(db, flows_root=paths.flows))
    finally:
        await db.close()


@click.group("users")
def users_group() -> None:
    """The directory: users, departments, positions, passwords and personal API tokens."""


@users_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@project_option
@database_option
def users_import(file: Path, project: Path, database: str | None) -> None:
    """Upsert the departments, positions and users of FILE (directory.yaml), all or nothing.

    Users are matched by login, departments and positions by id; running it again with the
    same file changes nothing. Every problem is listed with file:line:column.
    """
    from seamflow import directory

    async def work(people: directory.Directory) -> dict[str, int]:
        before = {u.login: set(u.roles or ()) for u in await people.db.list_users()}
        counts = await people.import_file(directory.read_directory_file(file))
        await record_cli_action(people.db, "directory.imported", f"file:{file.name}", dict(counts))
        for user in await people.db.list_users():  # each role a user gained is a grant of its own
            granted = sorted(set(user.roles or ()) - before.get(user.login, set()))
            if granted:
                detail = {"granted": granted, "roles": sorted(user.roles or ()), "file": file.name}
                await record_cli_action(people.db, "role.granted", f"user:{user.login}", detail)
        return counts

    counts = run(_with_directory(project, database, work))
    click.echo(
        f"imported {counts['departments']} department(s), {counts['positions']} position(s)"
        f" and {counts['users']} user(s) from {file}"
    )


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="one JSON document instead of a table")
@project_option
@database_option
def users_list(as_json: bool, project: Path, database: str | None) -> None:
    """Every user with department, positions, manager and roles (never passwords)."""
    from seamflow import directory

    async def work(people: directory.Directory) -> list[store.StoredUser]:
        return await people.db.list_users()

    users = run(_with_directory(project, database, work))
    if as_json:
        click.echo(codec.dumps_text([directory.user_json(u) for u in users]))
        return
    for u in users:
        state = "" if u.is_active else "  (inactive)"
        click.echo(
            f"{u.login:16} {u.display_name:8} {u.department_id or '-':12} manager={u.manager_login or '-':12}"
            f" positions={','.join(u.positions or ()) or '-'} roles={','.join(u.roles or ()) or '-'}{state}"
        )
    if not users:
        click.echo("no users; add them with `seamflow users import directory.yaml`")


@users_group.command("set-password")
@click.argument("login")
@click.option("--stdin", "from_stdin", is_flag=True, help="read the password from standard input (scripts)")
@project_option
@database_option
def users_set_password(login: str, from_stdin: bool, project: Path, database: str | None) -> None:
    """Set LOGIN's password (asked twice, not echoed) and lift a lockout."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("new password", hide_input=True, confirmation_prompt=True)

    async def work(people: directory.Directory) -> None:
        await people.set_password(login, password)
        await record_cli_action(people.db, "user.password_set", f"user:{login}")

    run(_with_directory(project, database, work))
    click.echo(f"set the password of {login!r}")


@users_group.group("token")
def token_group() -> None:
    """Personal API tokens: create (shown once), list, revoke."""


@token_group.command("create")
@click.argument("login")
@click.option("--name", required=True, help="what the token is for, e.g. 'month-end report script'")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(_SCOPES),
    help="what it may do (repeat); default: everything LOGIN's roles grant",
)
@click.option("--expires-in", callback=duration, help="lifetime, e.g. 90d or 12h (default: no expiry)")
@click.option(
    "--flow",
    "targets",
    multiple=True,
    help="limit the token to a flow (flow:<id>) or a folder of flows (folder:<path>/); repeat",
)
@project_option
@database_option
def token_create(
    login: str,
    name: str,
    scopes: tuple[str, ...],
    expires_in: timedelta | None,
    targets: tuple[str, ...],
    project: Path,
    database: str | None,
) -> None:
    """Create a personal API token for LOGIN; the token is printed once, on stdout."""
    from seamflow import directory

    async def work(people: directory.Directory) -> directory.IssuedToken:
        wanted = [directory.Scope(s) for s in scopes] if scopes else None
        issued = await people.create_token(login, name, wanted, expires_in, targets=targets)
        detail = {"login": login, "name": name, "scopes": list(issued.token.scopes), "targets": list(targets)}
        await record_cli_action(people.db, "token.created", f"token:{issued.token.id}", detail)
        return issued

    issued = run(_with_directory(project, database, work))
    expires = issued.token.expires.isoformat(timespec="seconds") if issued.token.expires else "never"
    click.echo(
        f"created token {issued.token.id} for {login!r}: scopes {','.join(issued.token.scopes)}, expires {expires}."
        " It is shown only now; store it safely:",
        err=True,
    )
    click.echo(issued.secret)


@token_group.command("list")
@click.argument("login", required=False)
@project_option
@database_option
def token_list(login: str | None, project: Path, database: str | None) -> None:
    """Personal API tokens (of LOGIN, or everyone's), without their secrets."""
    from seamflow import directory

    async def work(people: directory.Directory) -> list[dict[str, Json]]:
        if login is not None:
            await people.user(login)
        return [directory.token_json(t) for t in await people.db.list_user_tokens(login)]

    tokens = run(_with_directory(project, database, work))
    for t in tokens:
        state = "revoked" if t["revoked"] else f"expires {t['expires'] or 'never'}"
        click.echo(
            f"{t['id']}  {t['login']!s:12} {t['name']!s:24} scopes={','.join(map(str, t['scopes']))}"  # type: ignore[arg-type]
            + (f" flows={','.join(map(str, t['targets']))}" if t["targets"] else "")  # type: ignore[arg-type]
            + f"  {state}  last used {t['last_used'] or 'never'}"
        )
    if not tokens:
        click.echo("no tokens")


@token_group.command("revoke")
@click.argument("token_id")
@project_option
@database_option
def token_revoke(token_id: str, project: Path, database: str | None) -> None:
    """Revoke the personal API token TOKEN_ID at once."""

    async def work(people: directory.Directory) -> None:
        await people.revoke_token(token_id)
        await record_cli_action(people.db, "token.revoked", f"token:{token_id}")

    run(_with_directory(project, database, work))
    click.echo(f"revoked token {token_id}")


@users_group.command("grant")
@click.argument("subject")
@click.argument("role", type=click.Choice(("viewer", "operator", "builder", "approver", "admin")))
@click.argument("target")
@project_option
@database_option
def users_grant(subject: str, role: str, target: str, project: Path, database: str | None) -> None:
    """Give SUBJECT the ROLE on TARGET: a flow (flow:<id>) or a folder of flows (folder:<path>/).

    SUBJECT is a login, user:<login>, department:<id> (its members) or position:<id> (its holders).
    Example: seamflow users grant zhangwei operator folder:finance/
    """

    async def work(people: directory.Directory) -> tuple[store.StoredGrant, bool]:
        row, is_new = await people.grant(subject, role, target, by=_cli_login())
        if is_new:
            await record_cli_action(people.db, "role.granted", row.subject, {"role": row.role, "target": row.target})
        return row, is_new

    row, is_new = run(_with_directory(project, database, work))
    click.echo(f"{'granted' if is_new else 'already granted:'} {row.role} on {row.target} to {row.subject}")


@users_group.command("revoke")
@click.argument("subject")
@click.argument("role", type=click.Choice(("viewer", "operator", "builder", "approver", "admin")))
@click.argument("target")
@project_option
@database_option
def users_revoke(subject: str, role: str, target: str, project: Path, database: str | None) -> None:
    """Take away the ROLE on TARGET from SUBJECT (as given to `users grant`)."""

    async def work(people: directory.Directory) -> store.StoredGrant:
        row = await people.revoke_grant(subject, role, target)
        await record_cli_action(people.db, "role.revoked", row.subject, {"role": row.role, "target": row.target})
        return row

    row = run(_with_directory(project, database, work))
    click.echo(f"revoked {row.role} on {row.target} from {row.subject}")


@users_group.command("grants")
@click.argument("subject", required=False)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@project_option
@database_option
def users_grants(subject: str | None, as_json: bool, project: Path, database: str | None) -> None:
    """Grants on flows and folders (of SUBJECT, or everyone's)."""
    from seamflow import directory

    async def work(people: directory.Directory) -> list[dict[str, Json]]:
        wanted = [directory.check_subject(subject)] if subject else None
        return [directory.grant_json(g) for g in await people.db.list_grants(wanted)]

    grants = run(_with_directory(project, database, work))
    if as_json:
        click.echo(codec.dumps(list[Json](grants)))
        return
    for g in grants:
        click.echo(f"{g['subject']!s:24} {g['role']!s:9} {g['target']}  (by {g['created_by']}, {g['created']})")
    if not grants:
        click.echo("no grants")


def _cli_login() -> str:
    """Who grants from the command line, as the grant records it (`@cli:<os user>`)."""
    return cli_actor().id
