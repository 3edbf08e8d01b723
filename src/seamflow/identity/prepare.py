"""Records made comparable: each field normalised by its kind through the quality package's
normalisers (phones to E.164, resident IDs and USCCs checked, full width folded), names folded
to simplified characters (OpenCC) with their pinyin (pypinyin), and the derived keys blocking reads.

A value that does not normalise (a phone that is no number) is kept as cleaned text under its
field, so that it still shows in the golden record, but it has no key and compares as missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from seamflow import quality
from seamflow.identity.spec import FieldKind, Resolution

__all__ = ["Prepared", "Preparer", "name_pinyin"]

_NOT_NAME = re.compile(r"[\s·•.\-_'’,，()（）]+")
_NOT_ADDRESS = re.compile(r"[\s,，.。、;；:：()（）#\-—_/]+")


def _clean(text: str) -> str:
    return str(quality.VALIDATORS["string"](text))


_Found = tuple[Any, dict[str, str]]
"""A value normalised, and its comparison forms."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A record ready to compare: its source and key, its fields as normalised, its comparison forms."""

    source: str
    key: str
    values: dict[str, Any]
    """Field → the normalised value (E.164 phone, simplified name, int points, ISO date); None: missing."""
    forms: dict[str, str]
    """Comparison forms and derived keys: `name` (simplified, no spaces), `name.pinyin`, `mobile.tail4`, …;
    only for fields that normalised."""

    @property
    def ref(self) -> str:
        """`source:key`, the record's name everywhere (CLI, REST, explanations)."""
        return f"{self.source}:{self.key}"


@cache
def _t2s() -> Callable[[str], str]:
    import opencc

    converter = opencc.OpenCC("t2s")
    return converter.convert


@cache
def _char_pinyin(char: str) -> str:
    from pypinyin import Style, pinyin

    reading = pinyin(char, style=Style.NORMAL, errors="default")
    return reading[0][0].lower() if reading and reading[0] else char.lower()


@cache
def name_pinyin(name: str) -> str:
    """The toneless pinyin of a (simplified) name, letters only: `张伟` and `Zhang Wei` are both `zhangwei`.

    Read character by character (each character's first reading), so the same character always
    reads the same; cached per name, as pypinyin takes ~150 µs a call.
    """
    return "".join(_char_pinyin(c) if "\u3400" <= c <= "\u9fff" else c.lower() for c in name if c.isalnum())


@cache
def _simplified(text: str) -> str:
    return _t2s()(text)


class Preparer:
    """Normalises records of one resolution; caches per distinct value, as columns repeat a lot."""

    def __init__(self, resolution: Resolution) -> None:
        self._fields = resolution.fields
        self._by_kind: dict[FieldKind, Callable[[str], tuple[Any, dict[str, str]]]] = {
            FieldKind.NAME: _name,
            FieldKind.PHONE: _phone,
            FieldKind.EMAIL: _email,
            FieldKind.RESIDENT_ID: _resident_id,
            FieldKind.USCC: _uscc,
            FieldKind.ADDRESS: _address,
            FieldKind.TEXT: _text,
            FieldKind.INTEGER: _integer,
            FieldKind.DECIMAL: _decimal,
            FieldKind.DATE: _date,
        }
        # per field: its normaliser and a cache by text (an enum as a dict key hashes in Python: slow)
        self._plan: list[tuple[str, Callable[[str], _Found], dict[str, _Found]]] = [
            (field, self._by_kind[kind], {}) for field, kind in self._fields.items()
        ]

    def prepare(self, source: str, key: str, row: Mapping[str, Any]) -> Prepared:
        """Normalise one record given as entity field → raw value (missing fields are None)."""
        values: dict[str, Any] = {}
        forms: dict[str, str] = {}
        for field, normalise, cached in self._plan:
            raw = row.get(field)
            if raw is None:
                values[field] = None
                continue
            text = raw if isinstance(raw, str) else str(raw)
            found = cached.get(text)
            if found is None:
                stripped = text.strip()
                found = normalise(stripped) if stripped else (None, {})
                if len(cached) < 500_000:
                    cached[text] = (found[0], {f"{field}.{s}" if s else field: f for s, f in found[1].items()})
                    found = cached[text]
                else:
                    found = (found[0], {f"{field}.{s}" if s else field: f for s, f in found[1].items()})
            values[field] = found[0]
            forms.update(found[1])
        return Prepared(source, key, values, forms)


def _name(text: str) -> tuple[Any, dict[str, str]]:
    cleaned = _clean(text)
    simple = _simplified(cleaned)
    compact = _NOT_NAME.sub("", simple).lower() if simple.isascii() else _NOT_NAME.sub("", simple)
    if not compact:
        return cleaned, {}
    shown = simple if simple.isascii() else compact  # 张 伟 is 张伟; Zhang Wei keeps its space
    return shown, {"": compact, "pinyin": name_pinyin(compact)}


def _phone(text: str) -> tuple[Any, dict[str, str]]:
    try:
        e164 = str(quality.VALIDATORS["phone_cn"](text))
    except ValueError:
        return _clean(text), {}
    return e164, {"": e164, "tail4": e164[-4:], "head7": e164[3:10]}


def _email(text: str) -> tuple[Any, dict[str, str]]:
    try:
        address = str(quality.VALIDATORS["email"](text)).lower()
    except ValueError:
        return _clean(text), {}
    return address, {"": address, "local": address.partition("@")[0]}


def _resident_id(text: str) -> tuple[Any, dict[str, str]]:
    try:
        number = str(quality.VALIDATORS["resident_id"](text))
    except ValueError:
        return _clean(text), {}
    return number, {"": number, "birth": number[6:14]}


def _uscc(text: str) -> tuple[Any, dict[str, str]]:
    try:
        code = str(quality.VALIDATORS["uscc"](text))
    except ValueError:
        return _clean(text), {}
    return code, {"": code}


def _address(text: str) -> tuple[Any, dict[str, str]]:
    cleaned = _clean(text)
    compact = _NOT_ADDRESS.sub("", _simplified(cleaned))
    if not compact:
        return cleaned, {}
    return cleaned, {"": compact, "head6": compact[:6]}


def _text(text: str) -> tuple[Any, dict[str, str]]:
    cleaned = _clean(text)
    return cleaned, {"": cleaned.lower()}


def _integer(text: str) -> tuple[Any, dict[str, str]]:
    try:
        number = int(quality.VALIDATORS["integer"](text))  # type: ignore[call-overload]  # an int
    except ValueError:
        return None, {}
    return number, {"": str(number)}


def _decimal(text: str) -> tuple[Any, dict[str, str]]:
    try:
        amount = quality.VALIDATORS["decimal"](text)
    except ValueError:
        return None, {}
    return str(amount), {"": str(amount)}


def _date(text: str) -> tuple[Any, dict[str, str]]:
    try:
        day = str(quality.VALIDATORS["date"](text[:10] if len(text) > 10 and text[4] == "-" else text))
    except ValueError:
        return None, {}
    return day, {"": day}
