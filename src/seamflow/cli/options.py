"""What the `seamflow` commands share: the project and database options, duration options, and the one `asyncio.run`.

This module imports only click and the leaves: `seamflow --help` must stay fast, so each command
imports the engine, the store or the API inside its own body.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from seamflow import errors, redact

if TYPE_CHECKING:
    from seamflow.cli.project import ProjectPaths

__all__ = [
    "database_option",
    "duration",
    "fail",
    "listen_address",
    "locate_project",
    "open_project",
    "postgres_database_option",
    "project_option",
    "run",
]

T = TypeVar("T")


def locate_project(_: object, __: object, value: Path) -> Path:
    """Without --project: the nearest project folder from the current one upwards (else the current one)."""
    if value != Path("."):
        return value
    import os

    from seamflow.cli.project import find_project

    found = find_project(value)
    # relative, as the user would type it: messages then name `flows/a.yaml` or `../flows/a.yaml`
    return Path(os.path.relpath(found)) if found is not None else value


project_option = click.option(
    "--project",
    "-p",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    callback=locate_project,
    help="the project folder (holds flows/ and connections.yaml) [default: the nearest from here upwards]",
)
database_option = click.option(
    "--database",
    help="the store: a postgresql:// URL or a SQLite file"
    " (default: $SEAMFLOW_DATABASE_URL, else <project>/.seamflow/seamflow.db)",
)
postgres_database_option = click.option(
    "--database",
    help="the PostgreSQL store these processes share, a postgresql:// URL (default: $SEAMFLOW_DATABASE_URL)",
)


def fail(exc: errors.SeamflowError) -> NoReturn:
    """End the command with one line, `error [code]: message` (secrets masked), and the error's exit code."""
    click.echo(f"error [{exc.code}]: {redact.mask_text(exc.message)}", err=True)
    sys.exit(exc.exit_code)


def open_project(project: Path) -> ProjectPaths:
    """The project at `project`, its `.env` loaded; outside a project the command ends with one line."""
    from seamflow.cli.project import ProjectPaths, require_project

    paths = ProjectPaths(project)
    try:
        require_project(paths)
    except errors.SeamflowError as exc:
        fail(exc)
    paths.load_dotenv()
    return paths


def run(coro: Awaitable[T]) -> T:
    """The one `asyncio.run` of a CLI process; our errors become a message and an exit code."""
    import asyncio

    try:
        return asyncio.run(coro)  # type: ignore[arg-type]  # a coroutine
    except errors.SeamflowError as exc:
        fail(exc)


def listen_address(_: object, __: object, value: str | None) -> tuple[str, int] | None:
    """A click callback: `HOST:PORT` (or `[v6]:PORT`) to listen on."""
    if not value:
        return None
    host, _sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"got {value!r}; expected HOST:PORT, e.g. 10.0.0.5:9100 or 127.0.0.1:9100")
    return host, int(port)


def duration(_: object, __: object, value: str | None) -> timedelta | None:
    """A click callback: parse a duration option (`30s`, `5m`, `30d`) as flow files do."""
    if value is None or value == "":
        return None
    from seamflow.flows import spec

    try:
        return spec.parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
