"""What the `seamflow` commands share: the project and database options, duration options, and the one `asyncio.run`.

This module imports only click and the leaves: `seamflow --help` must stay fast, so each command
imports the engine, the store or the API inside its own body.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import click

from seamflow import errors, redact

__all__ = ["database_option", "duration", "postgres_database_option", "project_option", "run"]

T = TypeVar("T")

project_option = click.option(
    "--project",
    "-p",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="the project folder (holds flows/ and connections.yaml)",
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


def run(coro: Awaitable[T]) -> T:
    """The one `asyncio.run` of a CLI process; our errors become a message and an exit code."""
    import asyncio

    try:
        return asyncio.run(coro)  # type: ignore[arg-type]  # a coroutine
    except errors.SeamflowError as exc:
        click.echo(f"error [{exc.code}]: {redact.mask_text(exc.message)}", err=True)
        sys.exit(exc.exit_code)


def duration(_: object, __: object, value: str | None) -> timedelta | None:
    """A click callback: parse a duration option (`30s`, `5m`, `30d`) as flow files do."""
    if value is None or value == "":
        return None
    from seamflow.flows import spec

    try:
        return spec.parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
