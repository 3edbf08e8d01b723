"""The actions of the `sql` connector and their inputs (a step's `with:`).

Table, column and procedure names are identifiers written in the flow file; they are
checked against `IDENTIFIER` and quoted by SQLAlchemy. Values are always bound
parameters, never part of the SQL text.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from seamflow.connectors.base import Action

__all__ = [
    "ACTIONS",
    "IDENTIFIER",
    "BulkInsertInput",
    "CallInput",
    "DeleteInput",
    "InsertInput",
    "QueryInput",
    "UpdateInput",
    "UpsertInput",
]

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_.]*$"
"""A table (optionally `schema.table`), column or procedure name."""

Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER, max_length=128)]
Row = dict[Identifier, Any]
"""Column name → value (a JSON value; ISO strings are accepted for date/time columns)."""

_STRICT = ConfigDict(extra="forbid")


class QueryInput(BaseModel):
    """Inputs of `query`: a statement with named parameters (`:name`) and their values."""

    model_config = _STRICT
    sql: str = Field(min_length=1)
    """The statement, written in the flow file; values go in `params`, never into this text."""
    params: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], Any] = Field(
        default_factory=dict
    )
    """The value of each `:name` in `sql`; every name must be used and every used name given."""
    max_rows: int = Field(10_000, ge=1, le=1_000_000)
    """More rows than this is a Permanent error (add a `LIMIT`), never a silent cut."""


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
        "upsert", UpsertInput, "Insert or, on a conflicting key, update rows; returns {count}.", is_idempotent=True
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
