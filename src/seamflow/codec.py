"""JSON in and out: exact numbers (Decimal, never float money) and strict parsing of untrusted bodies.

`loads`/`dumps` are for our own stored data. `parse_untrusted` is for bytes from outside:
it refuses invalid UTF-8, NaN/Infinity, duplicate keys, NUL characters, lone surrogates,
nesting deeper than a limit and numbers longer than a limit, each with a message that says where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import simplejson

from seamflow import errors
from seamflow.ids import Json

__all__ = ["Limits", "dumps", "dumps_text", "loads", "parse_untrusted"]

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds for untrusted JSON."""

    max_depth: int = 64
    """Deepest nesting of objects and arrays."""
    max_number_chars: int = 100
    """Longest number literal, in characters."""


def dumps(value: Json) -> bytes:
    """Encode `value` as compact UTF-8 JSON; Decimal is written as the exact number.

    Raises:
        errors.PayloadInvalid: `value` holds NaN/Infinity or a lone surrogate (not valid JSON).
    """
    text = dumps_text(value)
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise errors.PayloadInvalid(
            f"text holds the lone surrogate {text[exc.start]!r}; expected valid Unicode characters",
            code="payload.json",
        ) from None


def dumps_text(value: Json) -> str:
    """Encode `value` as compact JSON text (non-ASCII kept as is).

    Raises:
        errors.PayloadInvalid: `value` holds NaN or Infinity, which JSON cannot carry.
    """
    try:
        return simplejson.dumps(value, use_decimal=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
        raise errors.PayloadInvalid(
            "NaN or Infinity is not a JSON number; expected a finite number", code="payload.json"
        ) from None


def loads(data: bytes | str) -> Json:
    """Decode JSON we wrote ourselves; numbers with a fraction become Decimal."""
    result: Json = _DECIMAL_DECODER.decode(data)  # type: ignore[arg-type]  # bytes are decoded as UTF-8, as loads does
    return result


_DECIMAL_DECODER = simplejson.JSONDecoder(parse_float=Decimal)
"""What `simplejson.loads(data, use_decimal=True)` makes anew on every call (it keeps no state)."""


def parse_untrusted(data: bytes, limits: Limits = Limits()) -> Json:
    """Decode an untrusted JSON body strictly.

    Raises:
        errors.PayloadInvalid: with a code and a message saying what and where.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.PayloadInvalid(
            f"body is not valid UTF-8: byte {exc.start} is {data[exc.start : exc.start + 1]!r}",
            code="payload.encoding",
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip(" \t\r\n"):
        raise errors.PayloadInvalid("body is empty; expected a JSON document", code="payload.json")

    def _int(literal: str) -> int:
        if len(literal) > limits.max_number_chars:
            raise _Refused(f"number with {len(literal)} digits exceeds {limits.max_number_chars}")
        return int(literal)

    def _float(literal: str) -> Decimal:
        if len(literal) > limits.max_number_chars:
            raise _Refused(f"number with {len(literal)} chars exceeds {limits.max_number_chars}")
        return Decimal(literal)

    def _constant(name: str) -> Any:
        raise _Refused(f"{name} is not a JSON number; expected a finite number")

    def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise _Refused(f"duplicate key {errors.redact(key)} in one object")
            result[key] = value
        return result

    try:
        value = simplejson.loads(
            text,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
            object_pairs_hook=_pairs,
        )
    except _Refused as exc:
        raise errors.PayloadInvalid(str(exc), code="payload.json") from None
    except simplejson.JSONDecodeError as exc:
        raise errors.PayloadInvalid(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            code="payload.json",
        ) from None
    except RecursionError:
        raise errors.PayloadInvalid(
            f"JSON nested deeper than {limits.max_depth} levels", code="payload.depth"
        ) from None
    _check_tree(value, limits.max_depth)
    return value  # type: ignore[no-any-return]  # simplejson is untyped; _check_tree walked it


class _Refused(ValueError):
    pass


def _check_tree(value: Any, max_depth: int) -> None:
    """Refuse deep nesting, NUL characters and lone surrogates, iteratively (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > max_depth:
                raise errors.PayloadInvalid(f"JSON nested deeper than {max_depth} levels", code="payload.depth")
            for key, item in node.items():
                if "\x00" in key:
                    raise errors.PayloadInvalid("NUL character in an object key", code="payload.nul")
                _check_surrogates(key, "an object key")
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            if depth > max_depth:
                raise errors.PayloadInvalid(f"JSON nested deeper than {max_depth} levels", code="payload.depth")
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, str):
            if "\x00" in node:
                raise errors.PayloadInvalid("NUL character in a string value", code="payload.nul")
            _check_surrogates(node, "a string value")


def _check_surrogates(text: str, what: str) -> None:
    """A `\\ud800`-style escape without its pair decodes to a lone surrogate, which is not text."""
    if text.isascii():
        return
    match = _SURROGATE.search(text)
    if match is not None:
        raise errors.PayloadInvalid(
            f"lone surrogate \\u{ord(match.group()):04x} in {what}; expected a complete surrogate pair or a character",
            code="payload.json",
        )
