"""Reading a listing page by page: page numbers, offsets, a cursor from the body, or the
`Link: <…>; rel="next"` header (RFC 8288), bounded by `max_pages` and `max_items`."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import yarl
from pydantic import BaseModel, ConfigDict, Field

from seamflow import errors
from seamflow.ids import Json

__all__ = ["Page", "Paginate", "collect", "items_of", "value_at"]


class Paginate(BaseModel):
    """`paginate:` of a step: how to ask for the next page and where the items are."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    style: Literal["page", "offset", "cursor", "link"]
    items: str | None = None
    """Dotted path to the list in the response body (`data`, `result.rows`); none: the body is the list."""
    max_pages: int = Field(100, ge=1, le=100_000)
    max_items: int | None = Field(None, ge=1)
    size: int | None = Field(None, ge=1)
    """Items per page, sent in `size_param`; a shorter page is the last one."""
    size_param: str | None = None
    """Default `per_page` for style page, `limit` for offset and cursor."""
    page_param: str = "page"
    first_page: int = 1
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    next_cursor: str = "next_cursor"
    """Dotted path in the response body to the cursor of the next page; empty or null: the last page."""


@dataclass(frozen=True, slots=True)
class Page:
    """What to ask for next: query parameters to set, or (style link) the whole next URL."""

    query: dict[str, str]
    url: yarl.URL | None = None


Fetch = Callable[[Page, int], Awaitable[dict[str, Json]]]
"""Send one request for a page (numbered from 1) and return its answer `{status, headers, body}`."""


def value_at(body: Json, path: str | None) -> Json:
    """The value at a dotted path (`data.items`, `rows.0.id`); KeyError if there is none."""
    node = body
    for part in path.split(".") if path else []:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(part)
    return node


def items_of(body: Json, path: str | None, where: str) -> list[Json]:
    """The list at `path` in a response body.

    Raises:
        errors.Permanent: there is no list there.
    """
    try:
        found = value_at(body, path)
    except KeyError:
        found = None
    if not isinstance(found, list):
        at = f"at {path!r}" if path else "as the body (set paginate.items to its path)"
        raise errors.Permanent(f"no list of items {at} in the response: got {errors.redact(found, 60)}", where=where)
    return found


async def collect(settings: Paginate, fetch: Fetch, where: str) -> dict[str, Json]:
    """Fetch pages until the listing ends or a bound is reached.

    Returns:
        `{"items": [...], "pages": N, "has_more": bool}`; `has_more` says a bound cut the listing short.
    """
    items: list[Json] = []
    page = _first(settings)
    for number in range(1, settings.max_pages + 1):
        answer = await fetch(page, number)
        found = items_of(answer.get("body"), settings.items, where)
        items += found
        if settings.max_items is not None and len(items) >= settings.max_items:
            following = _next(settings, page, answer, found, where)
            has_more = len(items) > settings.max_items or following is not None
            return {"items": items[: settings.max_items], "pages": number, "has_more": has_more}
        following = _next(settings, page, answer, found, where)
        if following is None:
            return {"items": items, "pages": number, "has_more": False}
        page = following
    return {"items": items, "pages": settings.max_pages, "has_more": True}


def _size_param(settings: Paginate) -> str:
    return settings.size_param or ("per_page" if settings.style == "page" else "limit")


def _first(settings: Paginate) -> Page:
    query = {_size_param(settings): str(settings.size)} if settings.size is not None else {}
    if settings.style == "page":
        query[settings.page_param] = str(settings.first_page)
    elif settings.style == "offset":
        query[settings.offset_param] = "0"
    return Page(query)


def _next(settings: Paginate, page: Page, answer: dict[str, Json], found: list[Json], where: str) -> Page | None:
    """The next page, or None after the last."""
    is_short = not found or (settings.size is not None and len(found) < settings.size)
    if settings.style == "page":
        number = int(page.query[settings.page_param]) + 1
        return None if is_short else Page({**page.query, settings.page_param: str(number)})
    if settings.style == "offset":
        offset = int(page.query[settings.offset_param]) + len(found)
        return None if is_short else Page({**page.query, settings.offset_param: str(offset)})
    if settings.style == "cursor":
        try:
            cursor = value_at(answer.get("body"), settings.next_cursor)
        except KeyError:
            cursor = None
        if cursor in (None, "") or not found or str(cursor) == page.query.get(settings.cursor_param):
            return None
        return Page({**page.query, settings.cursor_param: str(cursor)})
    headers = answer.get("headers")
    link = headers.get("link") if isinstance(headers, dict) else None
    target = next_link(link) if isinstance(link, str) else None
    return None if target is None else Page({}, yarl.URL(target))


_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")


def next_link(header: str) -> str | None:
    """The target of `rel="next"` in a `Link` header (RFC 8288), as written (maybe relative)."""
    for match in _LINK.finditer(header):
        for param in match.group(2).split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "rel" and "next" in value.strip().strip('"').lower().split():
                return match.group(1)
    return None
