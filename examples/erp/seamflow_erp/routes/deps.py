"""What every route needs: the database from app state, and the query parameters of a page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query, Request

from seamflow_erp.database import Database
from seamflow_erp.paging import PageRequest

__all__ = ["db_of", "page_request"]


def db_of(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


def page_request(
    updated_since: Annotated[datetime | None, Query(description="only rows with updated_at ≥ this (ISO 8601)")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> PageRequest:
    return PageRequest(updated_since=updated_since, cursor=cursor, limit=limit)
