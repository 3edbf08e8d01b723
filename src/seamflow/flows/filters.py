"""What flow expressions can compute: the filters integrators use, and the bounds they respect.

Every function here is pure, takes Json values and returns Json values. Money is
`Decimal` or integer cents, never float; the date filters live in `flows.dates` and are
listed in `FILTERS` with the rest. Bad input raises `errors.ExpressionError` with code
`expression.value` (a value of the right type that cannot be used) or `expression.type`
(a value of the wrong type).
`docs/reference/expressions.md` lists every filter with an example.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    localcontext,
)
from typing import Final

from jinja2 import Undefined, filters, pass_environment, pass_eval_context
from jinja2.environment import Environment
from jinja2.nodes import EvalContext
from slugify import slugify as _slugify

from seamflow import errors
from seamflow.flows import dates
from seamflow.flows.refusals import type_error, value_error

__all__ = [
    "DECIMAL_CONTEXT",
    "FILTERS",
    "MAX_INT_DIGITS",
    "MAX_ITEMS",
    "MAX_OUTPUT_CHARS",
    "MAX_RANGE",
    "check_number",
    "check_replace",
    "check_size",
    "check_text_length",
    "limit_error",
]

MAX_OUTPUT_CHARS: Final = 1 << 20
"""Largest text (and roughly, largest rendered value) one render may produce: 1 MiB."""
MAX_ITEMS: Final = 100_000
"""Largest list an expression may build."""
MAX_INT_DIGITS: Final = 1000
"""Largest integer, in decimal digits, an expression may hold or produce."""
MAX_RANGE: Final = 10_000
"""Most items `range()` may produce."""
DECIMAL_CONTEXT: Final = Context(prec=28, rounding=ROUND_HALF_EVEN)
"""Fixed decimal arithmetic, so results never depend on a thread's current context."""

_EXACT: Final = Context(prec=2 * MAX_INT_DIGITS + 30)  # rounding to places never loses digits
_INT_LIMIT: Final = 10**MAX_INT_DIGITS
_INT_BITS: Final = _INT_LIMIT.bit_length()
_MISSING: Final = object()
_ROUNDING: Final = {
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
    "down": ROUND_DOWN,
    "up": ROUND_UP,
    "floor": ROUND_FLOOR,
    "ceiling": ROUND_CEILING,
}
_CURRENCY = re.compile(r"[\s¥￥$€£元]|RMB|CNY|USD", re.IGNORECASE)
_AMOUNT = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[+-]?\.\d+")
_MOBILE = re.compile(r"1[3-9]\d{9}")


def limit_error(what: str) -> errors.ExpressionError:
    """Return the error for an expression that went past one of its bounds."""
    return errors.ExpressionError(what, code="expression.limit")


def check_number(value: object) -> None:
    """Refuse an int or Decimal with more than `MAX_INT_DIGITS` digits before the point."""
    if isinstance(value, int):
        if value.bit_length() >= _INT_BITS and abs(value) >= _INT_LIMIT:
            raise limit_error(f"integer larger than {MAX_INT_DIGITS} digits")
    elif isinstance(value, Decimal) and value.is_finite() and value.adjusted() >= MAX_INT_DIGITS:
        raise limit_error(f"number larger than {MAX_INT_DIGITS} digits")


def check_size(value: object) -> None:
    """Refuse text longer than `MAX_OUTPUT_CHARS` or a list longer than `MAX_ITEMS`."""
    if isinstance(value, str):
        check_text_length(len(value))
    if isinstance(value, list | tuple) and len(value) > MAX_ITEMS:
        raise limit_error(f"list longer than {MAX_ITEMS} items")
    check_number(value)


# --- money -------------------------------------------------------------------------------


def _to_decimal(value: object) -> Decimal:
    """Read an amount: int, Decimal, or text such as "¥1,234.50", "1234.5 元", "-19.90"."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise type_error(value, "an amount: a number or text such as '19.90'")
    if isinstance(value, str):
        text = _CURRENCY.sub("", value)
        if len(text) > MAX_INT_DIGITS or not _AMOUNT.fullmatch(text):
            raise value_error(f"{errors.redact(value)} is not an amount", "digits with an optional '.' and ','")
        value = Decimal(text.replace(",", ""))
    result = Decimal(value)
    if not result.is_finite():
        raise value_error(f"{errors.redact(value)} is not a finite number", "a finite amount")
    check_number(result)
    return result


def _rounding(name: str) -> str:
    if name not in _ROUNDING:
        raise value_error(f"unknown rounding {errors.redact(name)}", f"one of {sorted(_ROUNDING)}")
    return _ROUNDING[name]


def to_decimal(value: object, places: int | None = None, rounding: str = "half_up") -> Decimal:
    """Convert an amount to an exact Decimal, optionally rounded to `places` decimals.

    `{{ "¥1,234.5"|decimal(2) }}` gives `Decimal("1234.50")`. Rounding is one of
    half_up (the default, 四舍五入), half_even, down, up, floor, ceiling.
    """
    result = _to_decimal(value)
    if places is None:
        return result
    if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 28:
        raise type_error(places, "places: an integer from 0 to 28")
    return result.quantize(Decimal(1).scaleb(-places), rounding=_rounding(rounding), context=_EXACT)


def cents(value: object, round: bool = False) -> int:
    """Convert an amount to integer cents: `{{ "19.90"|cents }}` gives `1990`.

    Accepts int, Decimal and text with currency signs and thousands separators
    ("¥1,234.50", "1234.5 元"). An amount with a fraction of a cent ("19.999") is an
    error, unless `round=True`, which rounds half up (四舍五入): 19.995 → 2000.
    """
    amount = _to_decimal(value).scaleb(2, context=_EXACT)
    whole = amount.to_integral_value(rounding=ROUND_HALF_UP, context=_EXACT)
    if whole != amount and not round:
        raise value_error(
            f"{errors.redact(value)} has a fraction of a cent",
            "at most 2 decimals, or cents(round=True)",
        )
    return int(whole)


def from_cents(value: object) -> Decimal:
    """Convert integer cents to an amount: `{{ 1990|from_cents }}` gives `Decimal("19.90")`."""
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,1000}", value.strip()):
        value = int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(value, "a whole number of cents")
    check_number(value)
    return Decimal(f"{value}e-2")


def to_int(value: object, default: object = _MISSING) -> object:
    """Convert to an integer: `{{ "42"|int }}` gives `42`; "19.00" gives 19.

    Unlike Jinja's `int`, a value that is not a whole number ("19.90", "abc", None) is an
    error rather than a silent 0 — unless a `default` is given, which is then returned.
    """
    try:
        if isinstance(value, bool | int):
            result = int(value)
        else:
            number = _to_decimal(value.strip() if isinstance(value, str) else value)
            if number != number.to_integral_value():
                raise value_error(f"{errors.redact(value)} is not whole", "a whole number")
            result = int(number)
    except errors.ExpressionError:
        if default is _MISSING:
            raise
        return default
    check_number(result)
    return result


def round_number(value: object, precision: int = 0, method: str = "common") -> int | Decimal:
    """Round a number exactly: `{{ "2.345"|round(2) }}` gives `Decimal("2.35")`.

    `method` is "common" (half up, 四舍五入), "ceil" or "floor". An int stays an int;
    anything else becomes a Decimal with `precision` decimals. Never a float.
    """
    modes = {"common": "half_up", "ceil": "ceiling", "floor": "floor"}
    if method not in modes:
        raise value_error(f"unknown method {errors.redact(method)}", "common, ceil or floor")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return to_decimal(value, precision, modes[method])


@pass_environment
def sum_numbers(
    environment: Environment,
    iterable: Iterable[object],
    attribute: str | None = None,
    start: object = 0,
) -> object:
    """Add numbers exactly (ints and Decimals): `{{ lines|sum(attribute="amount") }}`."""
    values: Iterable[object] = iterable
    if attribute is not None:
        values = map(filters.make_attrgetter(environment, attribute), iterable)
    total = start
    with localcontext(DECIMAL_CONTEXT):
        for item in values:
            if isinstance(item, bool) or not isinstance(item, int | Decimal):
                raise type_error(item, "numbers to add (use |decimal on text)")
            total = total + item  # type: ignore[operator]  # start may be any number
            check_number(total)
    return total


# --- text --------------------------------------------------------------------------------


def _text(value: object, what: str = "text") -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    raise type_error(value, what)


def digits(value: object) -> str:
    """Keep only the digits 0-9: `{{ "+86 138-0013-8000"|digits }}` gives "8613800138000"."""
    return "".join(ch for ch in _text(value) if "0" <= ch <= "9")


def phone_cn(value: object) -> str:
    """Normalise a mainland China mobile number to 11 digits.

    "+86 138 0013 8000", "0086-13800138000" and "13800138000" all give "13800138000".
    Anything that is not 11 digits starting with 13-19 after an optional +86/0086/86
    prefix is an error.
    """
    text = re.sub(r"[\s\-().]", "", _text(value, "a phone number"))
    for prefix in ("+86", "0086", "86"):
        if text.startswith(prefix) and len(text) == len(prefix) + 11:
            text = text[len(prefix) :]
            break
    if not _MOBILE.fullmatch(text):
        raise value_error(
            f"{errors.redact(value)} is not a mainland China mobile number",
            "11 digits starting with 13-19, optionally after +86 or 0086",
        )
    return text


def slugify(value: object, separator: str = "-", max_length: int = 0) -> str:
    """A URL-safe slug; Chinese is transliterated: "深圳 华强北" gives "shen-zhen-hua-qiang-bei"."""
    slug: str = _slugify(_text(value), separator=separator, max_length=max_length)
    return slug


def hash_text(value: object, algorithm: str = "sha256") -> str:
    """Hex digest of the text: `{{ event.body.email|hash("md5") }}`; sha256 by default.

    `algorithm` is one of md5, sha1, sha256, sha512.
    """
    if algorithm not in ("md5", "sha1", "sha256", "sha512"):
        raise value_error(f"unknown algorithm {errors.redact(algorithm)}", "md5, sha1, sha256 or sha512")
    return hashlib.new(algorithm, _text(value).encode()).hexdigest()


def sha256(value: object) -> str:
    """SHA-256 hex digest of the text."""
    return hash_text(value, "sha256")


def md5(value: object) -> str:
    """MD5 hex digest of the text (for APIs that sign with MD5; not for security)."""
    return hash_text(value, "md5")


def hmac_sha256(value: object, key: object) -> str:
    """HMAC-SHA256 hex digest of the text with `key`: `{{ body|hmac_sha256(secrets.shop) }}`."""
    secret = _text(key, "a key").encode()
    return hmac.new(secret, _text(value).encode(), hashlib.sha256).hexdigest()


def b64encode(value: object) -> str:
    """Standard base64 of the text's UTF-8 bytes: `{{ ("zhang.wei:" ~ secrets.crm) | b64encode }}`.

    What an HTTP Basic `Authorization` header carries; made from a secret, the result is masked
    as a secret too (docs/reference/expressions.md, "Secrets in expressions").
    """
    text = _text(value)
    check_text_length((len(text.encode()) + 2) // 3 * 4)
    return base64.b64encode(text.encode()).decode()


# --- choosing values ---------------------------------------------------------------------


def _is_empty(value: object) -> bool:
    return value is None or isinstance(value, Undefined) or (isinstance(value, str) and not value)


def coalesce(value: object, *alternatives: object) -> object:
    """The first of the value and the alternatives that is not missing, None or "".

    `{{ event.body.nickname|coalesce(event.body.name, "customer") }}`; None if all are empty.
    """
    return next((item for item in (value, *alternatives) if not _is_empty(item)), None)


def lookup(value: object, table: object, default: object = _MISSING) -> object:
    """Translate a value through a table: `{{ event.body.status|lookup({"paid": "已付款"}) }}`.

    A number also matches its text key (1 matches "1"). A value not in the table is an
    error naming it, unless a `default` is given.
    """
    if not isinstance(table, Mapping):
        raise type_error(table, "a table such as {'paid': '已付款'}")
    if value in table:
        return table[value]
    if isinstance(value, int | Decimal) and str(value) in table:
        return table[str(value)]
    if default is not _MISSING:
        return default
    keys = ", ".join(errors.redact(key, 30) for key in list(table)[:10])
    raise value_error(f"{errors.redact(value)} is not in the lookup table", f"one of {keys}")


# --- Jinja builtins whose arguments could multiply the output ----------------------------


def check_text_length(size: int) -> None:
    """Refuse to build text of `size` characters if that is more than `MAX_OUTPUT_CHARS`."""
    if size > MAX_OUTPUT_CHARS:
        raise limit_error(f"text longer than {MAX_OUTPUT_CHARS} characters")


def check_replace(text: str, old: str, new: str, count: int | None = None) -> None:
    """Refuse a replacement that would build more than `MAX_OUTPUT_CHARS` of text."""
    times = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        times = min(times, count)
    check_text_length(len(text) + times * max(len(new) - len(old), 0))


@pass_eval_context
def replace(eval_ctx: EvalContext, s: str, old: str, new: str, count: int | None = None) -> str:
    """Jinja's `replace`, refused before it would build more than 1 MiB of text."""
    check_replace(str(s), str(old), str(new), count)
    return filters.do_replace(eval_ctx, s, old, new, count)


def center(value: str, width: int = 80) -> str:
    """Jinja's `center`, with `width` bounded."""
    check_text_length(width)
    return filters.do_center(value, width)


def indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    """Jinja's `indent`, refused before it would build more than 1 MiB of text."""
    pad = len(width) if isinstance(width, str) else width
    check_text_length(len(str(s)) + (str(s).count("\n") + 1) * pad)
    return filters.do_indent(s, width, first, blank)


@pass_environment
def wordwrap(
    environment: Environment,
    s: str,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    """Jinja's `wordwrap`, refused when the wrap string could multiply the text."""
    check_text_length(len(str(s)) * (1 + len(str(wrapstring or "\n"))))
    return filters.do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)


def batch(value: Iterable[object], linecount: int, fill_with: object = None) -> Iterator[list[object]]:
    """Jinja's `batch` (lists of `linecount` items), with `linecount` bounded."""
    if not 1 <= linecount <= MAX_ITEMS:
        raise limit_error(f"batch size must be from 1 to {MAX_ITEMS}")
    return filters.do_batch(value, linecount, fill_with)


FILTERS: Final[Mapping[str, Callable[..., object]]] = {
    "b64encode": b64encode,
    "batch": batch,
    "center": center,
    "cents": cents,
    "coalesce": coalesce,
    "decimal": to_decimal,
    "digits": digits,
    "format_date_cn": dates.format_date_cn,
    "format_datetime": dates.format_datetime,
    "from_cents": from_cents,
    "hash": hash_text,
    "hmac_sha256": hmac_sha256,
    "indent": indent,
    "int": to_int,
    "lookup": lookup,
    "md5": md5,
    "parse_datetime": dates.parse_datetime,
    "phone_cn": phone_cn,
    "replace": replace,
    "round": round_number,
    "sha256": sha256,
    "slugify": slugify,
    "sum": sum_numbers,
    "to_timezone": dates.to_timezone,
    "wordwrap": wordwrap,
}
"""Our filters and our replacements of Jinja's, by the name used in expressions."""
