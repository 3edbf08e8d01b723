"""A position in an ordered read: the values of its ordering columns, stored as JSON between reads.

The `rows` feed keeps its cursor as a position on (cursor column, key columns) and the
keyset stream keeps one on its key columns. Each value is stored with its kind, so a
timestamp goes back to the database as a timestamp and a decimal as a decimal, and the
database compares exactly what it sorted: on SQLite a timestamp stays the text it is stored as.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from seamflow import errors
from seamflow.ids import Json

__all__ = ["Position", "after", "value_text"]

_KINDS = ("bool", "int", "float", "decimal", "text", "datetime", "date", "time", "bytes", "uuid")


@dataclass(frozen=True, slots=True)
class Position:
    """The driver values of the ordering columns of the last row read."""

    values: tuple[Any, ...]

    def to_json(self, where: str) -> Json:
        """`{"after": [values as JSON], "kinds": [kind of each]}`.

        Raises:
            errors.Permanent: a value of a type that cannot order a read (e.g. a JSON document).
        """
        after: list[Json] = []
        kinds: list[Json] = []
        for value in self.values:
            encoded = _encode(value)
            if encoded is None:
                raise errors.Permanent(
                    f"an ordering column holds a {type(value).__name__} value; "
                    "expected numbers, text, dates, times or UUIDs",
                    where=where,
                )
            after.append(encoded[0])
            kinds.append(encoded[1])
        return {"after": after, "kinds": kinds}

    @classmethod
    def from_json(cls, data: Json, width: int, what: str, where: str) -> Position:
        """Read a position written by `to_json` for `width` ordering columns.

        Raises:
            errors.Permanent: `data` is not such a position (e.g. the key columns changed).
        """
        values = data.get("after") if isinstance(data, dict) else None
        kinds = data.get("kinds") if isinstance(data, dict) else None
        if not (isinstance(values, list) and isinstance(kinds, list) and len(values) == len(kinds) == width):
            raise errors.Permanent(
                f"{what} {errors.redact(data, 200)} is not a position on {width} column(s); "
                'expected {"after": [...], "kinds": [...]} as this connector stored it '
                "(did the cursor or key columns change?)",
                where=where,
            )
        return cls(tuple(_decode(value, kind, what, where) for value, kind in zip(values, kinds, strict=True)))

    def params(self, prefix: str) -> dict[str, Any]:
        """The values as bound parameters `prefix0`, `prefix1`, … (see `after`)."""
        return {f"{prefix}{i}": value for i, value in enumerate(self.values)}


def after(columns: Sequence[str], prefix: str) -> str:
    """SQL: the row's `columns` (quoted) come after the position bound as `:prefix0`, `:prefix1`, ….

    `(c, k) > (:v, :k)` written out as `c >= :v AND (c > :v OR (c = :v AND k > :k))`, which
    every dialect understands and which lets an index on the first column bound the scan.
    """
    terms = []
    for i, column in enumerate(columns):
        equal = [f"{columns[j]} = :{prefix}{j}" for j in range(i)]
        terms.append("(" + " AND ".join([*equal, f"{column} > :{prefix}{i}"]) + ")")
    return f"({columns[0]} >= :{prefix}0 AND ({' OR '.join(terms)}))"


def value_text(value: Any) -> str:
    """A value as text in an item key: ISO 8601 for dates and times, exact digits for decimals."""
    encoded = _encode(value)
    json = encoded[0] if encoded else value
    return json if isinstance(json, str) else str(json)


def _encode(value: Any) -> tuple[Json, str] | None:
    match value:
        case bool():
            return value, "bool"
        case int():
            return value, "int"
        case float():
            return value, "float"
        case Decimal():
            return value, "decimal"
        case str():
            return value, "text"
        case datetime():
            return value.isoformat(), "datetime"
        case date():
            return value.isoformat(), "date"
        case time():
            return value.isoformat(), "time"
        case bytes() | bytearray() | memoryview():
            return base64.b64encode(bytes(value)).decode(), "bytes"
        case uuid.UUID():
            return str(value), "uuid"
    return None


def _decode(value: Json, kind: Json, what: str, where: str) -> Any:
    try:
        match kind:
            case "bool" | "int" | "text":
                return value
            case "float":
                return float(str(value))
            case "decimal":
                return Decimal(str(value))
            case "datetime":
                return datetime.fromisoformat(str(value))
            case "date":
                return date.fromisoformat(str(value))
            case "time":
                return time.fromisoformat(str(value))
            case "bytes":
                return base64.b64decode(str(value))
            case "uuid":
                return uuid.UUID(str(value))
    except ValueError:
        pass
    raise errors.Permanent(
        f"{what} holds {errors.redact(value, 100)} of kind {errors.redact(kind, 40)}; "
        f"expected a value of one of the kinds {', '.join(_KINDS)}",
        where=where,
    )
