"""The `seamflow connections` (list, test) and `seamflow secrets` (set, list, delete, rotate-key) commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from seamflow import codec, errors, redact
from seamflow.cli.audit import record_in_project
from seamflow.cli.options import locate_project, open_project
from seamflow.cli.project import ProjectPaths
from seamflow.cli.table import json_option, print_json, print_table
from seamflow.ids import Json

if TYPE_CHECKING:
    from seamflow import engine

__all__ = ["connections", "prepare_secrets", "remember_secrets", "secrets"]

T = TypeVar("T")
_KEY_IGNORE = "# the key of secrets.enc.yaml: never commit it (secrets.enc.yaml itself is safe to commit)\n"
_project_option = click.option(
    "--project",
    "-p",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    callback=locate_project,
    help="the project folder (holds flows/, connections.yaml and secrets.enc.yaml)"
    " [default: the nearest from here upwards]",
)


def _fail(exc: errors.SeamflowError) -> None:
    click.echo(f"error [{exc.code}]: {redact.mask_text(exc.message)}", err=True)
    sys.exit(exc.exit_code)


def _run(coro: Awaitable[T]) -> T:
    """The one `asyncio.run` of these commands; our errors become a message and an exit code."""
    import asyncio

    try:
        return asyncio.run(coro)  # type: ignore[arg-type]  # a coroutine
    except errors.SeamflowError as exc:
        _fail(exc)
        raise  # unreachable: _fail exits


def prepare_secrets(directory: Path) -> None:
    """For `seamflow init`: create the key file (mode 0600) and make sure git ignores it.

    No secret is stored: a placeholder would be sent to the target as if it were real. Until
    `seamflow secrets set orders_token` (or its variable), `flow validate` and `serve` name it as unset.
    """
    from seamflow import engine

    engine.secrets.create_key_file(directory)
    ignore = directory / ".gitignore"
    existing = ignore.read_text("utf-8") if ignore.exists() else ""
    if ".seamflow/secret.key" not in existing:
        ignore.write_text(existing + _KEY_IGNORE + ".seamflow/secret.key\n", "utf-8")


def remember_secrets(paths: ProjectPaths) -> None:
    """Register the project's secrets with the redactor before showing stored runs.

    Best effort: without the key only the environment's secrets are known (what is stored was
    already masked when it was journaled).
    """
    from seamflow import engine

    paths.load_dotenv()
    try:
        engine.secrets.resolve_secrets(paths.root)
    except errors.InvalidInput:
        engine.secrets.resolve_secrets(None)


def _configs(paths: ProjectPaths) -> dict[str, dict[str, object]]:
    from seamflow.flows import connector_files, load

    connector_files.install_project_connectors(paths.root)  # a broken file: `seamflow flow validate` says how
    if paths.connections is None:
        return {}
    configs, _ = load.load_connections_file(paths.connections)
    return dict(configs)  # type: ignore[arg-type]  # Json values are objects


# --- connections ---------------------------------------------------------------------------------


@click.group()
def connections() -> None:
    """List connections and test that they work."""


@connections.command("list")
@json_option
@_project_option
def connections_list(as_json: bool, project: Path) -> None:
    """List connections: name, connector, concurrency, timeout and the secrets each uses (values as ***)."""
    from seamflow import engine

    paths = open_project(project)
    try:
        sources = {info.name: info.source.value for info in engine.secrets.list_secrets(paths.root)}
        infos = engine.describe_connections(_configs(paths), sources)
    except errors.SeamflowError as exc:
        _fail(exc)
        return
    from seamflow.cli.authorize import token_problems

    problems = _run(token_problems(paths, infos))
    if as_json:
        print_json([{**info.as_json(), **_status(problems.get(info.name))} for info in infos])
        return
    rows = [
        [
            info.name,
            info.connector,
            info.concurrency or None,
            f"{info.timeout.total_seconds():g}s",
            ", ".join(f"{s.name}=*** ({s.source})" for s in info.secrets) or None,
        ]
        for info in infos
    ]
    print_table(
        ["name", "connector", "concurrency", "timeout", "secrets"], rows, empty="no connections in connections.yaml"
    )
    for name, problem in sorted(problems.items()):
        click.echo(f"needs_authorization: {name}: {redact.mask_text(problem)}")


def _status(problem: str | None) -> dict[str, Json]:
    """A connection's status, as `GET /api/v1/connections` gives it."""
    return {"status": "ok"} if problem is None else {"status": "needs_authorization", "problem": problem}


@connections.command("test")
@click.argument("name")
@json_option
@_project_option
def connections_test(name: str, as_json: bool, project: Path) -> None:
    """Open connection NAME and check it with its credentials; exit 0 if it works, 1 if not."""
    from seamflow import engine

    paths = open_project(project)

    async def work() -> engine.ConnectionCheck:
        from seamflow.cli.authorize import stored_tokens

        async with stored_tokens(paths) as tokens:  # a connection that signs in uses (and renews) the stored token
            pool = engine.Pool(
                _configs(paths),
                secrets=engine.load_secrets(root=paths.root),
                env=engine.load_env(),
                state_root=paths.state / "connections",
                tokens=tokens,
                outbound=engine.project_outbound(paths.root),
            )
            return await pool.check(name)

    result = _run(work())
    if as_json:
        click.echo(codec.dumps_text({"ok": result.is_ok, "checked": result.is_checked, "message": result.message}))
    elif result.is_ok:
        click.echo(f"ok: {name}: {result.message}" + ("" if result.is_checked else " (only the config was validated)"))
    else:
        click.echo(f"failed: {name}: {result.message}", err=True)
    sys.exit(0 if result.is_ok else 1)


@connections.command("authorize")
@click.argument("name")
@click.option("--paste", is_flag=True, help="read the redirect URL from stdin (the browser runs on another machine)")
@click.option(
    "--timeout", "timeout_s", type=float, default=300.0, show_default=True, help="seconds to wait for the redirect"
)
@_project_option
def connections_authorize(name: str, paste: bool, timeout_s: float, project: Path) -> None:
    """Sign connection NAME in with OAuth2: print the consent URL, take the redirect, store the tokens.

    NAME is an http connection with auth.oauth2, or an openapi connection whose document has an
    authorizationCode scheme (its URLs and scopes are taken from the document).
    """
    from seamflow.cli.authorize import authorize

    paths = open_project(project)
    _run(authorize(paths, _configs(paths), name, is_paste=paste, timeout_s=timeout_s))


# --- secrets -------------------------------------------------------------------------------------


@click.group()
def secrets() -> None:
    """Keep secrets encrypted in secrets.enc.yaml (environment variables SEAMFLOW_SECRET_<NAME> win)."""


@secrets.command("set")
@click.argument("name")
@_project_option
def secrets_set(name: str, project: Path) -> None:
    """Encrypt a value as secret NAME; the value comes from a hidden prompt, or from stdin when piped."""
    from seamflow import engine

    paths = open_project(project)
    try:
        engine.secrets.check_name(name)
        value = _read_value(name)
        key = _key_creating_file(paths.root)
        engine.secrets.SecretsFile(paths.root).store(key, name, value)
    except errors.SeamflowError as exc:
        _fail(exc)
        return
    click.echo(f"stored secret {name!r} in {engine.secrets.SECRETS_FILE} (read it as {{{{ secrets.{name} }}}})")
    record_in_project(paths, "secret.set", f"secret:{name}")
    variable = engine.secrets.env_variable(name)
    if variable in _environ():
        click.echo(f"note: {variable} is set and wins over the file", err=True)


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if v}


def _read_value(name: str) -> str:
    if sys.stdin.isatty():
        value = str(click.prompt(f"value of {name}", hide_input=True, confirmation_prompt=True))
    else:
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value
        value = value[:-1] if value.endswith("\r") else value
    if not value:
        raise errors.InvalidInput(
            f"the value of secret {name!r} is empty; expected the value on stdin or at the prompt"
        )
    return value


def _key_creating_file(root: Path) -> engine.secrets.SecretKey:
    """The project's key; a project made before encrypted secrets gets its key file now."""
    from seamflow import engine

    if not _environ().get(engine.secrets.KEY_ENV) and not (root / engine.secrets.KEY_FILE).exists():
        path = engine.secrets.create_key_file(root)
        click.echo(f"created the key file {path} (mode 0600); back it up, never commit it", err=True)
    return engine.secrets.read_key(root)


@secrets.command("list")
@json_option
@_project_option
def secrets_list(as_json: bool, project: Path) -> None:
    """List secret names and where each value comes from (env or file); never the values."""
    from seamflow import engine

    paths = open_project(project)
    try:
        infos = engine.secrets.list_secrets(paths.root)
    except errors.SeamflowError as exc:
        _fail(exc)
        return
    if as_json:
        print_json([{"name": i.name, "source": i.source.value, "overrides_file": i.is_overriding_file} for i in infos])
        return
    rows = [
        [
            info.name,
            f"env ({engine.secrets.env_variable(info.name)})" if info.source == "env" else "file",
            "yes" if info.is_overriding_file else None,
        ]
        for info in infos
    ]
    print_table(["name", "source", "overrides file"], rows, empty="no secrets")


@secrets.command("delete")
@click.argument("name")
@_project_option
def secrets_delete(name: str, project: Path) -> None:
    """Remove secret NAME from secrets.enc.yaml."""
    from seamflow import engine

    paths = open_project(project)
    try:
        if not engine.secrets.SecretsFile(paths.root).delete(name):
            raise errors.NotFound(f"secret {name!r} is not stored in {engine.secrets.SECRETS_FILE}")
    except errors.SeamflowError as exc:
        _fail(exc)
        return
    click.echo(f"deleted secret {name!r} from {engine.secrets.SECRETS_FILE}")
    record_in_project(paths, "secret.removed", f"secret:{name}")


@secrets.command("rotate-key")
@_project_option
def secrets_rotate_key(project: Path) -> None:
    """Re-encrypt every stored secret with a new key in .seamflow/secret.key."""
    from seamflow import engine

    paths = open_project(project)
    try:
        count = engine.secrets.rotate_key(paths.root, engine.secrets.read_key(paths.root))
    except errors.SeamflowError as exc:
        _fail(exc)
        return
    click.echo(
        f"re-encrypted {count} secret(s) with a new key in {paths.root / engine.secrets.KEY_FILE};"
        " the old key no longer decrypts them"
    )
    record_in_project(paths, "secret.key_rotated", "secret:*", {"secrets": count})
