"""The built-in field types of a rule file: each a function from the typed text to its stored form.

A validator takes the text of one field (already trimmed, never empty) and returns its normalised
value — E.164 for a phone, `Decimal` for an amount, an ISO date — or raises `ValueError` whose
message says what is wrong (`is not a mainland mobile number`). Rules name them with `type:`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from functools import partial

from seamflow.quality import amounts, dates, documents, phones, regions
from seamflow.quality.text import clean_text, to_half_width

__all__ = ["VALIDATORS", "Validator"]

Validator = Callable[[str], object]
"""Text of a field → its normalised value; raises ValueError with the reason."""

_INTEGER = re.compile(r"[-+]?\d+")
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)
_TRUE = frozenset({"true", "yes", "y", "1", "是", "真", "有"})
_FALSE = frozenset({"false", "no", "n", "0", "否", "假", "无"})


def _string(text: str) -> str:
    return clean_text(text)


def _integer(text: str) -> int:
    compact = to_half_width(text).replace(",", "").strip()
    if not _INTEGER.fullmatch(compact):
        raise ValueError("is not a whole number")
    return int(compact)


def _decimal(text: str) -> Decimal:
    compact = to_half_width(text).replace(",", "").strip()
    try:
        value = Decimal(compact)
    except InvalidOperation:
        raise ValueError("is not a number") from None
    if not value.is_finite():
        raise ValueError("is not a finite number")
    return value


def _boolean(text: str) -> bool:
    word = to_half_width(text).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("is not true or false; expected true/false, yes/no, 1/0 or 是/否")


def _email(text: str) -> str:
    address = to_half_width(text).strip()
    if not _EMAIL.fullmatch(address):
        raise ValueError("is not an e-mail address")
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def _date(text: str) -> str:
    return dates.normalise_date(text).isoformat()


VALIDATORS: Mapping[str, Validator] = {
    "string": _string,
    "integer": _integer,
    "decimal": _decimal,
    "boolean": _boolean,
    "email": _email,
    "date": _date,
    "amount": amounts.normalise_amount,
    "phone_cn": partial(phones.normalise_phone_cn, kind="any"),
    "mobile_cn": partial(phones.normalise_phone_cn, kind="mobile"),
    "landline_cn": partial(phones.normalise_phone_cn, kind="landline"),
    "resident_id": documents.normalise_resident_id,
    "uscc": documents.normalise_uscc,
    "bank_card": documents.normalise_bank_card,
    "postcode": documents.normalise_postcode,
    "province": regions.normalise_province,
    "city": regions.normalise_city,
}
"""Every `type:` a rule may name, with its validator."""
