"""Chinese business identifiers the ERP validates: mainland phone numbers and the unified social credit code."""

from __future__ import annotations

import re

__all__ = ["credit_code_check_char", "is_mainland_phone", "is_unified_credit_code"]

_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{2,3}-\d{7,8}")
# GB 32100-2015: 18 characters from this alphabet (no I, O, S, V, Z); the last is a mod-31 check character.
_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def is_mainland_phone(value: str) -> bool:
    """A mainland mobile number (`13800138000`) or a landline with area code (`021-62345678`)."""
    return bool(_MOBILE.fullmatch(value) or _LANDLINE.fullmatch(value))


def credit_code_check_char(first17: str) -> str:
    """The check character (18th) of a unified social credit code, from its first 17 characters.

    Raises:
        ValueError: not 17 characters of the code's alphabet (digits and capitals except I, O, S, V, Z).
    """
    if len(first17) != 17 or any(ch not in _CREDIT_ALPHABET for ch in first17):
        raise ValueError("expected 17 characters from 0-9 and A-Y without I, O, S, V")
    total = sum(_CREDIT_ALPHABET.index(ch) * w for ch, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_ALPHABET[(31 - total % 31) % 31]


def is_unified_credit_code(value: str) -> bool:
    """A well-formed 统一社会信用代码 (18 characters, valid check character)."""
    if len(value) != 18 or any(ch not in _CREDIT_ALPHABET for ch in value):
        return False
    return credit_code_check_char(value[:17]) == value[17]
