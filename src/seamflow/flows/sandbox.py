"""The sandbox flow expressions run in: Jinja's immutable sandbox, narrowed to our filters and a few pure methods.

Arithmetic is exact, and every hook checks the size of what it builds and counts towards the render's CPU deadline.
"""

from __future__ import annotations

import functools
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import timedelta
from decimal import Decimal, localcontext
from typing import Any, Final, NoReturn

import jinja2
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.tests import TESTS as JINJA_TESTS
from jinja2.utils import missing

from seamflow import codec, errors
from seamflow.flows import dates, filters, values

RENDER_TIME_LIMIT: Final = timedelta(milliseconds=100)
"""How long one `Template.render` may take before it stops with `expression.limit`."""

_FORBIDDEN_ATTRIBUTES: Final = frozenset({"format", "format_map", "mro"})
_KEPT_JINJA_FILTERS: Final = (
    "abs capitalize count d default dictsort e escape filesizeformat first groupby items last"
    " length list lower map max min reject rejectattr reverse select selectattr sort striptags"
    " title trim truncate unique upper urlencode wordcount"
).split()
_METHODS: Final[Mapping[type, frozenset[str]]] = {
    str: frozenset(
        "upper lower strip lstrip rstrip split rsplit splitlines replace startswith endswith join"
        " title capitalize casefold swapcase find rfind count removeprefix removesuffix partition"
        " rpartition isdigit isalpha isalnum isspace islower isupper".split()
    ),
    list: frozenset({"index", "count"}),
    dict: frozenset({"get", "keys", "values", "items"}),
}

CHECK_EVERY: Final = 16
"""Hook calls between two reads of the thread's CPU clock.

A read of the thread's CPU time is a system call (~1 µs, and a point where a busy machine
preempts the thread), so the hooks count and only every 16th reads the clock. A render of fewer
hook calls (most step inputs: `{{ event.body.order_no }}` is two) never reads it. A render that
goes on starts its clock at its 16th hook call and is stopped at the first 16th call past
`RENDER_TIME_LIMIT` of CPU from there: at most 2 × 16 hook calls run untimed, and each hook call
is itself bounded by the size limits (output, items, digits) that every hook checks."""


class _Clock:
    """The CPU-time budget of one render: hook calls left until the next read, and the deadline."""

    __slots__ = ("deadline", "hooks_left")

    def __init__(self) -> None:
        self.hooks_left = CHECK_EVERY
        self.deadline: float | None = None  # set by the first read of the clock


_clock: ContextVar[_Clock | None] = ContextVar("seamflow_expression_clock", default=None)


def _tick() -> None:
    """Count a hook call; at every `CHECK_EVERY`th, stop the render once it has used up `RENDER_TIME_LIMIT` of CPU.

    CPU time of the rendering thread, not wall time: a busy machine (other processes, other
    threads holding the GIL) must not make a correct expression fail; only its own work counts.
    """
    clock = _clock.get()
    if clock is None:  # outside a render
        return
    clock.hooks_left -= 1
    if clock.hooks_left > 0:
        return
    clock.hooks_left = CHECK_EVERY
    now = time.thread_time()
    if clock.deadline is None:
        clock.deadline = now + RENDER_TIME_LIMIT.total_seconds()
    elif now > clock.deadline:
        limit_ms = RENDER_TIME_LIMIT / timedelta(milliseconds=1)
        raise filters.limit_error(f"evaluation took longer than {limit_ms:g} ms")


class _TimeLimit:
    """A fresh `_Clock` for the block: a context manager class (cheaper than a generator per render)."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _clock.set(_Clock())

    def __exit__(self, *exc_info: object) -> None:
        _clock.reset(self._token)


def time_limit() -> _TimeLimit:
    """Give the render inside the block `RENDER_TIME_LIMIT` of CPU before the hooks stop it."""
    return _TimeLimit()


# --- what an expression may call besides the filters -------------------------------------


def _concat(*parts: object) -> str:
    """The `~` operator, refused before it builds more than the output limit; secret if a part is."""
    texts = [values.as_text(part) for part in parts]
    filters.check_text_length(sum(map(len, texts)))
    text = "".join(texts)
    return values.secret_text(text) if any(isinstance(t, values.SecretText) for t in texts) else text


def _iterate(iterable: Iterable[object]) -> Iterator[object]:
    """What every `{% for %}` loops over: the iterable, checking the deadline at each item.

    The characters of secret text stay marked as secret (`{% for c in secrets.pw %}`).
    """
    secret = isinstance(iterable, values.SecretText)
    for item in iterable:
        _tick()
        yield values.SecretText(item) if secret else item


def _slice(value: object, start: object, stop: object, step: object) -> object:
    """`value[start:stop:step]`; a slice of secret text stays secret (`secrets.pw[:8]`)."""
    _tick()
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    try:
        result = value[slice(start, stop, step)]  # type: ignore[index]
    except (TypeError, LookupError):
        raise errors.ExpressionError(
            f"cannot slice {values.describe(value)} from {start!r} to {stop!r}; expected text or a list"
            " and whole-number bounds, such as x[2:5]",
            code="expression.type",
        ) from None
    return values.tracked(result, value)


def _range(*args: int) -> range:
    """`range()`, refused beyond `MAX_RANGE` items."""
    if any(isinstance(arg, bool) or not isinstance(arg, int) for arg in args):
        raise errors.ExpressionError("range() takes whole numbers", code="expression.type")
    span = range(*args)
    try:
        size = len(span)
    except OverflowError:
        size = filters.MAX_RANGE + 1
    if size > filters.MAX_RANGE:
        raise filters.limit_error(f"range() of more than {filters.MAX_RANGE} items")
    return span


def _decimal_literal(text: str) -> Decimal:
    """A number literal with a fraction (`19.90`) is an exact Decimal, never a float."""
    return Decimal(text)


@jinja2.pass_environment
def _join(
    environment: jinja2.Environment,
    value: Iterable[object],
    d: str = "",
    attribute: str | None = None,
) -> str:
    """Join the items' text with `d`: `{{ tags|join(", ") }}`; refused beyond the output limit."""
    items = value if attribute is None else map(make_attrgetter(environment, attribute), value)
    separator, texts, size = values.as_text(d), [], 0
    for item in items:
        texts.append(values.as_text(item))
        size += len(texts[-1]) + len(separator)
        filters.check_text_length(size)
    return separator.join(texts)


def _tojson(value: object) -> str:
    """Compact JSON text of the value; Decimals are written exactly: `{{ lines|tojson }}`."""
    return codec.dumps_text(values.as_json(value, values.Budget()))


def _string(value: object) -> str:
    """The value as text, the way a text template writes it (none is "")."""
    return values.as_text(value)


_TRUSTED: Final[tuple[Callable[..., object], ...]] = (
    _range, dict, dates.now, _concat, _iterate, _decimal_literal, _slice,
)  # fmt: skip


# --- the environment ---------------------------------------------------------------------


class _Missing(jinja2.StrictUndefined):
    """A missing name or attribute: an error when used, unless tested (`is defined`) or
    replaced (`default`, `coalesce`). Reading further (`a.missing.deeper`) stays missing."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name, obj = self._undefined_name, self._undefined_obj
        if obj is missing:
            return f"{name!r} is undefined here"
        if isinstance(obj, dict):
            keys = ", ".join(errors.redact(key, 30) for key in list(obj)[:10]) or "none"
            return f"{name!r} is undefined: the mapping has no key {name!r} (its keys: {keys})"
        if isinstance(obj, list | tuple):
            return f"{name!r} is undefined: the list has {len(obj)} items"
        return f"{name!r} is undefined: a {type(obj).__name__} has no attribute {name!r}"


def _bounded(function: Callable[..., object]) -> Callable[..., object]:
    """Wrap a filter so that it checks the deadline and the size of what it returns, and marks
    as secret what it makes from a secret (`values.tracked`)."""

    @functools.wraps(function)  # keeps Jinja's pass_context/pass_environment marker
    def bounded(*args: object, **kwargs: object) -> object:
        _tick()
        result = function(*args, **kwargs)
        filters.check_size(result)
        return values.tracked(result, *args, *kwargs.values())

    return bounded


class _Environment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, narrowed: no `_` or formatting attributes, a whitelist of
    callables, exact and bounded arithmetic, and a deadline checked at every hook."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    seamflow_concat: Callable[..., str]
    seamflow_iterate: Callable[..., Iterator[object]]
    seamflow_decimal: Callable[..., Decimal]
    seamflow_slice: Callable[..., object]

    def __init__(self) -> None:
        super().__init__(autoescape=False, undefined=_Missing, finalize=values.as_text, keep_trailing_newline=True)
        self.globals.clear()
        self.globals.update(range=_range, dict=dict, now=dates.now)
        own = {"join": _join, "tojson": _tojson, "string": _string}
        kept = {name: JINJA_FILTERS[name] for name in _KEPT_JINJA_FILTERS}
        self.filters = {name: _bounded(f) for name, f in {**kept, **filters.FILTERS, **own}.items()}
        self.tests = dict(JINJA_TESTS)
        self.seamflow_concat, self.seamflow_iterate = _concat, _iterate
        self.seamflow_decimal = _decimal_literal
        self.seamflow_slice = _slice

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_") or attr in _FORBIDDEN_ATTRIBUTES:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        if attribute.startswith("_"):
            reason = "names starting with _ are Python internals"
        elif attribute in ("format", "format_map"):
            reason = "text formatting could reach Python internals; join text with ~"
        elif attribute in _FORBIDDEN_ATTRIBUTES:
            reason = "it is a Python internal"
        else:
            reason = "expressions cannot change data"
        raise values.forbidden_error(f"reading {attribute!r} of {values.describe(obj)} is not allowed: {reason}")

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        if isinstance(obj, jinja2.Undefined):
            return obj
        if isinstance(obj, values.Secrets):
            return obj[attribute]
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]  # data first: event.body.items is the key, not dict.items
        if attribute.startswith("_") or attribute in _FORBIDDEN_ATTRIBUTES:
            self.unsafe_undefined(obj, attribute)
        try:
            value = getattr(obj, attribute)
        except AttributeError:
            try:
                return obj[attribute]
            except (TypeError, LookupError):
                return self.undefined(obj=obj, name=attribute)
        if not self.is_safe_attribute(obj, attribute, value):
            self.unsafe_undefined(obj, attribute)
        return value

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        if isinstance(obj, jinja2.Undefined):
            return obj
        if isinstance(obj, values.Secrets):
            return obj[argument]
        try:
            return values.tracked(obj[argument], obj, argument)  # secrets.pw[2:], secrets.pw[0]
        except (TypeError, LookupError):
            pass
        if isinstance(argument, str):
            return self.getattr(obj, argument)
        return self.undefined(obj=obj, name=argument)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _tick()
        if isinstance(obj, jinja2.Undefined):
            obj._fail_with_undefined_error()
        if not any(obj is trusted for trusted in _TRUSTED):
            args = _check_method_call(obj, args)
        result = context.call(obj, *args, **kwargs)
        filters.check_size(result)
        owner = getattr(obj, "__self__", None)  # secrets.pw.upper(): the text the method belongs to
        return values.tracked(result, owner, *args, *kwargs.values())

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        left, right = _exact(left), _exact(right)
        _check_binop(operator, left, right)
        with localcontext(filters.DECIMAL_CONTEXT):
            if operator == "/" and _is_int(left) and _is_int(right):
                left = Decimal(left)  # int / int is exact, never a float
            if operator == "**" and _is_int(left) and _is_int(right) and right < 0:
                left = Decimal(left)
            result = self.binop_table[operator](left, right)
        filters.check_size(result)
        return values.tracked(result, left, right)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _exact(value: object) -> object:
    return Decimal(repr(value)) if isinstance(value, float) else value


def _check_method_call(obj: object, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Allow only whitelisted pure methods; refuse the ones that would grow without bound."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    allowed = _METHODS.get(str if isinstance(owner, values.SecretText) else type(owner), frozenset())
    if not isinstance(obj, types.BuiltinMethodType) or name not in allowed:
        raise values.forbidden_error(
            f"calling {values.describe(obj)} is not allowed in flow expressions; expected range(),"
            " dict(), now(), a filter, or a text/list/mapping method such as .upper() or .get()"
        )
    if name == "replace" and isinstance(owner, str) and len(args) >= 2:
        count = args[2] if len(args) > 2 and isinstance(args[2], int) else None
        filters.check_replace(owner, str(args[0]), str(args[1]), count)
    if name == "join" and isinstance(owner, str) and args:
        items = list(args[0])
        size = sum(len(item) for item in items if isinstance(item, str))
        filters.check_text_length(size + len(owner) * len(items))
        args = (items, *args[1:])
    return args


def _check_binop(operator: str, left: object, right: object) -> None:
    """Refuse, before computing it, an operation whose result would pass the bounds."""
    if operator == "%" and isinstance(left, str):
        raise values.forbidden_error("text formatting with % is not allowed in flow expressions; join text with ~")
    if operator == "*":
        _check_product(left, right)
        _check_product(right, left)
    if isinstance(left, int) and isinstance(right, int):
        bits = filters.MAX_INT_DIGITS * 3.33  # log2(10) bits per digit
        if operator == "**" and right > 0 and abs(left) > 1 and (left.bit_length() - 1) * right > bits:
            raise filters.limit_error(f"integer larger than {filters.MAX_INT_DIGITS} digits")
        if operator == "*" and left.bit_length() + right.bit_length() > bits + 2:
            raise filters.limit_error(f"integer larger than {filters.MAX_INT_DIGITS} digits")
    if operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        _check_length(left, len(left) + len(right))


def _check_product(sequence: object, times: object) -> None:
    if isinstance(sequence, str | list | tuple) and isinstance(times, int):
        _check_length(sequence, len(sequence) * times)


def _check_length(sample: object, size: int) -> None:
    if isinstance(sample, str):
        filters.check_text_length(size)
    elif size > filters.MAX_ITEMS:
        raise filters.limit_error(f"list longer than {filters.MAX_ITEMS} items")


ENVIRONMENT: Final = _Environment()
