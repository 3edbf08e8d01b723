"""The values a render works with: the `secrets` root, and what an expression gives turned into Json or text.

`Secrets` hands out one secret by name only; `as_json` and `as_text` refuse anything that is not data
and spend the render's output `Budget`.
"""

from __future__ import annotations

import re
import types
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from decimal import Decimal
from typing import Final, NoReturn

import jinja2
from jinja2.runtime import LoopContext

from seamflow import codec, errors, redact
from seamflow.flows import filters
from seamflow.ids import Json

MAX_NESTING: Final = 64
"""Deepest nesting of a template's syntax tree, and of values rendered or compiled."""

_MAPPING_METHODS: Final = frozenset(
    {"items", "keys", "values", "get", "copy", "pop", "popitem", "update", "setdefault", "clear"}
)
_ONE_BY_NAME: Final = "secrets can only be read one by name, as secrets.name or secrets['name']"


def forbidden_error(message: str) -> errors.ExpressionError:
    """Return the error for an expression that reached for something flows may not use."""
    return errors.ExpressionError(message, code="expression.forbidden")


# --- secrets -----------------------------------------------------------------------------


class Secrets:
    """The `secrets` root: secret values that an expression may read one by name only.

    `{{ secrets.crm }}` and `{{ secrets['crm'] }}` give the value; listing, iterating or
    rendering the whole set is refused, so a flow cannot dump every secret. Values are
    registered with the redactor (`seamflow.redact`), so they never appear in an error message.

    Args:
        values: secret values by name, usually read from `SEAMFLOW_SECRET_<NAME>`.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        for value in self._values.values():
            redact.register(value)

    def __getitem__(self, name: object) -> str:
        """Return the secret called `name`.

        Raises:
            errors.ExpressionError: `expression.undefined` naming the environment variable
                to set when the secret is missing; `expression.forbidden` for a name that
                is not a secret name (`items`, `_values`, a number).
        """
        if not isinstance(name, str) or name.startswith("_"):
            raise forbidden_error(_ONE_BY_NAME)
        if name in self._values:
            return self._values[name]
        if name in _MAPPING_METHODS:
            raise forbidden_error(f"{_ONE_BY_NAME}; {name!r} is not a secret")
        variable = "SEAMFLOW_SECRET_" + re.sub(r"[^A-Z0-9]", "_", name.upper())
        raise errors.ExpressionError(
            f"secret {name!r} is not set; expected the environment variable {variable}",
            code="expression.undefined",
        )

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise forbidden_error(_ONE_BY_NAME)

    __iter__ = __len__ = __contains__ = __str__ = __format__ = _refuse
    keys = items = values = get = _refuse

    def __repr__(self) -> str:
        return "<secrets>"


# --- values: what an expression's result may be ------------------------------------------


class Budget:
    """How much more a render may produce, in characters (roughly); shared by its values."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = filters.MAX_OUTPUT_CHARS

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise filters.limit_error(f"output larger than {filters.MAX_OUTPUT_CHARS} characters")


def describe(value: object) -> str:
    """Name a value's kind for an error message: "a dict", "the function 'upper'"."""
    if isinstance(value, types.BuiltinMethodType | types.MethodType | types.FunctionType):
        return f"the function {getattr(value, '__name__', '?')!r}"
    name = type(value).__name__
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def as_json(value: object, budget: Budget, depth: int = 0) -> Json:
    """Copy an expression's value into fresh Json, refusing anything that is not data."""
    budget.spend(1)
    if depth > MAX_NESTING:
        raise filters.limit_error(f"value nested deeper than {MAX_NESTING} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal | float):
        return as_number(value)
    if isinstance(value, str):
        budget.spend(len(value))
        return str(value)  # a plain str, also for Markup from |escape
    if isinstance(value, Mapping):
        return {_as_key(key): as_json(item, budget, depth + 1) for key, item in value.items()}
    if isinstance(value, Secrets):
        raise forbidden_error(_ONE_BY_NAME)
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, LoopContext):
        raise errors.ExpressionError("loop is not data; use loop.index", code="expression.type")
    if isinstance(value, list | tuple | range | KeysView | ValuesView | ItemsView | Iterator):
        return [as_json(item, budget, depth + 1) for item in value]
    raise errors.ExpressionError(
        f"the expression gives {describe(value)}, which is not data (a function needs its ());"
        " expected text, a number, true/false, none, a list or a mapping",
        code="expression.type",
    )


def as_number(value: int | Decimal | float) -> int | Decimal:
    """A number as an int or an exact Decimal (a float through its repr), within the digit bound."""
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal) and not value.is_finite():
        raise errors.ExpressionError(f"{value} is not a finite number", code="expression.value")
    filters.check_number(value)
    return int(value) if isinstance(value, int) else value


def _as_key(key: object) -> str:
    if not isinstance(key, str):
        raise errors.ExpressionError(
            f"a mapping key is {describe(key)} {errors.redact(key)}; expected text",
            code="expression.type",
        )
    return str(key)


def as_text(value: object) -> str:
    """Text of a value inside a text template: str(); none is ""; lists/mappings are JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return str(value)
    data = as_json(value, Budget())
    return codec.dumps_text(data) if isinstance(data, list | dict) else str(data)
