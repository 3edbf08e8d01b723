"""Many rows written with one prepared statement: `bulk_insert` and `upsert` send their rows this way.

SQLAlchemy compiles the statement once for the table, its columns and the dialect; the rows
go to the driver's `executemany` as plain tuples (or mappings for drivers with named
parameters), converted column by column with the dialect's own bind processors. Per row,
Python only builds that tuple: SQLite and psycopg run the prepared statement for each row,
PyMySQL folds the rows into multi-row `INSERT … VALUES (…), (…)` statements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, time
from operator import itemgetter
from typing import Any

import sqlalchemy
from sqlalchemy import Table

from seamflow import errors
from seamflow.ids import Json

__all__ = ["execute_many", "same_columns"]

_Convert = Callable[[Any], Any]


def execute_many(
    conn: sqlalchemy.Connection,
    statement: sqlalchemy.Insert,
    rows: Sequence[Mapping[str, Json]],
    chunk_size: int,
    where: str,
) -> None:
    """Run `statement` (an insert into the reflected table, without values) once per row, `chunk_size` rows per call.

    Every row names the columns of `rows[0]` (see `same_columns`).

    Raises:
        errors.Permanent: an ISO date or time text that does not parse (column and value named).
        sqlalchemy.exc.DBAPIError: the database refused a row; the caller classifies it.
    """
    columns = list(rows[0])
    compiled = statement.compile(dialect=conn.dialect, column_keys=columns, for_executemany=True)
    table = statement.table
    assert isinstance(table, Table)
    positions = compiled.positiontup
    escaped = dict(getattr(compiled, "escaped_bind_names", {}) or {})
    if positions is not None:
        unescaped = {v: k for k, v in escaped.items()}
        names = [unescaped.get(p, p) for p in positions]
    else:
        names = columns
    converters = [_converter(table.c[name], conn.dialect, where) for name in names]
    values: Iterator[Any] = _tuples(rows, names, converters)
    if positions is None:  # psycopg: named parameters
        params = [escaped.get(n, n) for n in names]
        values = (dict(zip(params, row, strict=True)) for row in values)
    sql = compiled.string
    batch: list[Any] = []
    for index, row in enumerate(values, 1):
        batch.append(row)
        if len(batch) == chunk_size or index == len(rows):
            conn.exec_driver_sql(sql, batch)
            batch = []


def same_columns(rows: Sequence[Mapping[str, Json]], where: str) -> list[str]:
    """The columns of `rows[0]`, which every row must name.

    Raises:
        errors.Permanent: an empty row, or a row with other columns than the first (its index named).
    """
    first = list(rows[0])
    if not first:
        raise errors.Permanent("a row has no columns; expected at least one column: value", where=where)
    wanted = set(first)
    for index, row in enumerate(rows):
        if len(row) != len(first) or row.keys() != wanted:
            raise errors.Permanent(
                f"rows[{index}] has columns {sorted(row)}; expected the same columns as rows[0]: {sorted(first)}",
                where=where,
            )
    return first


def _tuples(
    rows: Sequence[Mapping[str, Json]], names: Sequence[str], converters: Sequence[_Convert | None]
) -> Iterator[tuple[Any, ...]]:
    """Each row's values in `names` order, converted where the column needs it."""
    pick = itemgetter(*names)
    converting = [(i, c) for i, c in enumerate(converters) if c is not None]
    if len(names) == 1:  # itemgetter of one name gives the value, not a tuple
        only = converters[0]
        for row in rows:
            value = pick(row)
            yield (only(value) if only is not None else value,)
        return
    if not converting:
        yield from map(pick, rows)
        return
    for row in rows:
        values = list(pick(row))
        for i, convert in converting:
            values[i] = convert(values[i])
        yield tuple(values)


def _converter(column: sqlalchemy.Column[Any], dialect: sqlalchemy.Dialect, where: str) -> _Convert | None:
    """ISO text to date/time for such columns, then the dialect's bind processor; None when nothing is needed."""
    process = _fast_timestamps(column.type.dialect_impl(dialect).bind_processor(dialect))
    try:
        kind = column.type.python_type
    except NotImplementedError:
        kind = object
    parse = {datetime: datetime.fromisoformat, date: date.fromisoformat, time: time.fromisoformat}.get(kind)
    if parse is None:
        return process
    name = f"{column.table.name}.{column.name}"

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = parse(value)
            except ValueError:
                raise errors.Permanent(
                    f"column {name}: got {errors.redact(value)}; expected an ISO 8601 {kind.__name__}", where=where
                ) from None
        return process(value) if process is not None else value

    return convert


_SAMPLE = datetime(2001, 2, 3, 4, 5, 6, 7)


def _fast_timestamps(process: _Convert | None) -> _Convert | None:
    """SQLite keeps timestamps as text: write naive ones with `isoformat` when that gives the very text
    SQLAlchemy's processor would (checked on a sample), which is several times faster per row."""
    if process is None or _processed(process, _SAMPLE) != _SAMPLE.isoformat(" ", "microseconds"):
        return process

    def format_timestamp(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is None:
            return value.isoformat(" ", "microseconds")
        return process(value)

    return format_timestamp


def _processed(process: _Convert, value: datetime) -> Any:
    try:
        return process(value)
    except (TypeError, ValueError):
        return None
