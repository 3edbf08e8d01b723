"""Column types that keep ERP data exact on both databases: money as Decimal, time as UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType

__all__ = ["Exact", "UtcDateTime"]


class _SqliteNumeric(UserDefinedType[Any]):
    """`NUMERIC(p, s)` in SQLite DDL, with no float conversion by SQLAlchemy (we do it exactly)."""

    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        self.precision = precision
        self.scale = scale

    def get_col_spec(self, **kw: Any) -> str:
        return f"NUMERIC({self.precision}, {self.scale})"


class Exact(TypeDecorator[Decimal]):
    """A fixed-point amount, `NUMERIC(precision, scale)`, always read and written as a quantized Decimal.

    PostgreSQL stores it exactly. SQLite gives NUMERIC columns REAL storage; values of at most 15
    significant digits survive that round trip exactly, so every value is quantized back on read.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SqliteNumeric(self.precision, self.scale))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = Decimal(value).quantize(self._quantum)
        return str(exact) if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        # str(float) is the shortest repr that round-trips, so 19.9 reads back as 19.90 exactly.
        return Decimal(str(value)).quantize(self._quantum)


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time: `TIMESTAMPTZ` on PostgreSQL, `YYYY-MM-DD HH:MM:SS.ffffff` UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UtcDateTime needs an aware datetime")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
