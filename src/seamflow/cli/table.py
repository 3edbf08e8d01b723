"""How every listing command prints: a table with headers, or JSON with `--json`.

On a terminal the table is drawn with Rich; in a pipe, a file or a test it is plain text in
fixed columns (two spaces apart, no colour, no cut cells), so `grep`, `awk` and tests see
stable columns. `--json` prints the same rows as one JSON array, secrets masked.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from seamflow import codec, redact
from seamflow.ids import Json

__all__ = ["Column", "json_option", "print_json", "print_table"]

Column = str
"""A column's header, shown in capitals."""

json_option = click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")


def print_json(value: Json) -> None:
    """Print `value` as JSON, every secret masked."""
    click.echo(codec.dumps_text(redact.mask(value)))


def print_table(columns: Sequence[Column], rows: Sequence[Sequence[object]], *, empty: str) -> None:
    """Print rows under their headers; `empty` (e.g. "no runs") when there are none.

    Args:
        columns: the headers, one per column.
        rows: the cells; `None` shows as `-`, everything else with `str`.
        empty: the line printed instead of an empty table.
    """
    cells = [[redact.mask_text("-" if cell is None else str(cell)) for cell in row] for row in rows]
    if not cells:
        click.echo(empty)
        return
    if _is_terminal():
        _print_rich(columns, cells)
        return
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    _echo_row([c.upper() for c in columns], widths)
    for row in cells:
        _echo_row(row, widths)


def _echo_row(row: Sequence[str], widths: Sequence[int]) -> None:
    padded = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
    click.echo("  ".join([*padded, row[-1]]).rstrip())


def _is_terminal() -> bool:
    isatty: Callable[[], bool] | None = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def _print_rich(columns: Sequence[Column], cells: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table: Any = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column.upper(), overflow="fold")
    for row in cells:
        table.add_row(*(Text(cell) for cell in row), style=_row_style(row))  # Text: `[x]` is not markup
    Console(highlight=False).print(table)


def _row_style(row: Sequence[str]) -> str | None:
    """Dead letters and failures in red, runs still going in yellow (terminal only)."""
    if any(cell in ("dead_letter", "failed", "stopped", "silent") for cell in row):
        return "red"
    if any(cell in ("running", "waiting", "queued", "retrying") for cell in row):
        return "yellow"
    return None
