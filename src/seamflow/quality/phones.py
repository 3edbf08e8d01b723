"""Mainland China telephone numbers: mobiles and landlines typed any way, to E.164 and back.

The number plan is phonenumbers' (libphonenumber's metadata for CN, the MIIT allocations), read
once and matched with its own patterns, so a million numbers are checked without building a
`PhoneNumber` object each: `138 0013 8000`, `+86-138-0013-8000`, `0086 13800138000`,
`(+86)13800138000` and `１３８００１３８０００` are all `+8613800138000`; `010-6552 9988` and
`(010)65529988` are `+861065529988`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from seamflow.quality.text import to_half_width

__all__ = ["PhoneInvalid", "format_phone_cn", "normalise_phone_cn"]

_SEPARATORS = re.compile(r"[\s\-().\u2010-\u2015/]+")
_COMMON_MOBILE = re.compile(r"(?:\+86 ?|0086 ?)?(1\d\d)[ -]?(\d{4})[ -]?(\d{4})")
"""The ways a mobile is mostly typed (`138-0013-8000`, `+86 138 0013 8000`, `008613800138000`): read
without removing separators first; anything else takes the general way."""
_EXTENSION = re.compile(r"(?:转|ext\.?|x|#)\d{1,6}$", re.IGNORECASE)


class PhoneInvalid(ValueError):
    """The text is not a mainland mobile or landline number; the message says why."""


@dataclass(frozen=True, slots=True)
class _Plan:
    mobile: re.Pattern[str]
    fixed_line: re.Pattern[str]


@cache
def _plan() -> _Plan:
    import phonenumbers  # on first use: its metadata takes ~20 ms to import

    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    assert metadata is not None and metadata.mobile is not None and metadata.fixed_line is not None
    mobile = metadata.mobile.national_number_pattern
    fixed = metadata.fixed_line.national_number_pattern
    assert mobile is not None and fixed is not None
    return _Plan(re.compile(mobile), re.compile(fixed))


def mobile_pattern() -> re.Pattern[str]:
    """The number plan's pattern of a mainland mobile's 11 national digits."""
    return _plan().mobile


def normalise_phone_cn(text: str, kind: str = "any") -> str:
    """Return the E.164 form (`+8613800138000`) of a mainland number typed any common way.

    Args:
        text: the number as typed: separators, brackets, full-width digits, `+86`/`0086`/`86`
            before a mobile, the trunk `0` before a landline's area code.
        kind: `mobile`, `landline` or `any`.

    Raises:
        PhoneInvalid: not a mainland number of that kind (the message says what was found).
    """
    if len(text) == 11 and kind != "landline" and text.isascii() and text.isdigit():  # the common case
        if _plan().mobile.fullmatch(text):
            return "+86" + text
    if kind != "landline" and (common := _COMMON_MOBILE.fullmatch(text)) is not None:
        candidate = "".join(common.groups())
        if _plan().mobile.fullmatch(candidate):
            return "+86" + candidate
    digits = _SEPARATORS.sub("", text if text.isascii() else to_half_width(text))
    if _EXTENSION.search(digits):
        raise PhoneInvalid("has an extension; expected a number that can be dialled directly")
    if digits.startswith("+86"):
        national, international = digits[3:], True
    elif digits.startswith("0086"):
        national, international = digits[4:], True
    else:
        national, international = digits, False
    if not national.isascii() or not national.isdigit():
        raise PhoneInvalid("has characters other than digits, spaces, dashes, brackets and a leading +86")
    plan = _plan()
    if kind != "landline":
        candidate = national[2:] if not international and len(national) == 13 and national[:2] == "86" else national
        if len(candidate) == 11 and plan.mobile.fullmatch(candidate):
            return "+86" + candidate
    if kind != "mobile":
        trunk = national[1:] if national.startswith("0") else national
        if (international or national.startswith("0")) and 9 <= len(trunk) <= 11 and plan.fixed_line.fullmatch(trunk):
            return "+86" + trunk
    expected = {"mobile": "a mainland mobile number", "landline": "a mainland landline with its area code"}
    raise PhoneInvalid(f"is not {expected.get(kind, 'a mainland mobile number or a landline with its area code')}")


def format_phone_cn(e164: str) -> str:
    """Return the national way of writing an E.164 mainland number: `138 0013 8000`, `010 6552 9988`.

    Raises:
        PhoneInvalid: not an E.164 mainland number.
    """
    import phonenumbers

    if not e164.startswith("+86"):
        raise PhoneInvalid("is not in E.164 form with +86")
    try:
        number = phonenumbers.parse(e164, "CN")
    except phonenumbers.NumberParseException as exc:
        raise PhoneInvalid("is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise PhoneInvalid("is not an allocated mainland number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
