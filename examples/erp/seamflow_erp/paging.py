"""Keyset pagination by (updated_at, key): stable when many rows share one timestamp, and resumable by a poller."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, or_
from sqlalchemy.engine import Connection

from seamflow_erp.problems import FieldProblem, Problem

__all__ = ["Page", "PageRequest", "fetch_page"]

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Where a page starts: rows changed at or after `updated_since`, and strictly after `cursor`."""

    updated_since: datetime | None = None
    cursor: str | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[Row[Any]]
    next_cursor: str | None
    has_more: bool


def _encode(updated_at: datetime, key: object) -> str:
    return f"{updated_at.astimezone(UTC).strftime(_TIME_FORMAT)}_{key}"


def _decode(cursor: str, key_type: type[int] | type[str]) -> tuple[datetime, object]:
    try:
        stamp, key = cursor.split("_", 1)
        return datetime.strptime(stamp, _TIME_FORMAT).replace(tzinfo=UTC), key_type(key)
    except ValueError:
        raise Problem(
            422,
            "invalid_input",
            "cursor: not a cursor returned by this API",
            errors=[FieldProblem(parameter="cursor", detail="expected a next_cursor value from a previous page")],
        ) from None


def fetch_page(
    conn: Connection,
    query: Select[Any],
    updated_col: ColumnElement[Any],
    key_col: ColumnElement[Any],
    request: PageRequest,
) -> Page:
    """Run `query` for one page ordered by (updated_at, key); `query` must select both columns."""
    if request.updated_since is not None:
        since = request.updated_since if request.updated_since.tzinfo else request.updated_since.replace(tzinfo=UTC)
        query = query.where(updated_col >= since)
    if request.cursor:
        key_type = int if key_col.type.python_type is int else str
        after_at, after_key = _decode(request.cursor, key_type)
        query = query.where(or_(updated_col > after_at, and_(updated_col == after_at, key_col > after_key)))
    rows = conn.execute(query.order_by(updated_col, key_col).limit(request.limit + 1)).all()
    has_more = len(rows) > request.limit
    rows = rows[: request.limit]
    if rows:
        last = rows[-1]._mapping
        next_cursor: str | None = _encode(last[updated_col], last[key_col])
    else:
        next_cursor = request.cursor
    return Page(rows, next_cursor, has_more)
