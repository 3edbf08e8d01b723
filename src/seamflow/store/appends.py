"""Rows that are only appended and never read back in the same transaction (journal entries,
event-log rows, a finished run's end), collected during a group commit and written with one
multi-row statement per table just before COMMIT.

Why: the writer thread hands the GIL back and waits for it again around every SQLite
statement, and under load the event loop holds it; one statement for a whole batch of rows
instead of one per row shortens every commit cycle, and so the wait of every webhook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, LiteralString

__all__ = ["AppendBuffer", "AppendTable", "RowNotInserted"]

_MAX_ROWS_PER_STATEMENT = 400  # far below SQLite's 32,766 bound parameters for our widths


@dataclass(frozen=True, slots=True)
class AppendTable:
    """A table rows are appended to: `INSERT INTO <table> (<columns>) VALUES …`."""

    insert: LiteralString
    """`INSERT INTO t (a, b, c) VALUES ` — the statement up to its rows."""
    row: LiteralString
    """The placeholders of one row: `(?, ?, ?)`."""
    array_types: tuple[LiteralString, ...] = ()
    """PostgreSQL: the column types, for one `INSERT … SELECT * FROM unnest(%b::t1[], …)` per table
    whatever the number of rows — a statement text that never changes, so it is parsed and planned
    once, where a multi-row VALUES list is new text (parsed again by the driver) at every size. The
    arrays go in binary (`%b`): the text form quotes and escapes every element (a regular expression
    per string, hex for bytea) in Python and parses it again in the server, ~4× the client's CPU."""
    tail: LiteralString = ""
    """The statement after its rows, for rows that must each be written: ` ON CONFLICT … DO NOTHING`
    (events and their dedupe key), or `) AS v WHERE …` for rows that update a table (a run's end,
    fenced by its epoch; `insert` is then `UPDATE t SET a = v.column3, … FROM (VALUES `: the rows'
    columns are column1, column2, … on both backends). If a statement writes fewer rows than it was
    given, `flush` raises `RowNotInserted`. Such a statement begins with INSERT or UPDATE, never
    WITH: Python's sqlite3 (before 3.12) gives no row count (-1) for one that begins with WITH."""


class RowNotInserted(Exception):
    """An appended row was not written (an event's dedupe key was seen, a run's epoch moved on): the
    group commit re-runs the batch unit by unit, where the row is a statement of its own and its unit
    learns the answer."""


class AppendBuffer:
    """Appended rows of the running transaction, per table, in the order they were added.

    Used only by the writer thread: `mark`/`rollback_to` let a unit that fails take its rows
    back; `flush` writes everything before the commit (and before any read of those tables).
    With `arrays` (PostgreSQL over psycopg) a table with `array_types` is one `unnest` statement;
    `once` statements are not taken back with a unit's rows (a spare NOTIFY only wakes a claim).
    """

    def __init__(self, tables: dict[str, AppendTable], adapt: Callable[[str], str], *, arrays: bool = False) -> None:
        self._tables = tables
        self._adapt = adapt
        self._arrays = arrays
        self._rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in tables}
        self._once: dict[str, None] = {}
        self._array_sql = {  # constants only: the tables' own text and column types
            name: table.insert.removesuffix("VALUES ")  # noqa: S608
            + "SELECT * FROM unnest("
            + ", ".join(f"%b::{t}[]" for t in table.array_types)
            + ") AS u("
            + ", ".join(f"column{i}" for i in range(1, len(table.array_types) + 1))
            + ")"
            + table.tail
            for name, table in tables.items()
            if table.array_types
        }
        self.is_optimistic = False
        """Set by the group commit while a batch runs without savepoints: rows whose insert may
        conflict can be appended too, because a conflict re-runs the batch unit by unit."""

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        """Queue one row for `table`."""
        self._rows[table].append(row)

    def once(self, sql: LiteralString) -> None:
        """Run `sql` (no parameters) once in this transaction, at the next flush, however often it is asked
        for: a NOTIFY per committed batch instead of one per accepted run."""
        self._once[sql] = None

    def mark(self) -> dict[str, int]:
        """The current length of every table's rows."""
        return {name: len(rows) for name, rows in self._rows.items()}

    def rollback_to(self, mark: dict[str, int]) -> None:
        """Forget rows added after `mark`."""
        for name, length in mark.items():
            del self._rows[name][length:]

    def clear(self) -> None:
        """Forget every queued row (the transaction was rolled back)."""
        for rows in self._rows.values():
            rows.clear()
        self._once.clear()

    def flush(self, conn: Any) -> None:
        """Write every queued row, one statement per table and up to 400 rows, then the `once` statements."""
        for name, rows in self._rows.items():
            if not rows:
                continue
            table = self._tables[name]
            if self._arrays and table.array_types:
                cursor = conn.execute(self._array_sql[name], [list(column) for column in zip(*rows, strict=True)])
                if table.tail and cursor.rowcount != len(rows):
                    raise RowNotInserted(f"{len(rows) - cursor.rowcount} row(s) of {name} not written")
                rows.clear()
                continue
            for start in range(0, len(rows), _MAX_ROWS_PER_STATEMENT):
                chunk = rows[start : start + _MAX_ROWS_PER_STATEMENT]
                sql = table.insert + ", ".join([table.row] * len(chunk)) + table.tail
                cursor = conn.execute(self._adapt(sql), [value for row in chunk for value in row])
                if table.tail and cursor.rowcount != len(chunk):
                    raise RowNotInserted(f"{len(chunk) - cursor.rowcount} row(s) of {name} not written")
            rows.clear()
        for sql in self._once:
            conn.execute(sql)
        self._once.clear()
