"""A large `query` result read chunk by chunk (`Streams.stream`), resumable from a chunk's position.

With `key` (columns unique in the result) each chunk is its own short read: rows after the
last key read, in key order, so reading resumes exactly there, also in another process.
Without `key` one server-side cursor (PostgreSQL's named cursor, MySQL's unbuffered cursor,
SQLite's lazy one) feeds every chunk; the position counts rows, and a restart skips that many
rows, which is right only if the statement has an ORDER BY that makes its order stable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy import text

from seamflow import errors
from seamflow.connectors.base import Chunk
from seamflow.connectors.sql.inputs import StreamInput
from seamflow.connectors.sql.position import Position, after
from seamflow.connectors.sql.statements import check_params, row_json
from seamflow.ids import Json

__all__ = ["StreamRequest", "stream_query"]

T = TypeVar("T")
Blocking = Callable[[Callable[[], T]], Awaitable[T]]
"""Runs blocking database work in a worker thread, bounded and with its errors classified."""


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """What to stream: the query's inputs, where to start (a chunk's position, None: the first row), chunk size."""

    inputs: StreamInput
    start: Json
    chunk_rows: int


async def stream_query(
    engine: sqlalchemy.Engine, request: StreamRequest, blocking: Blocking[Any], where: str
) -> AsyncIterator[Chunk]:
    """Yield the rows of the query in chunks of `chunk_rows`, from `start`."""
    inputs, start, chunk_rows = request.inputs, request.start, request.chunk_rows
    check_params(text(inputs.sql), inputs.params, where)
    read = _rows_read(start, where)
    if inputs.key is not None:
        position = _after(start, len(inputs.key), where)
        while True:
            page = await blocking(partial(_page, engine, inputs, position, chunk_rows, where))
            rows, position = page
            if not rows or position is None:
                return
            read += len(rows)
            yield Chunk(rows, {**_object(position.to_json(where)), "rows": read})
            if len(rows) < chunk_rows:
                return
    cursor: _ServerCursor = await blocking(partial(_ServerCursor, engine, inputs))
    try:
        skipped = 0
        while skipped < read and (count := await blocking(partial(cursor.skip, min(chunk_rows, read - skipped)))):
            skipped += count
        while rows := await blocking(partial(cursor.fetch, chunk_rows)):
            read += len(rows)
            yield Chunk(rows, {"rows": read})
    finally:
        await blocking(cursor.close)


def _page(
    engine: sqlalchemy.Engine, inputs: StreamInput, position: Position | None, chunk_rows: int, where: str
) -> tuple[list[Json], Position | None]:
    """One chunk of a keyset read, and the position after it."""
    assert inputs.key is not None
    with engine.connect() as conn:  # closing without commit rolls back: only reads
        quote = conn.dialect.identifier_preparer.quote
        order = [quote(k) for k in inputs.key]
        sql = [f"SELECT * FROM ({inputs.sql.strip().rstrip(';')}) AS seamflow_source"]  # noqa: S608  # values bound
        params = dict(inputs.params)
        if position is not None:
            sql.append(f"WHERE {after(order, 'seamflow_a')}")
            params |= position.params("seamflow_a")
        sql.append(f"ORDER BY {', '.join(order)} LIMIT {int(chunk_rows)}")
        rows = list(conn.execute(text(" ".join(sql)), params).mappings())
    if not rows:
        return [], position
    try:
        last = Position(tuple(rows[-1][k] for k in inputs.key))
    except KeyError as exc:
        raise errors.Permanent(
            f"the rows have no key column {errors.redact(exc.args[0])}; expected it among "
            f"{', '.join(map(str, rows[-1].keys()))}",
            where=where,
        ) from None
    return [row_json(row) for row in rows], last


class _ServerCursor:
    """One connection reading one result with a server-side cursor, a chunk at a time."""

    def __init__(self, engine: sqlalchemy.Engine, inputs: StreamInput) -> None:
        self._conn = engine.connect()
        try:
            result = self._conn.execution_options(stream_results=True).execute(text(inputs.sql), inputs.params)
        except BaseException:
            self._conn.close()
            raise
        self._result = result.mappings() if result.returns_rows else None

    def fetch(self, count: int) -> list[Json]:
        return [] if self._result is None else [row_json(row) for row in self._result.fetchmany(count)]

    def skip(self, count: int) -> int:
        """Read and drop up to `count` rows; return how many there were."""
        return 0 if self._result is None else len(self._result.fetchmany(count))

    def close(self) -> None:
        """Close the result and give the connection back, rolling back (it only read)."""
        try:
            if self._result is not None:
                self._result.close()
        finally:
            self._conn.close()


def _rows_read(start: Json, where: str) -> int:
    if start is None:
        return 0
    rows = start.get("rows") if isinstance(start, dict) else None
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise errors.Permanent(
            f"start {errors.redact(start, 200)} is not a position of this stream; "
            'expected {"rows": n} or {"after": [...], "kinds": [...], "rows": n} from an earlier chunk',
            where=where,
        )
    return rows


def _after(start: Json, width: int, where: str) -> Position | None:
    """The key position of `start`, or None to read from the first row."""
    if not isinstance(start, dict) or start.get("after") is None:
        return None
    return Position.from_json(start, width, "start", where)


def _object(value: Json) -> dict[str, Json]:
    assert isinstance(value, dict)
    return value
