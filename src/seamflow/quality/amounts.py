"""Money amounts as typed in Chinese business data, to `Decimal` yuan with two places.

Figures with a currency sign or word (`1,288.50元`, `￥1288.5`, `RMB 1,288.50`, `1288.50 CNY`,
`1.2万`) and amounts in Chinese numerals, the capital form written on invoices and cheques
(`人民币壹仟贰佰捌拾捌元伍角整`) or the common form (`一千二百八十八元五角`). Never a float.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from seamflow.quality.text import to_half_width

__all__ = ["AmountInvalid", "normalise_amount", "parse_chinese_numeral"]

CENT = Decimal("0.01")
"""A fen: amounts are quantized to it."""
_PLAIN = re.compile(r"-?\d{1,15}(?:\.\d{1,2})?")
_COMMON = re.compile(r"[¥￥]?(\d{1,3}(?:,\d{3}){1,4}|\d{1,15})(\.\d{1,2})?元?")
"""`￥1288.50`, `1,288.50元`: a figure with a sign in front or 元 behind, read without the general way's rewriting."""
_CURRENCY = re.compile(r"^(?:人民币|RMB|CNY|¥|￥)|(?:元整|元正|元|圆|RMB|CNY)$", re.IGNORECASE)
_FIGURE = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_DIGITS = {"零": 0, "〇": 0, "○": 0, "壹": 1, "一": 1, "贰": 2, "貳": 2, "二": 2, "两": 2, "叁": 3, "參": 3, "三": 3}
_DIGITS |= {"肆": 4, "四": 4, "伍": 5, "五": 5, "陆": 6, "陸": 6, "六": 6, "柒": 7, "七": 7, "捌": 8, "八": 8}
_DIGITS |= {"玖": 9, "九": 9}
_UNITS = {"拾": 10, "十": 10, "佰": 100, "百": 100, "仟": 1000, "千": 1000}
_BIG = {"万": 10_000, "萬": 10_000, "亿": 100_000_000, "億": 100_000_000}
_FRACTIONS = {"角": Decimal("0.1"), "分": Decimal("0.01")}
_CHINESE_CHARACTERS = frozenset([*_DIGITS, *_UNITS, *_BIG, *_FRACTIONS, "元", "圆", "整", "正"])


class AmountInvalid(ValueError):
    """The text is not an amount of money; the message says why."""


def normalise_amount(text: str) -> Decimal:
    """Return the amount in yuan with two decimal places.

    Raises:
        AmountInvalid: not an amount, or finer than a fen (more than two decimal places).
    """
    if _PLAIN.fullmatch(text):  # the common case, `1288.50`: no sign, no grouping, no words
        return _to_fen(Decimal(text))
    if (common := _COMMON.fullmatch(text)) is not None:
        whole, cents = common.groups()
        return Decimal(whole.replace(",", "") + (cents or "")).quantize(CENT)
    compact = re.sub(r"[\s\u3000]+", "", text).replace("，", ",")
    compact = to_half_width(compact).replace("￥", "¥")
    if not compact:
        raise AmountInvalid("is empty")
    for _ in range(2):  # a sign in front and a word behind: `¥1,288.50元`
        compact = _CURRENCY.sub("", compact)
    scale = Decimal(1)
    if compact.endswith(("万", "萬")) and _FIGURE.fullmatch(compact[:-1]):
        compact, scale = compact[:-1], Decimal(10_000)
    if _FIGURE.fullmatch(compact):
        value = Decimal(compact.replace(",", "")) * scale
    elif compact and all(ch in _CHINESE_CHARACTERS for ch in compact):
        value = _chinese_amount(compact.replace("圆", "元"))
    else:
        raise AmountInvalid("is not an amount; expected a figure such as 1,288.50元 or 壹仟贰佰捌拾捌元伍角")
    cents = _to_fen(value)
    if cents != value:
        raise AmountInvalid("has more than two decimal places; expected yuan to the fen")
    return cents


def _to_fen(value: Decimal) -> Decimal:
    """`value` to the fen; more digits than the decimal context holds is not an amount (quantize refuses it)."""
    try:
        return value.quantize(CENT)
    except InvalidOperation:
        raise AmountInvalid("is too large; expected an amount in yuan of at most 26 digits") from None


def _chinese_amount(text: str) -> Decimal:
    text = text.rstrip("整正")
    whole, _, rest = text.partition("元") if "元" in text else (text, "", "")
    if not rest and any(ch in _FRACTIONS for ch in whole):  # `伍角` with no yuan
        whole, rest = "", whole
    value = Decimal(parse_chinese_numeral(whole)) if whole else Decimal(0)
    pending: int | None = None
    for ch in rest:
        if ch in _DIGITS:
            pending = _DIGITS[ch]
        elif ch in _FRACTIONS and pending is not None:
            value += pending * _FRACTIONS[ch]
            pending = None
        else:
            raise AmountInvalid("has jiao and fen out of order; expected e.g. 伍角叁分")
    if pending not in (None, 0):
        raise AmountInvalid("ends in a digit without 角 or 分")
    return value


def parse_chinese_numeral(text: str) -> int:
    """Return the integer written in Chinese numerals: `壹仟贰佰捌拾捌` → 1288, `十二` → 12, `二〇二六` → 2026.

    Raises:
        AmountInvalid: a character that is not a numeral, or units out of order.
    """
    if text and all(ch in _DIGITS for ch in text):  # digit by digit, as years are written
        return int("".join(str(_DIGITS[ch]) for ch in text))
    total = section = number = 0
    for ch in text:
        if ch in _DIGITS:
            number = _DIGITS[ch]
        elif ch in _UNITS:
            section += (number or 1) * _UNITS[ch]
            number = 0
        elif ch in _BIG:
            if _BIG[ch] == 100_000_000:
                total = (total + section + number) * 100_000_000
            else:
                total += (section + number) * 10_000
            section = number = 0
        else:
            raise AmountInvalid(f"has {ch!r}, which is not a Chinese numeral")
    return total + section + number
