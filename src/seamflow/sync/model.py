"""Canonical models: an object type defined once (`models/<id>.yaml`), with field types and validation.

Every value entering a sync is normalized by its field's type, so the same fact reads the same
whatever system it came from ("+86 138-1234-5678" and "13812345678" are one phone; "50000" and
"50000.00" one amount). Equal canonical values are what makes change and echo detection exact.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from seamflow.ids import Json

__all__ = ["FieldType", "Model", "ModelField", "normalize"]


class FieldType(StrEnum):
    """What a canonical field holds."""

    TEXT = "text"
    PHONE_CN = "phone_cn"
    """A mainland China mobile number: 11 digits starting 1[3-9]; +86/0086 and separators dropped."""
    EMAIL = "email"
    MONEY = "money"
    """A CNY amount as a string with two decimals ("50000.00"); never a float."""
    USCC = "uscc"
    """A unified social credit code (统一社会信用代码): 18 characters, upper case."""
    BOOL = "bool"
    INTEGER = "integer"


class ModelField(BaseModel):
    """One field of a canonical model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: FieldType = FieldType.TEXT
    required: bool = False
    description: str = ""


class Model(BaseModel):
    """A canonical model, e.g. `customer` with name, phone, email, tax id, address, credit limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    description: str = ""
    fields: dict[str, ModelField]

    def validate_record(self, values: dict[str, Json]) -> tuple[dict[str, Json], list[str]]:
        """Normalize every known field; return the values and a problem per bad or missing field."""
        out: dict[str, Json] = {}
        problems = []
        for name, value in values.items():
            field = self.fields.get(name)
            if field is None:
                problems.append(f"{name}: not a field of model {self.id}; expected one of {', '.join(self.fields)}")
                continue
            try:
                out[name] = normalize(field.type, value)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
        return out, problems

    def missing(self, values: dict[str, Json]) -> list[str]:
        """Required fields that are absent or empty."""
        return [n for n, f in self.fields.items() if f.required and values.get(n) in (None, "")]


_PHONE = re.compile(r"^1[3-9]\d{9}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_USCC = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")
_TRUE = {"true", "1", "yes", "y", "active", "是"}
_FALSE = {"false", "0", "no", "n", "inactive", "否"}


def normalize(kind: FieldType, value: Any) -> Json:
    """The canonical form of `value` for a field type (None stays None).

    Raises:
        ValueError: the value cannot be that type (the message says what was expected).
    """
    if value is None or (isinstance(value, str) and value.strip() == "" and kind is not FieldType.TEXT):
        return None
    if kind is FieldType.TEXT:
        text = str(value).strip()
        return text or None  # an empty text and no text are the same fact in every system
    if kind is FieldType.PHONE_CN:
        digits = re.sub(r"[\s\-()]", "", str(value))
        digits = re.sub(r"^(\+86|0086|86(?=1\d{10}$))", "", digits)
        if not _PHONE.match(digits):
            raise ValueError(f"{value!r} is not a mainland China mobile number; expected 11 digits starting 13-19")
        return digits
    if kind is FieldType.EMAIL:
        text = str(value).strip().lower()
        if not _EMAIL.match(text):
            raise ValueError(f"{value!r} is not an e-mail address")
        return text
    if kind is FieldType.MONEY:
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError(f"{value!r} is a {type(value).__name__}; expected an amount as a string or integer")
        try:
            amount = Decimal(str(value).replace(",", "").strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not an amount; expected digits with an optional '.'") from None
        if not amount.is_finite():
            raise ValueError(f"{value!r} is not a finite amount")
        return str(amount.quantize(Decimal("0.01")))
    if kind is FieldType.USCC:
        code = str(value).strip().upper()
        if not _USCC.match(code):
            raise ValueError(f"{value!r} is not a unified social credit code; expected 18 characters")
        return code
    if kind is FieldType.BOOL:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{value!r} is not a yes/no value")
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an integer") from None
