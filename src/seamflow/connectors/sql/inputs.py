"""The actions of the `sql` connector and their inputs (a step's `with:`).

Table, column and procedure names are identifiers written in the flow file; they are
checked against `IDENTIFIER` and quoted by SQLAlchemy. Values are always bound
parameters, never part of the SQL text.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from seamflow.connectors.base import Action, Feed

__all__ = [
    "ACTIONS",
    "FEEDS",
    "IDENTIFIER",
    "BulkInsertInput",
    "CallInput",
    "DeleteInput",
    "InsertInput",
    "NotifyFeedInput",
    "QueryInput",
    "RowsFeedInput",
    "StreamInput",
    "UpdateInput",
    "UpsertInput",
]

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_.]*$"
"""A table (optionally `schema.table`), column or procedure name."""

Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER, max_length=128)]
Row = dict[Identifier, Any]
"""Column name → value (a JSON value; ISO strings are accepted for date/time columns)."""
ParamName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
"""The name of a `:name` parameter in SQL text."""

_STRICT = ConfigDict(extra="forbid")


class QueryInput(BaseModel):
    """Inputs of `query`: a statement with named parameters (`:name`) and their values."""

    model_config = _STRICT
    sql: str = Field(min_length=1)
    """The statement, written in the flow file; values go in `params`, never into this text."""
    params: dict[ParamName, Any] = Field(default_factory=dict)
    """The value of each `:name` in `sql`; every name must be used and every used name given."""
    max_rows: int = Field(10_000, ge=1, le=1_000_000)
    """More rows than this is a Permanent error (add a `LIMIT`), never a silent cut."""
    key: list[Identifier] | None = None
    """Ignored by a plain query; the unique column(s) when the same inputs are read as a stream.

    So one `with:` serves both a small read and a large, resumable one (`seamflow sync load`)."""


class _RowsInput(BaseModel):
    model_config = _STRICT
    table: Identifier
    row: Row | None = None
    """One row to write."""
    rows: list[Row] | None = None
    """Several rows to write, all with the same columns."""

    @model_validator(mode="after")
    def _one_of(self) -> _RowsInput:
        if (self.row is None) == (self.rows is None):
            raise ValueError("give exactly one of row or rows")
        if self.rows is not None and not self.rows:
            raise ValueError("rows is empty; expected at least one row")
        return self

    def all_rows(self) -> list[Row]:
        """The rows to write, whether given as `row` or `rows`."""
        return [self.row] if self.row is not None else list(self.rows or [])


class InsertInput(_RowsInput):
    """Inputs of `insert`: a table and a row or rows."""


class UpsertInput(_RowsInput):
    """Inputs of `upsert`: a table, a row or rows, and the key columns that identify a row."""

    key: list[Identifier] = Field(min_length=1)
    """Columns of a primary key or unique constraint; other given columns are updated on conflict."""
    chunk_size: int = Field(5000, ge=1, le=100_000)
    """Rows per round trip (one `executemany` of the prepared upsert); all chunks commit together."""


class UpdateInput(BaseModel):
    """Inputs of `update`: new values for the rows whose columns equal `where`."""

    model_config = _STRICT
    table: Identifier
    values: Row = Field(min_length=1)
    where: Row = Field(min_length=1)
    """Column → value, all of which must hold (`null` matches NULL)."""


class DeleteInput(BaseModel):
    """Inputs of `delete`: the rows whose columns equal `where`."""

    model_config = _STRICT
    table: Identifier
    where: Row = Field(min_length=1)
    """Column → value, all of which must hold (`null` matches NULL)."""


class BulkInsertInput(BaseModel):
    """Inputs of `bulk_insert`: many rows, sent in chunks within one transaction."""

    model_config = _STRICT
    table: Identifier
    rows: list[Row] = Field(min_length=1)
    chunk_size: int = Field(1000, ge=1, le=100_000)
    """Rows per round trip (one `executemany`)."""


class CallInput(BaseModel):
    """Inputs of `call`: a stored procedure and its positional arguments."""

    model_config = _STRICT
    procedure: Identifier
    args: list[Any] = Field(default_factory=list)


ACTIONS: dict[str, Action] = {
    "query": Action(
        "query",
        QueryInput,
        "Run a reading statement; returns {rows, count}. Its transaction is rolled back.",
        is_idempotent=True,
    ),
    "insert": Action("insert", InsertInput, "Insert a row or rows; returns {count, keys}.", is_idempotent=True),
    "upsert": Action(
        "upsert",
        UpsertInput,
        "Insert or, on a conflicting key, update one row or many (one prepared statement, executemany "
        "in chunks, one transaction); returns {count}.",
        is_idempotent=True,
    ),
    "update": Action("update", UpdateInput, "Update the rows matching where; returns {count}.", is_idempotent=True),
    "delete": Action("delete", DeleteInput, "Delete the rows matching where; returns {count}.", is_idempotent=True),
    "bulk_insert": Action(
        "bulk_insert", BulkInsertInput, "Insert many rows in chunks; returns {count}.", is_idempotent=True
    ),
    "call": Action(
        "call", CallInput, "Call a stored procedure; returns {rows, count} (not on SQLite).", is_idempotent=True
    ),
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _one_or_many(value: object) -> object:
    """A single column name is a list of one."""
    return [value] if isinstance(value, str) else value


def _lookback(value: object) -> object:
    """`"5m"`, `"30s"`, … as a timedelta; a number stays a number (a span of a numeric cursor)."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
    return value


Columns = Annotated[list[Identifier], BeforeValidator(_one_or_many), Field(min_length=1)]


class RowsFeedInput(BaseModel):
    """Settings of the `rows` poll feed: the rows of a table or query that are new or changed since the cursor."""

    model_config = _STRICT
    table: Identifier | None = None
    """The table (or `schema.table`) to watch; or give `query`."""
    query: str | None = Field(None, min_length=1)
    """A reading statement whose rows are watched (used as a subquery); or give `table`."""
    name: Identifier | None = None
    """The source's name in each item's key; by default `table` (required with `query`)."""
    cursor: Identifier
    """The column that grows when a row is added or changed: `updated_at`, or `id` for rows never changed."""
    key: Columns
    """The column(s) that identify a row; they order rows that share a cursor value."""
    columns: list[Identifier] | None = Field(None, min_length=1)
    """The columns to read (the cursor and key columns are always read); by default all."""
    where: str | None = Field(None, min_length=1)
    """A condition on the rows, with named parameters (`status = :status`)."""
    params: dict[ParamName, Any] = Field(default_factory=dict)
    """The value of each `:name` in `where` and `query`."""
    start: Literal["beginning", "now"] = "beginning"
    """Where the first poll starts: every existing row (`beginning`) or only rows changed after it (`now`)."""
    lookback: Annotated[timedelta | int, BeforeValidator(_lookback)] | None = None
    """Re-read rows this far behind the cursor (a duration for a timestamp cursor, a number for a numeric one)."""
    timezone: str = "UTC"
    """The time zone of a cursor timestamp stored without one, for each item's time."""

    @model_validator(mode="after")
    def _one_source(self) -> RowsFeedInput:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table or query")
        if self.query is not None and self.name is None:
            raise ValueError("name is required with query; it names the source in each item's key")
        if any(name.startswith("seamflow_") for name in self.params):
            raise ValueError("params starting with seamflow_ are reserved for the feed's own parameters")
        if (isinstance(self.lookback, timedelta) and self.lookback < timedelta(0)) or (
            isinstance(self.lookback, int) and self.lookback < 0
        ):
            raise ValueError("lookback is negative; expected a duration or a number of at least 0")
        return self

    @property
    def source_name(self) -> str:
        """The source's name in item keys."""
        return self.name or self.table or "query"


class NotifyFeedInput(BaseModel):
    """Settings of the `notify` consume feed (PostgreSQL `LISTEN`)."""

    model_config = _STRICT
    channel: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
    """The channel to listen on, exactly as `NOTIFY` / `pg_notify` name it."""
    key_field: str | None = Field(None, min_length=1)
    """A field of the JSON payload whose value identifies the notification (its dedupe key)."""


class StreamInput(BaseModel):
    """Inputs of `query` read as a stream of chunks (`Streams.stream`)."""

    model_config = _STRICT
    sql: str = Field(min_length=1)
    """A reading statement; without `key` give it an ORDER BY, so that a restart skips the same rows."""
    params: dict[ParamName, Any] = Field(default_factory=dict)
    """The value of each `:name` in `sql`."""
    key: Columns | None = None
    """Column(s) unique in the result: read page by page in their order, resuming after the last key read."""


FEEDS: dict[str, Feed] = {
    "rows": Feed(
        "rows",
        RowsFeedInput,
        "poll",
        "Rows of a table or query added or changed since the cursor, in (cursor, key) order; "
        "key: source:key:cursor value.",
    ),
    "notify": Feed(
        "notify",
        NotifyFeedInput,
        "consume",
        "PostgreSQL NOTIFY payloads on a channel (not durable: pair with the rows feed or use as a wake-up).",
    ),
}
