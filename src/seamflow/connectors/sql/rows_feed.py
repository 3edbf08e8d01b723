"""The `rows` poll feed: the rows of a table or query that were added or changed since the cursor.

Rows are read in (cursor column, key columns) order and the feed's cursor is the position of
the last row delivered, so rows that share a cursor value (ties on `updated_at`) are neither
skipped nor read twice: the next poll reads `(c, k) > (:c, :k)`. Each item's key is
`source:key:cursor value`, so a row changed again (a new cursor value) is a new item, and a
row read again (`lookback`, a crash before the cursor was stored) is a duplicate.

With `lookback`, a poll that has caught up also re-reads the rows up to `lookback` behind the
cursor, page by page: a row committed late with an earlier cursor value is found there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy
from sqlalchemy import text

from seamflow import errors
from seamflow.connectors.base import Batch, Item
from seamflow.connectors.sql.inputs import RowsFeedInput
from seamflow.connectors.sql.position import Position, after, value_text
from seamflow.connectors.sql.statements import check_params
from seamflow.connectors.sql.tables import Tables, to_json
from seamflow.ids import Json

__all__ = ["RowsPoll", "poll_rows"]


@dataclass(frozen=True, slots=True)
class _Source:
    """The statement parts shared by every read of one poll."""

    inputs: RowsFeedInput
    select: str
    """`SELECT … FROM … WHERE <the feed's own conditions>`."""
    order: list[str]
    """The quoted cursor and key columns."""
    params: dict[str, Any]
    zone: tzinfo


@dataclass(slots=True)
class _State:
    """The feed's cursor: the last row delivered, where the lookback re-read continues, and where
    `start: now` started (the re-read never goes behind it, so no history is replayed)."""

    is_started: bool = False
    at: Position | None = None
    behind: Position | None = None
    origin: Position | None = None

    def to_json(self, where: str) -> Json:
        state: dict[str, Json] = {"after": None}
        if self.at is not None:
            state = dict(_object(self.at.to_json(where)))
        for name, position in (("behind", self.behind), ("origin", self.origin)):
            if position is not None:
                state[name] = position.to_json(where)
        return state


@dataclass(slots=True)
class _Read:
    rows: list[sqlalchemy.RowMapping] = field(default_factory=list)
    is_cut: bool = False
    """More rows matched than were asked for."""


@dataclass(frozen=True, slots=True)
class RowsPoll:
    """One poll of the `rows` feed: its settings, the stored cursor and the most rows to return."""

    inputs: RowsFeedInput
    cursor: Json
    limit: int


def poll_rows(conn: sqlalchemy.Connection, tables: Tables, request: RowsPoll, where: str) -> Batch:
    """Read at most `request.limit` rows after `request.cursor` (blocking: runs in a worker thread)."""
    inputs, limit = request.inputs, request.limit
    source = _source(conn, tables, inputs, where)
    state = _state(request.cursor, 1 + len(inputs.key), where)
    if not state.is_started and inputs.start == "now":
        last = _read(conn, source, limit=1, descending=True).rows
        newest = _position(source, last[0], where) if last else None
        return Batch([], cursor=_State(True, newest, origin=newest).to_json(where))
    read = _read(conn, source, limit=limit, start=state.at)
    items = [_item(source, row, where) for row in read.rows]
    at = _position(source, read.rows[-1], where) if read.rows else state.at
    behind, more = state.behind, read.is_cut
    room = limit - len(items)
    if inputs.lookback is not None and at is not None and state.at is not None and not more and room > 0:
        # Up to the cursor this poll started from: the rows read above need no re-reading yet.
        floor = _floor(at.values[0], inputs.lookback, inputs.cursor, where)
        window = _read(conn, source, limit=room, start=behind or state.origin, end=state.at, floor=floor)
        items += [_item(source, row, where) for row in window.rows]
        behind = _position(source, window.rows[-1], where) if window.is_cut else None
        more = window.is_cut
    return Batch(items, cursor=_State(True, at, behind, state.origin).to_json(where), more=more)


def _source(conn: sqlalchemy.Connection, tables: Tables, inputs: RowsFeedInput, where: str) -> _Source:
    quote = conn.dialect.identifier_preparer.quote
    ordering = [inputs.cursor, *inputs.key]
    wanted = [*(inputs.columns or []), *(c for c in ordering if c not in (inputs.columns or []))]
    if inputs.table is not None:
        table = tables.get(conn, inputs.table, wanted, where)
        origin = conn.dialect.identifier_preparer.format_table(table)
    else:
        assert inputs.query is not None
        origin = f"({inputs.query.strip().rstrip(';')}) AS seamflow_source"
    user_sql = " ".join(filter(None, [inputs.query, inputs.where]))
    check_params(text(user_sql), inputs.params, where)
    columns = ", ".join(map(quote, wanted)) if inputs.columns else "*"
    conditions = [f"{quote(inputs.cursor)} IS NOT NULL", *([f"({inputs.where})"] if inputs.where else [])]
    try:
        zone: tzinfo = ZoneInfo(inputs.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.Permanent(
            f"timezone {errors.redact(inputs.timezone)} is unknown; expected an IANA name such as Asia/Shanghai",
            where=where,
        ) from None
    select = f"SELECT {columns} FROM {origin} WHERE {' AND '.join(conditions)}"  # noqa: S608  # names quoted, values bound
    return _Source(inputs, select, [quote(c) for c in ordering], dict(inputs.params), zone)


def _read(
    conn: sqlalchemy.Connection,
    source: _Source,
    *,
    limit: int,
    start: Position | None = None,
    end: Position | None = None,
    floor: Any = None,
    descending: bool = False,
) -> _Read:
    """The rows after `start`, up to and including `end`, from `floor` on, in (cursor, key) order."""
    sql, params = [source.select], dict(source.params)
    if start is not None:
        sql.append(f"AND {after(source.order, 'seamflow_a')}")
        params |= start.params("seamflow_a")
    if end is not None:
        sql.append(f"AND NOT {after(source.order, 'seamflow_b')}")
        params |= end.params("seamflow_b")
    if floor is not None:
        sql.append(f"AND {source.order[0]} >= :seamflow_floor")
        params["seamflow_floor"] = floor
    direction = " DESC" if descending else ""
    sql.append(f"ORDER BY {', '.join(c + direction for c in source.order)} LIMIT {int(limit) + 1}")
    rows = list(conn.execute(text(" ".join(sql)), params).mappings())
    return _Read(rows[:limit], len(rows) > limit)


def _item(source: _Source, row: sqlalchemy.RowMapping, where: str) -> Item:
    inputs = source.inputs
    cursor, keys = _ordering(source, row, where)
    key = ",".join(_escaped(value_text(k)) for k in keys)
    return Item(
        body={str(name): to_json(value) for name, value in row.items()},
        key=f"{inputs.source_name}:{key}:{value_text(cursor)}",
        at=_moment(cursor, source.zone),
    )


def _position(source: _Source, row: sqlalchemy.RowMapping, where: str) -> Position:
    cursor, keys = _ordering(source, row, where)
    return Position((cursor, *keys))


def _ordering(source: _Source, row: sqlalchemy.RowMapping, where: str) -> tuple[Any, list[Any]]:
    """The row's cursor value and key values."""
    inputs = source.inputs
    try:
        return row[inputs.cursor], [row[k] for k in inputs.key]
    except KeyError as exc:
        raise errors.Permanent(
            f"the rows have no column {errors.redact(exc.args[0])}; expected the cursor and key columns "
            f"among {', '.join(map(str, row.keys()))}",
            where=where,
        ) from None


def _state(cursor: Json, width: int, where: str) -> _State:
    if cursor is None:
        return _State()
    if isinstance(cursor, dict) and cursor.get("after") is None:
        return _State(is_started=True)
    found = cursor if isinstance(cursor, dict) else {}
    behind, origin = found.get("behind"), found.get("origin")
    return _State(
        True,
        Position.from_json(cursor, width, "cursor", where),
        None if behind is None else Position.from_json(behind, width, "cursor.behind", where),
        None if origin is None else Position.from_json(origin, width, "cursor.origin", where),
    )


def _object(value: Json) -> dict[str, Json]:
    assert isinstance(value, dict)
    return value


def _floor(value: Any, lookback: timedelta | int, column: str, where: str) -> Any:
    """The cursor value `lookback` behind `value`: where the lookback re-read starts."""
    if isinstance(lookback, timedelta) and isinstance(value, datetime | date):
        return value - lookback
    if isinstance(lookback, timedelta) and isinstance(value, str) and (moment := _timestamp(value)) is not None:
        return (moment - lookback).isoformat(sep="T" if "T" in value else " ")  # SQLite: the text as stored
    if isinstance(lookback, int) and isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value - lookback
    shown = f"{lookback.total_seconds():g} s" if isinstance(lookback, timedelta) else str(lookback)
    raise errors.Permanent(
        f"lookback {shown} does not fit the cursor column {column!r}, which holds {type(value).__name__} values; "
        "expected a duration (5m) for a timestamp cursor or a number for a numeric one",
        where=where,
    )


def _moment(value: Any, zone: tzinfo) -> datetime | None:
    """The cursor value as the item's time, if it is a timestamp (naive ones are in `zone`)."""
    moment = value if isinstance(value, datetime) else _timestamp(value) if isinstance(value, str) else None
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=zone)


def _timestamp(value: str) -> datetime | None:
    """A timestamp stored as text (SQLite): `2026-05-06 07:08:09` or ISO 8601."""
    if len(value) < 19 or value[4] != "-" or value[10] not in " T":
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _escaped(value: str) -> str:
    """A key value in an item key: `%`, `:` and `,` escaped, so that no two keys read alike."""
    return value.replace("%", "%25").replace(":", "%3A").replace(",", "%2C")
