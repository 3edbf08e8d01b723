"""Calendar dates as written in Chinese and ISO forms, to `datetime.date`.

`2026-12-07`, `2026/12/7`, `2026.12.7`, `20261207`, `2026年12月7日`, `2026年12月7号` and
`二〇二六年十二月七日`; a time after the date (`2026-12-07 10:30:00`, `2026-12-07T10:30:00+08:00`)
is ignored. Day-first and month-first forms (`07/12/2026`) are refused: they are ambiguous.
"""

from __future__ import annotations

import re
from datetime import date

from seamflow.quality.amounts import AmountInvalid, parse_chinese_numeral
from seamflow.quality.text import to_half_width

__all__ = ["DateInvalid", "normalise_date"]

_NUMERIC = re.compile(
    r"(\d{4})(?:[-/.](\d{1,2})[-/.](\d{1,2})|(\d{2})(\d{2}))"
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_CHINESE = re.compile(r"(.{4})年(.{1,3})月(.{1,3})[日号]")


class DateInvalid(ValueError):
    """The text is not a calendar date; the message says why."""


def normalise_date(text: str) -> date:
    """Return the date written in `text`.

    Raises:
        DateInvalid: not a date in a known form, or a day that does not exist (`2026-02-30`).
    """
    compact = to_half_width(text).strip()
    match = _NUMERIC.fullmatch(compact)
    if match:
        year, month, day = match[1], match[2] or match[4], match[3] or match[5]
        parts = (int(year), int(month), int(day))
    else:
        chinese = _CHINESE.fullmatch(compact.replace(" ", ""))
        if chinese is None:
            raise DateInvalid("is not a date; expected e.g. 2026-12-07, 2026/12/7 or 2026年12月7日")
        parts = tuple(_number(part) for part in chinese.groups())  # type: ignore[assignment]  # three parts
    try:
        return date(*parts)
    except ValueError:
        raise DateInvalid("names a day that does not exist") from None


def _number(text: str) -> int:
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        return parse_chinese_numeral(text)
    except AmountInvalid:
        raise DateInvalid("is not a date; expected e.g. 2026年12月7日") from None
