"""Tables as reflected from the database, and values converted between JSON and columns.

A table is reflected once per connection and kept; a column it does not know makes it
reflect again once, so a column added while Seamflow runs is found.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy
from sqlalchemy import Column, MetaData, Table

from seamflow import errors
from seamflow.ids import Json

__all__ = ["Tables", "bind_row", "to_json"]


class Tables:
    """The reflected tables of one connection, looked up by the name written in the flow."""

    def __init__(self) -> None:
        self._known: dict[str, Table] = {}
        self._lock = threading.Lock()

    def get(self, conn: sqlalchemy.Connection, name: str, columns: Sequence[str], where: str) -> Table:
        """Return table `name` knowing every one of `columns`.

        Raises:
            errors.Permanent: no such table, or a column it does not have (both named).
        """
        table = self._known.get(name)
        if table is None or any(c not in table.c for c in columns):
            table = self._reflect(conn, name, where)
        unknown = [c for c in columns if c not in table.c]
        if unknown:
            raise errors.Permanent(
                f"table {name!r} has no column {', '.join(map(repr, unknown))}; "
                f"expected one of {', '.join(c.name for c in table.c)}",
                where=where,
            )
        return table

    def _reflect(self, conn: sqlalchemy.Connection, name: str, where: str) -> Table:
        schema, _, bare = name.rpartition(".")
        try:
            table = Table(bare, MetaData(), schema=schema or None, autoload_with=conn)
        except sqlalchemy.exc.NoSuchTableError:
            raise errors.Permanent(f"table {name!r} does not exist", where=where) from None
        with self._lock:
            self._known[name] = table
        return table


def bind_row(table: Table, row: Mapping[str, Json], where: str) -> dict[str, Any]:
    """Return `row` with ISO strings turned into dates and times for the columns of those types.

    Raises:
        errors.Permanent: a string that is not an ISO date or time for such a column.
    """
    return {name: _bind_value(table.c[name], value, where) for name, value in row.items()}


def _bind_value(column: Column[Any], value: Json, where: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return value
    try:
        if kind is datetime:
            return datetime.fromisoformat(value)
        if kind is date:
            return date.fromisoformat(value)
        if kind is time:
            return time.fromisoformat(value)
    except ValueError:
        raise errors.Permanent(
            f"column {column.table.name}.{column.name}: got {errors.redact(value)}; "
            f"expected an ISO 8601 {kind.__name__}",
            where=where,
        ) from None
    return value


def to_json(value: Any) -> Json:
    """A value read from the database as JSON: Decimal kept exact, dates and times as ISO text."""
    if value is None or isinstance(value, bool | int | float | Decimal | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return Decimal(str(value.total_seconds()))
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    return str(value)
