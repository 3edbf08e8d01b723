"""The `list` poll feed: new and changed items of a listing operation, in cursor order.

The cursor is composite — the highest cursor value taken and the keys taken at that value —
so items that share a timestamp are never skipped when a batch ends among them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from seamflow import errors
from seamflow.connectors.base import Batch, Feed, Item
from seamflow.connectors.openapi.paging import Paginate, value_at
from seamflow.ids import Json

__all__ = ["FEEDS", "ListFeedInput", "select"]


class ListFeedInput(BaseModel):
    """`with:` of a `poll` trigger on the `list` feed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    operation: str = Field(min_length=1)
    """The listing operation (operationId or action name)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Its inputs, checked against the document like a step's."""
    items: str | None = None
    """Dotted path to the list in the response body; none: the body is the list."""
    key: str = "id"
    """Dotted path to each item's identity."""
    cursor: str = "updated_at"
    """Dotted path to the field that grows when an item is created or changed (`updated_at`, `id`)."""
    since_param: str | None = None
    """A query parameter that asks the API for items whose cursor field is >= a value; none: filter here."""
    paginate: Paginate | None = None
    """How to read every page of the listing; none: one request."""


FEEDS = {
    "list": Feed(
        "list",
        ListFeedInput,
        "poll",
        "New and changed items of a listing operation, in order of their cursor field; "
        "the dedupe key is operation:key:cursor value.",
    )
}


def _order(value: Json, where: str) -> tuple[int, Any]:
    """A sort key for a cursor value: numbers by value, ISO timestamps by instant, other text as text."""
    if isinstance(value, bool) or value is None:
        raise errors.Permanent(f"cursor value {errors.redact(value)} cannot be ordered", where=where)
    if isinstance(value, int | Decimal):
        return (0, value)
    if isinstance(value, str):
        moment = _instant(value)
        return (1, moment) if moment is not None else (2, value)
    raise errors.Permanent(f"cursor value {errors.redact(value)} is not a number or text", where=where)


def _instant(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _read_cursor(cursor: Json, where: str) -> tuple[Json, set[str]]:
    if cursor is None:
        return None, set()
    if isinstance(cursor, dict) and isinstance(cursor.get("keys"), list):
        return cursor.get("value"), {str(k) for k in cursor["keys"]}  # type: ignore[union-attr]
    raise errors.Permanent(f"stored cursor {errors.redact(cursor)} is not this feed's", where=where)


def select(settings: ListFeedInput, found: list[Json], cursor: Json, limit: int, where: str) -> Batch:
    """The items of `found` after `cursor`, lowest cursor value first, at most `limit`, and the cursor after them."""
    last, seen = _read_cursor(cursor, where)
    floor = _order(last, where) if last is not None else None
    fresh: list[tuple[tuple[int, Any], str, Json, Json]] = []
    for index, item in enumerate(found):
        try:
            key, value = value_at(item, settings.key), value_at(item, settings.cursor)
        except KeyError as exc:
            raise errors.Permanent(
                f"item {index} of {settings.operation} has no field {exc.args[0]!r} (key {settings.key!r}, "
                f"cursor {settings.cursor!r})",
                where=where,
            ) from None
        order = _order(value, where)
        if floor is not None and (order < floor or (order == floor and str(key) in seen)):
            continue
        fresh.append((order, str(key), value, item))
    fresh.sort(key=lambda entry: (entry[0], entry[1]))
    taken = fresh[:limit]
    if not taken:
        return Batch([], cursor, more=False)
    top_order, top_value = taken[-1][0], taken[-1][2]
    keys = {key for order, key, _, _ in taken if order == top_order}
    if floor is not None and top_order == floor:
        keys |= seen  # still at the same value: the keys taken before stay taken
    items = [
        Item(
            body=item, key=f"{settings.operation}:{key}:{value}", at=_instant(value) if isinstance(value, str) else None
        )
        for _, key, value, item in taken
    ]
    return Batch(items, {"value": top_value, "keys": list[Json](sorted(keys))}, more=len(fresh) > limit)
