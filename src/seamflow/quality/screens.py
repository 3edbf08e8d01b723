"""Column screens: the cells of a column that a field type accepts as typed, found with C-level passes
(`map` of a compiled regex, `int`, `Decimal`, `compress`) over the whole column instead of a Python
call per cell. Most cells of a real export are valid, so a rule set screens a column first and runs
the type's validator (with its messages) only on the cells the screen leaves.

A screen takes the positions and texts of some cells and returns those it accepts with their
normalised values. Its promise, checked by `tests/unit/test_quality_screens.py`: for every accepted
text, the type's validator returns the accepted value for `clean_text(text)` (a screen is used only
for fields that clean their text, the default). A screen may leave cells the validator would
accept: they take the slow way. Positions come back in any order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from itertools import compress, repeat
from operator import add, eq, itemgetter, mod, mul, not_, sub

from seamflow.quality import amounts, documents, phones
from seamflow.quality.text import unclean

__all__ = ["SCREENS", "Screen", "keep"]

Screened = tuple[list[int], list[str], list[object]]
Screen = Callable[[list[int], list[str]], Screened]
"""(positions, texts) → the positions, texts and normalised values of the texts accepted as typed."""


def keep(positions: list[int], texts: list[str], flags: Iterable[object]) -> tuple[list[int], list[str]]:
    """The positions and texts whose flag is true."""
    chosen = list(map(bool, flags))
    return list(compress(positions, chosen)), list(compress(texts, chosen))


def screen_text(positions: list[int], texts: list[str]) -> Screened:
    """Text of no type (`type: string`): non-empty and clean; its value is the text."""
    positions, texts = keep(positions, texts, texts)
    positions, texts = keep(positions, texts, map(not_, map(unclean, texts)))
    return positions, texts, list(texts)


_MOBILE = re.compile(r"(?:\+86 ?|0086 ?)?1[0-9]{2}[ -]?[0-9]{4}[ -]?[0-9]{4}")
"""The usual ways of typing a mobile, ASCII only (`phones._COMMON_MOBILE` reads the same shapes)."""


def screen_mobile(positions: list[int], texts: list[str]) -> Screened:
    """Mobiles as `13800138000`, `138-0013-8000`, `+86 138 0013 8000`, `0086…` or in full-width digits
    that the number plan allows: `+86` and the 11 digits, as `phones.normalise_phone_cn` gives for
    every kind but landline."""
    is_typed = list(map(bool, map(_MOBILE.fullmatch, texts)))
    found, typed = list(compress(positions, is_typed)), list(compress(texts, is_typed))
    # the match's 11 digits are its last once spaces and dashes are gone (a group per cell costs more)
    digits = list(
        map(_LAST_11, map(str.replace, map(str.replace, typed, repeat(" "), repeat("")), repeat("-"), repeat("")))
    )
    is_other = list(map(not_, is_typed))
    wide_at, wide = list(compress(positions, is_other)), list(compress(texts, is_other))
    wide_at, wide = keep(wide_at, wide, map(_WIDE.fullmatch, wide))
    found, typed = found + wide_at, typed + wide
    digits += map(str.translate, wide, repeat(_HALF_WIDTH))
    is_mobile = list(map(bool, map(phones.mobile_pattern().fullmatch, digits)))
    numbers = list(map(add, repeat("+86"), compress(digits, is_mobile)))
    return list(compress(found, is_mobile)), list(compress(typed, is_mobile)), numbers


_LAST_11 = itemgetter(slice(-11, None))
_WIDE = re.compile("[\uff10-\uff19]{11}")
"""A mobile typed in full-width digits (a Chinese input method's), which `clean_text` folds to ASCII."""
_HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF10, 0xFF1A)}


_RESIDENT_ID = re.compile(r"[0-9]{17}[0-9X]")


def screen_resident_id(positions: list[int], texts: list[str]) -> Screened:
    """18-character identity numbers whose check digit is right and whose birth date and region
    (with the birth year) were already found valid in this process; the value is the text."""
    positions, texts = keep(positions, texts, map(_RESIDENT_ID.fullmatch, texts))
    bodies = map(int, map(itemgetter(slice(0, 17)), texts), repeat(13))
    # as documents.normalise_resident_id: the check character is (12 - 2·body₁₃ mod 11) mod 11
    sums = map(mod, map(mul, bodies, repeat(2)), repeat(11))
    expected = map(documents.CHECK_CHARACTERS.__getitem__, map(mod, map(sub, repeat(12), sums), repeat(11)))
    positions, texts = keep(positions, texts, map(eq, expected, map(itemgetter(17), texts)))
    births = map(itemgetter(slice(6, 14)), texts)
    positions, texts = keep(positions, texts, map(documents.BIRTH_DATES.__contains__, births))
    regions = map(itemgetter(slice(0, 10)), texts)
    positions, texts = keep(positions, texts, map(documents.REGION_YEARS.__contains__, regions))
    return positions, texts, list(texts)


_AMOUNT = re.compile(
    r"-?[0-9]{1,15}(?:\.[0-9]{1,2})?|[¥￥]?(?:[0-9]{1,3}(?:,[0-9]{3}){1,4}|[0-9]{1,15})(?:\.[0-9]{1,2})?元?"
)
"""`amounts._PLAIN` and `amounts._COMMON`, ASCII digits only: `1288.50`, `-5`, `￥1288.50`, `1,288.50元`."""
_FIGURE_ONLY = dict.fromkeys(map(ord, "¥￥,元"))


def screen_amount(positions: list[int], texts: list[str]) -> Screened:
    """Amounts of the common shapes: the figure without its sign, grouping or 元, to the fen."""
    positions, texts = keep(positions, texts, map(_AMOUNT.fullmatch, texts))
    figures = map(Decimal, map(str.translate, texts, repeat(_FIGURE_ONLY)))
    return positions, texts, list(map(Decimal.quantize, figures, repeat(amounts.CENT)))


SCREENS: Mapping[str, Screen] = {
    "amount": screen_amount,
    "mobile_cn": screen_mobile,
    "phone_cn": screen_mobile,
    "resident_id": screen_resident_id,
}
"""The field types with a screen; a field of another type is validated cell by cell (once per
distinct value). `type: string` uses `screen_text`."""
