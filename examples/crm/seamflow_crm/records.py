"""What every record type shares: fetching by id, optimistic concurrency, updates and pages.

Table and column names here always come from our own code (the models' field names), never
from the request; values are always bound parameters.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query

from seamflow_crm.database import Transaction, format_time
from seamflow_crm.problems import InvalidInput, NotFound, PreconditionFailed

__all__ = ["PageDep", "PageQuery", "check_version", "fetch", "page_query", "update_row"]

_TABLES = {"customers": "customer", "contacts": "contact", "opportunities": "opportunity", "contracts": "contract"}


def fetch(conn: sqlite3.Connection, table: str, record_id: int) -> sqlite3.Row:
    """The row `record_id` of `table`.

    Raises:
        NotFound: there is no such row.
    """
    assert table in _TABLES
    row: sqlite3.Row | None = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (record_id,)).fetchone()  # noqa: S608
    if row is None:
        raise NotFound(f"{_TABLES[table]} {record_id} does not exist")
    return row


def check_version(current: int, *, if_match: str | None, version: int | None) -> None:
    """Refuse a change based on an older version (from the `If-Match` header or the body's `version`).

    Raises:
        PreconditionFailed: the given version is not the current one.
        InvalidInput: If-Match is not an ETag of a version.
    """
    expected = version
    if if_match is not None and if_match.strip() != "*":
        tag = if_match.strip().removeprefix("W/").strip('"')
        if not tag.isdigit():
            raise InvalidInput.field("If-Match", f'got {if_match[:40]!r}; expected a version ETag such as "3"')
        expected = int(tag)
    if expected is not None and expected != current:
        raise PreconditionFailed(f"the record is at version {current}, the change was based on version {expected}")


def update_row(tx: Transaction, table: str, record_id: int, values: Mapping[str, object]) -> None:
    """Set `values` (column → value), stamp updated_at and add one to the version."""
    assert table in _TABLES and all(column.isidentifier() for column in values)
    assignments = "".join(f"{column} = ?, " for column in values)
    tx.conn.execute(
        f"UPDATE {table} SET {assignments}updated_at = ?, version = version + 1 WHERE id = ?",  # noqa: S608
        (*values.values(), tx.timestamp, record_id),
    )


@dataclass(frozen=True, slots=True)
class PageQuery:
    """Which page of a list, and from when."""

    page: int
    per_page: int
    updated_since: datetime | None

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.page - 1) * self.per_page

    def since(self) -> str:
        """The lower bound for updated_at as stored ("" means everything)."""
        return format_time(self.updated_since) if self.updated_since else ""


def page_query(
    page: Annotated[int, Query(ge=1, description="Page number, from 1")] = 1,
    per_page: Annotated[int, Query(ge=1, le=500, description="Records per page")] = 50,
    updated_since: Annotated[
        datetime | None,
        Query(
            description="Only records changed at or after this time (ISO 8601 with a time zone). Records are ordered "
            "by (updated_at, id), so polling with the last seen updated_at loses nothing; the boundary record is "
            "seen again (skip it by id and version).",
        ),
    ] = None,
) -> PageQuery:
    """FastAPI dependency: the page a list request asks for."""
    if updated_since is not None and updated_since.tzinfo is None:
        raise InvalidInput.field("updated_since", "expected a time with a time zone, e.g. 2026-03-01T08:00:00+08:00")
    return PageQuery(page, per_page, updated_since)


PageDep = Annotated[PageQuery, Depends(page_query)]
"""A route parameter of this type receives the page a list request asks for."""
