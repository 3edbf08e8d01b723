"""JSON in and out: exact numbers (Decimal, never float money) and strict parsing of untrusted bodies.

`loads`/`dumps` are for our own stored data. `parse_untrusted` is for bytes from outside:
it refuses invalid UTF-8, NaN/Infinity, duplicate keys, NUL characters, nesting deeper
than a limit and numbers longer than a limit, each with a message that says where.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import simplejson

from seamflow import errors
from seamflow.ids import Json

__all__ = ["Limits", "dumps", "dumps_text", "loads", "parse_untrusted"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds for untrusted JSON."""

    max_depth: int = 64
    """Deepest nesting of objects and arrays."""
    max_number_chars: int = 100
    """Longest number literal, in characters."""


def dumps(value: Json) -> bytes:
    """Encode `value` as compact UTF-8 JSON; Decimal is written as the exact number."""
    return dumps_text(value).encode()


def dumps_text(value: Json) -> str:
    """Encode `value` as compact JSON text (non-ASCII kept as is)."""
    return simplejson.dumps(
        value, use_decimal=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def loads(data: bytes | str) -> Json:
    """Decode JSON we wrote ourselves; numbers with a fraction become Decimal."""
    result: Json = simplejson.loads(data, use_decimal=True)
    return result


def parse_untrusted(data: bytes, limits: Limits = Limits()) -> Json:
    """Decode an untrusted JSON body strictly.

    Raises:
        errors.PayloadInvalid: with a code and a message saying what and where.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.PayloadInvalid(
            f"body is not valid UTF-8: byte {exc.start} is {data[exc.start:exc.start + 1]!r}",
            code="payload.encoding",
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]

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
    """Refuse deep nesting and NUL characters, iteratively (no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > max_depth:
                raise errors.PayloadInvalid(
                    f"JSON nested deeper than {max_depth} levels", code="payload.depth"
                )
            for key, item in node.items():
                if "\x00" in key:
                    raise errors.PayloadInvalid("NUL character in an object key", code="payload.nul")
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            if depth > max_depth:
                raise errors.PayloadInvalid(
                    f"JSON nested deeper than {max_depth} levels", code="payload.depth"
                )
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, str) and "\x00" in node:
            raise errors.PayloadInvalid("NUL character in a string value", code="payload.nul")
