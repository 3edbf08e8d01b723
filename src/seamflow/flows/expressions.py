"""Flow expressions: JSON-like values whose strings hold sandboxed Jinja `{{ }}` expressions.

A flow's step inputs, conditions and keys are compiled once per flow version into a
`Template` and rendered per step. A string that is exactly one `{{ expr }}` renders to
the expression's value with its type; any other templated string renders to text; a
string is never re-parsed. Expressions run in an immutable Jinja sandbox that refuses
Python internals, may call only our filters and a few pure methods, and is bounded in
time, output size and integer size. `docs/reference/expressions.md` is the reference.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import time
import types
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from contextvars import ContextVar
from datetime import timedelta
from decimal import Decimal, DecimalException, InvalidOperation, Overflow, localcontext
from typing import Any, Final, NoReturn, TypeAlias

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.tests import TESTS as JINJA_TESTS
from jinja2.utils import missing
from jinja2.visitor import NodeTransformer

from seamflow import codec, errors
from seamflow.flows import filters
from seamflow.ids import Json

__all__ = ["ROOTS", "Secrets", "Template"]

ROOTS: Final = frozenset({"event", "steps", "run", "env", "secrets", "item", "result", "loop_index"})
"""The names a render context may hold; any other free name in an expression is an error."""

RENDER_TIME_LIMIT: Final = timedelta(milliseconds=100)
"""How long one `Template.render` may take before it stops with `expression.limit`."""
MAX_SOURCE_CHARS: Final = 64 * 1024
"""Longest template string."""
MAX_NESTING: Final = 64
"""Deepest nesting of a template's syntax tree, and of values rendered or compiled."""

_RESULT: Final = "seamflow_result"
_GLOBALS: Final = frozenset({"range", "dict", "now"})
_FORBIDDEN_NAMES: Final = frozenset(
    "self config request context cycler joiner namespace lipsum import builtins globals locals"
    " vars getattr setattr eval exec open os sys type object super".split()
)
_FORBIDDEN_ATTRIBUTES: Final = frozenset({"format", "format_map", "mro"})
_REMOVED_FILTERS: Final = {
    "attr": "read attributes with .name or ['name']",
    "format": "join text with ~",
    "float": "use decimal: money is never a float",
    "random": "an expression must give the same result when a run is replayed",
    "pprint": "use tojson",
    "xmlattr": "build the text with ~",
    "urlize": "build the text with ~",
    "safe": "output is never HTML-escaped",
    "forceescape": "use escape",
    "slice": "use batch",
}
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
_STATEMENTS: Final = (
    nodes.Output,
    nodes.For,
    nodes.If,
    nodes.Assign,
    nodes.AssignBlock,
    nodes.With,
    nodes.FilterBlock,
)
_MAPPING_METHODS: Final = frozenset(
    {"items", "keys", "values", "get", "copy", "pop", "popitem", "update", "setdefault", "clear"}
)
_ONE_BY_NAME: Final = "secrets can only be read one by name, as secrets.name or secrets['name']"

_deadline: ContextVar[float] = ContextVar("seamflow_expression_deadline", default=math.inf)


def _forbidden(message: str) -> errors.ExpressionError:
    return errors.ExpressionError(message, code="expression.forbidden")


def _tick() -> None:
    """Stop the render once it has used up `RENDER_TIME_LIMIT`; called from every hook."""
    if time.monotonic() > _deadline.get():
        limit_ms = RENDER_TIME_LIMIT / timedelta(milliseconds=1)
        raise filters.limit_error(f"evaluation took longer than {limit_ms:g} ms")


# --- secrets -----------------------------------------------------------------------------


class Secrets:
    """The `secrets` root: secret values that an expression may read one by name only.

    `{{ secrets.crm }}` and `{{ secrets['crm'] }}` give the value; listing, iterating or
    rendering the whole set is refused, so a flow cannot dump every secret. Values are
    registered with `errors.redact`, so they never appear in an error message.

    Args:
        values: secret values by name, usually read from `SEAMFLOW_SECRET_<NAME>`.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        for value in self._values.values():
            errors.register_secret(value)

    def __getitem__(self, name: object) -> str:
        """Return the secret called `name`.

        Raises:
            errors.ExpressionError: `expression.undefined` naming the environment variable
                to set when the secret is missing; `expression.forbidden` for a name that
                is not a secret name (`items`, `_values`, a number).
        """
        if not isinstance(name, str) or name.startswith("_"):
            raise _forbidden(_ONE_BY_NAME)
        if name in self._values:
            return self._values[name]
        if name in _MAPPING_METHODS:
            raise _forbidden(f"{_ONE_BY_NAME}; {name!r} is not a secret")
        variable = "SEAMFLOW_SECRET_" + re.sub(r"[^A-Z0-9]", "_", name.upper())
        raise errors.ExpressionError(
            f"secret {name!r} is not set; expected the environment variable {variable}",
            code="expression.undefined",
        )

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise _forbidden(_ONE_BY_NAME)

    __iter__ = __len__ = __contains__ = __str__ = __format__ = _refuse
    keys = items = values = get = _refuse

    def __repr__(self) -> str:
        return "<secrets>"


# --- values: what an expression's result may be ------------------------------------------


class _Budget:
    """How much more a render may produce, in characters (roughly); shared by its values."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = filters.MAX_OUTPUT_CHARS

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise filters.limit_error(f"output larger than {filters.MAX_OUTPUT_CHARS} characters")


def _describe(value: object) -> str:
    if isinstance(value, types.BuiltinMethodType | types.MethodType | types.FunctionType):
        return f"the function {getattr(value, '__name__', '?')!r}"
    name = type(value).__name__
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def _as_json(value: object, budget: _Budget, depth: int = 0) -> Json:
    """Copy an expression's value into fresh Json, refusing anything that is not data."""
    budget.spend(1)
    if depth > MAX_NESTING:
        raise filters.limit_error(f"value nested deeper than {MAX_NESTING} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal | float):
        return _as_number(value)
    if isinstance(value, str):
        budget.spend(len(value))
        return str(value)  # a plain str, also for Markup from |escape
    if isinstance(value, Mapping):
        return {_as_key(key): _as_json(item, budget, depth + 1) for key, item in value.items()}
    if isinstance(value, Secrets):
        raise _forbidden(_ONE_BY_NAME)
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, LoopContext):
        raise errors.ExpressionError("loop is not data; use loop.index", code="expression.type")
    if isinstance(value, list | tuple | range | KeysView | ValuesView | ItemsView | Iterator):
        return [_as_json(item, budget, depth + 1) for item in value]
    raise errors.ExpressionError(
        f"the expression gives {_describe(value)}, which is not data (a function needs its ());"
        " expected text, a number, true/false, none, a list or a mapping",
        code="expression.type",
    )


def _as_number(value: int | Decimal | float) -> int | Decimal:
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal) and not value.is_finite():
        raise errors.ExpressionError(f"{value} is not a finite number", code="expression.value")
    filters.check_number(value)
    return int(value) if isinstance(value, int) else value


def _as_key(key: object) -> str:
    if not isinstance(key, str):
        raise errors.ExpressionError(
            f"a mapping key is {_describe(key)} {errors.redact(key)}; expected text",
            code="expression.type",
        )
    return str(key)


def _as_text(value: object) -> str:
    """Text of a value inside a text template: str(); none is ""; lists/mappings are JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return str(value)
    data = _as_json(value, _Budget())
    return codec.dumps_text(data) if isinstance(data, list | dict) else str(data)


def _concat(*parts: object) -> str:
    """The `~` operator, refused before it builds more than the output limit."""
    texts = [_as_text(part) for part in parts]
    filters.check_text_length(sum(map(len, texts)))
    return "".join(texts)


def _iterate(iterable: Iterable[object]) -> Iterator[object]:
    """What every `{% for %}` loops over: the iterable, checking the deadline at each item."""
    for item in iterable:
        _tick()
        yield item


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
    separator, texts, size = _as_text(d), [], 0
    for item in items:
        texts.append(_as_text(item))
        size += len(texts[-1]) + len(separator)
        filters.check_text_length(size)
    return separator.join(texts)


def _tojson(value: object) -> str:
    """Compact JSON text of the value; Decimals are written exactly: `{{ lines|tojson }}`."""
    return codec.dumps_text(_as_json(value, _Budget()))


def _string(value: object) -> str:
    """The value as text, the way a text template writes it (none is "")."""
    return _as_text(value)


_TRUSTED: Final[tuple[Callable[..., object], ...]] = (
    _range, dict, filters.now, _concat, _iterate, _decimal_literal,
)  # fmt: skip


# --- the sandbox -------------------------------------------------------------------------


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
    """Wrap a filter so that it checks the deadline and the size of what it returns."""

    @functools.wraps(function)  # keeps Jinja's pass_context/pass_environment marker
    def bounded(*args: object, **kwargs: object) -> object:
        _tick()
        result = function(*args, **kwargs)
        filters.check_size(result)
        return result

    return bounded


class _Environment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, narrowed: no `_` or formatting attributes, a whitelist of
    callables, exact and bounded arithmetic, and a deadline checked at every hook."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    seamflow_concat: Callable[..., str]
    seamflow_iterate: Callable[..., Iterator[object]]
    seamflow_decimal: Callable[..., Decimal]

    def __init__(self) -> None:
        super().__init__(autoescape=False, undefined=_Missing, finalize=_as_text, keep_trailing_newline=True)
        self.globals.clear()
        self.globals.update(range=_range, dict=dict, now=filters.now)
        own = {"join": _join, "tojson": _tojson, "string": _string}
        kept = {name: JINJA_FILTERS[name] for name in _KEPT_JINJA_FILTERS}
        self.filters = {name: _bounded(f) for name, f in {**kept, **filters.FILTERS, **own}.items()}
        self.tests = dict(JINJA_TESTS)
        self.seamflow_concat, self.seamflow_iterate = _concat, _iterate
        self.seamflow_decimal = _decimal_literal

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
        raise _forbidden(f"reading {attribute!r} of {_describe(obj)} is not allowed: {reason}")

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        if isinstance(obj, jinja2.Undefined):
            return obj
        if isinstance(obj, Secrets):
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
        if isinstance(obj, Secrets):
            return obj[argument]
        try:
            return obj[argument]
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
        return result

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
        return result


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _exact(value: object) -> object:
    return Decimal(repr(value)) if isinstance(value, float) else value


def _check_method_call(obj: object, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Allow only whitelisted pure methods; refuse the ones that would grow without bound."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    allowed = _METHODS.get(type(owner), frozenset())
    if not isinstance(obj, types.BuiltinMethodType) or name not in allowed:
        raise _forbidden(
            f"calling {_describe(obj)} is not allowed in flow expressions; expected range(),"
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
        raise _forbidden("text formatting with % is not allowed in flow expressions; join text with ~")
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


_ENV: Final = _Environment()


# --- compiling ---------------------------------------------------------------------------


class _Compiled:
    """One templated string: a single expression (keeps its type) or text."""

    __slots__ = ("is_text", "source", "template", "where")

    def __init__(self, source: str, where: str, template: jinja2.Template, is_text: bool) -> None:
        self.source, self.where, self.template, self.is_text = source, where, template, is_text

    def evaluate(self, variables: dict[str, object], budget: _Budget) -> Json:
        try:
            context = self.template.new_context(variables)
            if self.is_text:
                chunks = []
                for chunk in self.template.root_render_func(context):
                    budget.spend(len(chunk))
                    chunks.append(chunk)
                return "".join(chunks)
            for _ in self.template.root_render_func(context):
                pass
            return _as_json(context.vars[_RESULT], budget)
        except errors.ExpressionError as exc:
            raise self.error(exc.message, exc.code) from None
        except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError,
                AttributeError, RecursionError, MemoryError) as exc:  # fmt: skip
            raise self.error(*_translate(exc)) from None

    def error(self, message: str, code: str) -> errors.ExpressionError:
        return errors.ExpressionError(_locate(self.where, self.source, message), code=code)


_Node: TypeAlias = "_Literal | _Compiled | list[_Node] | dict[str, _Node]"


class _Literal:
    """A value without expressions; rendered as a fresh copy."""

    __slots__ = ("value",)

    def __init__(self, value: Json) -> None:
        self.value = value


def _locate(where: str, source: str, message: str) -> str:
    return f"{where + ': ' if where else ''}in {errors.redact(source, 60)}: {message}"


def _translate(exc: BaseException) -> tuple[str, str]:
    """Turn a foreign error raised while evaluating into (message, code)."""
    text = str(exc)[:300]
    if isinstance(exc, UndefinedError):
        return exc.message or "undefined value", "expression.undefined"
    if isinstance(exc, SecurityError):
        return text, "expression.forbidden"
    if match := re.match(r"No (filter|test) named '(\w+)'", text):
        code = "expression.forbidden" if match[2] in _REMOVED_FILTERS else "expression.syntax"
        return f"there is no {match[1]} named {match[2]!r} in flow expressions", code
    if isinstance(exc, RecursionError):
        return "the expression is nested too deeply", "expression.limit"
    if isinstance(exc, MemoryError | OverflowError | Overflow):
        return "a number or value is too large", "expression.limit"
    if isinstance(exc, ZeroDivisionError):
        return "division by zero", "expression.value"
    if isinstance(exc, InvalidOperation | DecimalException):
        return "invalid decimal arithmetic", "expression.value"
    if isinstance(exc, ValueError | LookupError):
        return text, "expression.value"
    return text, "expression.type"


def _compile_value(
    value: object, where: str, names: frozenset[str], found: set[tuple[str, str]], depth: int = 0
) -> _Node:
    if depth > MAX_NESTING:
        raise errors.ExpressionError(f"{where}: nested deeper than {MAX_NESTING} levels", code="expression.limit")
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return _Literal(value)
        return _compile_source(value, where, names, found)
    if isinstance(value, Mapping):
        children: dict[str, _Node] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise errors.ExpressionError(
                    f"{where}: key {errors.redact(key)} is not text; expected text keys",
                    code="expression.type",
                )
            children[key] = _compile_value(item, f"{where}.{key}" if where else key, names, found, depth + 1)
        return _collapse(children)
    if isinstance(value, list | tuple):
        items = [_compile_value(item, f"{where}[{index}]", names, found, depth + 1) for index, item in enumerate(value)]
        return _collapse(items)
    if value is None or isinstance(value, bool | int | Decimal | float):
        try:
            return _Literal(value if value is None or isinstance(value, bool) else _as_number(value))
        except errors.ExpressionError as exc:
            raise errors.ExpressionError(f"{where}: {exc.message}", code=exc.code) from None
    raise errors.ExpressionError(
        f"{where}: got {_describe(value)}; expected text, a number, true/false, null, a list or a mapping",
        code="expression.type",
    )


def _collapse(children: list[_Node] | dict[str, _Node]) -> _Node:
    """A list or mapping whose children are all literal is itself one literal."""
    if isinstance(children, dict):
        pairs = {k: c.value for k, c in children.items() if isinstance(c, _Literal)}
        return _Literal(pairs) if len(pairs) == len(children) else children
    items = [child.value for child in children if isinstance(child, _Literal)]
    return _Literal(items) if len(items) == len(children) else children


def _compile_source(source: str, where: str, names: frozenset[str], found: set[tuple[str, str]]) -> _Compiled:
    """Parse, check and compile one templated string."""
    try:
        tree = _parse(source)
        _check_tree(tree, names)
        # Jinja's analysis optimises the tree it is given in place, so it gets its own copy.
        free = meta.find_undeclared_variables(_parse(source)) - _GLOBALS
        _check_names(free, names)
    except errors.ExpressionError as exc:
        raise errors.ExpressionError(_locate(where, source, exc.message), code=exc.code) from None
    found.update(_references(tree, free & names))
    expression = _single_expression(tree)
    if expression is not None:
        tree = nodes.Template([nodes.Assign(nodes.Name(_RESULT, "store"), expression)])
    tree = _Rewriter().visit(tree)
    tree.set_environment(_ENV)
    tree.set_lineno(1)
    return _Compiled(source, where, _ENV.from_string(tree), is_text=expression is None)


def _parse(source: str) -> nodes.Template:
    if len(source) > MAX_SOURCE_CHARS:
        raise filters.limit_error(f"template longer than {MAX_SOURCE_CHARS} characters")
    try:
        return _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise errors.ExpressionError(
            f"syntax error at line {exc.lineno}: {(exc.message or '').rstrip('.')};"
            " expected an expression such as {{ event.body.id }} or a tag such as {% if ... %}",
            code="expression.syntax",
        ) from None
    except ValueError:  # an int literal past Python's own digit limit
        raise filters.limit_error(f"integer larger than {filters.MAX_INT_DIGITS} digits") from None
    except RecursionError:
        raise filters.limit_error(f"expression nested deeper than {MAX_NESTING} levels") from None


def _check_tree(tree: nodes.Template, names: frozenset[str]) -> None:
    """Refuse statements, names, filters, tests and literals that flow expressions may not use."""
    stack: list[tuple[nodes.Node, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise filters.limit_error(f"expression nested deeper than {MAX_NESTING} levels")
        _check_node(node, names)
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())


def _check_names(free: set[str], names: frozenset[str]) -> None:
    """Refuse a name the context will not hold: a typo such as `evnt`."""
    for name in sorted(free - names):
        close = difflib.get_close_matches(name, sorted(names), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise errors.ExpressionError(
            f"unknown name {name!r}{hint}; expected one of {', '.join(sorted(names | _GLOBALS))}",
            code="expression.undefined",
        )


def _check_node(node: nodes.Node, names: frozenset[str]) -> None:
    if isinstance(node, nodes.Stmt) and not isinstance(node, _STATEMENTS):
        tag = type(node).__name__.lower()
        raise _forbidden(f"the {tag!r} tag is not allowed in flow expressions; expected if, for, set, with or filter")
    if isinstance(node, nodes.For) and node.recursive:
        raise _forbidden("recursive loops are not allowed in flow expressions")
    if isinstance(node, nodes.NSRef):
        raise _forbidden(f"assigning to {node.name}.{node.attr} is not allowed: expressions cannot change data")
    if (
        isinstance(node, nodes.Name)
        and node.ctx == "load"
        and node.name not in names
        and (node.name in _FORBIDDEN_NAMES or node.name.startswith("_"))
    ):
        raise _forbidden(f"{node.name!r} is not available in flow expressions")
    if isinstance(node, nodes.Filter) and node.name not in _ENV.filters:
        if node.name in _REMOVED_FILTERS:
            raise _forbidden(f"the filter {node.name!r} is not available: {_REMOVED_FILTERS[node.name]}")
        raise errors.ExpressionError(
            f"unknown filter {node.name!r}; see docs/reference/expressions.md",
            code="expression.syntax",
        )
    if isinstance(node, nodes.Test) and node.name not in _ENV.tests:
        raise errors.ExpressionError(f"unknown test {node.name!r}", code="expression.syntax")
    if isinstance(node, nodes.Const) and isinstance(node.value, int):
        filters.check_number(node.value)


def _references(tree: nodes.Template, roots: set[str]) -> set[tuple[str, str]]:
    """Every (root, first attribute) the template reads; ("event", "") for a bare root."""
    found: set[tuple[str, str]] = set()
    consumed: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        inner = node.node
        if not (isinstance(inner, nodes.Name) and inner.ctx == "load" and inner.name in roots):
            continue
        consumed.add(id(inner))
        if isinstance(node, nodes.Getattr):
            found.add((inner.name, node.attr))
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            found.add((inner.name, node.arg.value))
        else:
            found.add((inner.name, ""))  # a computed key: the whole root may be read
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name in roots and id(name) not in consumed:
            found.add((name.name, ""))
    return found


def _single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression if the template is exactly one `{{ expr }}` (whitespace around allowed)."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts = [
        part for part in tree.body[0].nodes if not (isinstance(part, nodes.TemplateData) and not part.data.strip())
    ]
    if len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData):
        return parts[0]
    return None


def _environment_call(name: str, args: list[nodes.Expr]) -> nodes.Call:
    return nodes.Call(nodes.EnvironmentAttribute(name), args, [], None, None)


class _Rewriter(NodeTransformer):
    """Route `~`, loops and fraction literals through our bounded, exact helpers."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _environment_call("seamflow_concat", node.nodes)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        assert isinstance(node.iter, nodes.Expr)
        node.iter = _environment_call("seamflow_iterate", [node.iter])
        return node

    def visit_Const(self, node: nodes.Const) -> nodes.Node:
        if isinstance(node.value, float):
            return _environment_call("seamflow_decimal", [nodes.Const(repr(node.value))])
        return node


# --- the public face ---------------------------------------------------------------------


class Template:
    """A compiled value: a JSON-like structure whose strings may hold `{{ }}` expressions.

    Built with `Template.compile` once per flow version; rendered per step with a context
    holding the roots (`event`, `steps`, `secrets`, ...).

    Attributes:
        is_static: True if no string holds an expression; `render` returns a copy of the value.
        references: every (root, first attribute) the expressions read, e.g.
            ("steps", "customer") for `{{ steps.customer.id }}`; ("event", "") for `{{ event }}`.
        where: the location given to `compile`, which starts every error message.
    """

    __slots__ = ("_root", "is_static", "references", "where")

    def __init__(self, root: _Node, references: frozenset[tuple[str, str]], where: str) -> None:
        self._root = root
        self.is_static = isinstance(root, _Literal)
        self.references = references
        self.where = where

    @classmethod
    def compile(cls, value: object, *, where: str = "", extra_names: frozenset[str] = frozenset()) -> Template:
        """Compile every string inside `value` (dict keys stay literal).

        Args:
            value: text, a number, true/false, None, or lists and mappings of them.
            where: where the value sits in its flow, such as "steps[1].with.amount".
            extra_names: names a context may hold besides `ROOTS`, such as a foreach
                step's `as:` name.

        Returns:
            The compiled template.

        Raises:
            errors.ExpressionError: starting with `where`, for a syntax error (with its
                line), an unknown name, a forbidden tag, filter or name, or a bound exceeded.
        """
        found: set[tuple[str, str]] = set()
        root = _compile_value(value, where, ROOTS | extra_names, found)
        return cls(root, frozenset(found), where)

    def render(self, context: Mapping[str, object]) -> Json:
        """Evaluate against `context`; a fresh value that shares nothing with `context`.

        A string that is one `{{ expr }}` gives the expression's value with its type;
        any other templated string gives text; lists and mappings keep their shape.

        Raises:
            errors.ExpressionError: `expression.undefined`, `.forbidden`, `.type`,
                `.value` or `.limit`; the message starts with the location.
        """
        token = _deadline.set(time.monotonic() + RENDER_TIME_LIMIT.total_seconds())
        try:
            return _render(self._root, dict(context), _Budget())
        except errors.ExpressionError as exc:
            message = _scrub(exc.message, context.get("secrets"))
            if message == exc.message:
                raise
            raise errors.ExpressionError(message, code=exc.code) from None
        finally:
            _deadline.reset(token)

    def is_true(self, context: Mapping[str, object]) -> bool:
        """Evaluate a condition (`when:`, `if:`); it must give true or false.

        The text "true"/"false" (any case) also counts, as a text template such as
        `{% if a %}true{% else %}false{% endif %}` gives; anything else (text, none, a
        number) is an error rather than Python truthiness, so "false" is never true.

        Raises:
            errors.ExpressionError: as `render`, or `expression.type` for a non-boolean.
        """
        value = self.render(context)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise errors.ExpressionError(
            f"{self.where + ': ' if self.where else ''}the condition gave {errors.redact(value)};"
            " expected true or false, such as {{ event.body.amount > 100 }}",
            code="expression.type",
        )

    def __repr__(self) -> str:
        return f"<Template {self.where or '(value)'} static={self.is_static}>"


def _render(node: _Node, variables: dict[str, object], budget: _Budget) -> Json:
    if isinstance(node, _Literal):
        return _as_json(node.value, budget)
    if isinstance(node, _Compiled):
        return node.evaluate(variables, budget)
    if isinstance(node, list):
        return [_render(child, variables, budget) for child in node]
    return {key: _render(child, variables, budget) for key, child in node.items()}


def _scrub(message: str, secrets: object) -> str:
    """Mask the values of this render's secrets in a message built from a foreign error."""
    if isinstance(secrets, Secrets):
        for value in secrets._values.values():
            if len(value) >= 4:
                message = message.replace(value, "***")
    return message
