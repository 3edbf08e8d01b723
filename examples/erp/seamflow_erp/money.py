"""Money arithmetic in integer cents: amounts enter and leave as Decimal with two places, never as float."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["from_cents", "to_cents"]

_CENT = Decimal("0.01")


def to_cents(amount: Decimal) -> int:
    """`Decimal("1299.50")` → `129950`; raises ValueError if the amount has more than two decimal places."""
    if amount != amount.quantize(_CENT):
        raise ValueError(f"{amount} has more than two decimal places")
    return int(amount.scaleb(2))


def from_cents(cents: int) -> Decimal:
    """`129950` → `Decimal("1299.50")`."""
    return Decimal(cents).scaleb(-2).quantize(_CENT)
