"""The values a render works with: the `secrets` root, and what an expression gives turned into Json or text.

`Secrets` hands out one secret by name only, as `SecretText`; `tracked` marks what a filter, an
operator or a method makes from such text as secret too; `as_json` and `as_text` refuse anything
that is not data and spend the render's output `Budget`.
"""

from __future__ import annotations

import re
import types
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from contextvars import ContextVar
from decimal import Decimal
from typing import Final, NoReturn

import jinja2
from jinja2.runtime import Context, LoopContext

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


class SecretText(str):
    """Text that is a secret or was made from one (`secrets.pw | upper`, `'u:' ~ secrets.pw`).

    Every instance of `MIN_TRACKED_LENGTH` characters or more is registered with the redactor
    when it is made (`secret_text`), so it is masked wherever it shows, alone or inside longer
    text. `str()` keeps the mark, so a text template can tell which of its pieces were secret.
    """

    __slots__ = ()

    def __str__(self) -> str:
        return self


MIN_TRACKED_LENGTH: Final = redact.MIN_SECRET_LENGTH
"""Text made from a secret shorter than this is marked but not registered (it would mask "8" everywhere)."""


def secret_text(value: str) -> SecretText:
    """Mark `value` as made from a secret and register it with the redactor (when long enough)."""
    if len(value) >= MIN_TRACKED_LENGTH and value.strip() and not redact.is_registered(value):
        redact.register(str.__str__(value))  # each run makes the same texts: register them once
    return value if isinstance(value, SecretText) else SecretText(value)


SECRET_READ: Final[ContextVar[bool]] = ContextVar("seamflow_secret_read", default=False)
"""Whether the render under way has read a secret; until it has, nothing can hold one (a fast path)."""


def holds_secret(value: object, depth: int = 0) -> bool:
    """Whether `value` is `SecretText` or a list/tuple/mapping holding some (keys included)."""
    if isinstance(value, str):
        return isinstance(value, SecretText)
    if depth > MAX_NESTING:
        return False
    if isinstance(value, Mapping) and not isinstance(value, Context):
        return any(holds_secret(k, depth + 1) or holds_secret(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(holds_secret(item, depth + 1) for item in value)
    return False


def tracked(result: object, *inputs: object) -> object:
    """`result` with its text marked as secret if any of `inputs` holds a secret; else unchanged.

    Text becomes `SecretText` (registered); the text inside a list, tuple or mapping is marked
    item by item; numbers, true/false and none are never secret (`| length` gives a plain 8).
    Iterators and generators are read into a list so their items can be marked.
    """
    if not SECRET_READ.get() or not any(holds_secret(value) for value in inputs):
        return result
    return _mark(result, 0)


def _mark(value: object, depth: int) -> object:
    if isinstance(value, str):
        return secret_text(value)
    if depth > MAX_NESTING:
        return value
    if isinstance(value, Mapping):
        return {_mark(k, depth + 1): _mark(v, depth + 1) for k, v in value.items()}
    if isinstance(value, tuple):  # groupby's (grouper, list) keeps its names
        items = [_mark(item, depth + 1) for item in value]
        return value._make(items) if hasattr(value, "_make") else tuple(items)
    if isinstance(value, list | Iterator):
        return [_mark(item, depth + 1) for item in value]
    return value


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
            SECRET_READ.set(True)
            return SecretText(self._values[name])
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
        return str.__str__(value)  # a plain str, also for Markup from |escape and SecretText
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
        return value if isinstance(value, SecretText) else str.__str__(value)
    data = as_json(value, Budget())
    return codec.dumps_text(data) if isinstance(data, list | dict) else str(data)
