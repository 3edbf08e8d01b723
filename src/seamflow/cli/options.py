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


PROCESS_OPTIONS = (
    click.option("--host", default="127.0.0.1", show_default=True, help="the address to listen on"),
    click.option("--workers", default=64, show_default=True, type=int, help="runs executing at once, in each process"),
    click.option(
        "--lease",
        default="30s",
        show_default=True,
        envvar="SEAMFLOW_LEASE",
        callback=duration,
        help="how long a run stays with a silent process before others take it over [$SEAMFLOW_LEASE]",
    ),
    click.option(
        "--header-timeout",
        default="10s",
        show_default=True,
        envvar="SEAMFLOW_HEADER_TIMEOUT",
        callback=duration,
        help="close a connection whose request headers take longer (slow clients) [$SEAMFLOW_HEADER_TIMEOUT]",
    ),
    click.option(
        "--body-timeout",
        default="60s",
        show_default=True,
        envvar="SEAMFLOW_BODY_TIMEOUT",
        callback=duration,
        help="close a connection whose request body takes longer after its headers [$SEAMFLOW_BODY_TIMEOUT]",
    ),
    click.option(
        "--metrics-listen",
        default=None,
        envvar="SEAMFLOW_METRICS_LISTEN",
        callback=listen_address,
        help="also serve /metrics and detailed health without a token on HOST:PORT, an address only"
        " monitoring reaches (else /metrics needs a token with the read scope) [$SEAMFLOW_METRICS_LISTEN]",
    ),
    click.option(
        "--retention",
        default=None,
        envvar="SEAMFLOW_RETENTION",
        callback=duration,
        help="prune runs finished longer ago than this, e.g. 30d (default: keep) [$SEAMFLOW_RETENTION]",
    ),
    click.option(
        "--log-level",
        default="info",
        show_default=True,
        type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
        help="the lowest level logged",
    ),
    click.option(
        "--log-format",
        default="auto",
        show_default=True,
        envvar="SEAMFLOW_LOG_FORMAT",
        type=click.Choice(["auto", "json", "text"]),
        help="log lines as JSON or as coloured text; auto: text on a terminal, JSON otherwise [$SEAMFLOW_LOG_FORMAT]",
    ),
    click.option(
        "--watch/--no-watch",
        default=True,
        show_default=True,
        envvar="SEAMFLOW_WATCH",
        help="reload flows when files in flows/ are added, changed or removed"
        " (else: `seamflow flow reload` or SIGHUP) [$SEAMFLOW_WATCH]",
    ),
)
"""The options of every long-running process (`serve`, `api`, `worker`) after the project and database."""
