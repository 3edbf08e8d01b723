"""Flow expressions: JSON-like values whose strings hold sandboxed Jinja `{{ }}` expressions.

A flow's step inputs, conditions and keys are compiled once per flow version into a
`Template` and rendered per step. A string that is exactly one `{{ expr }}` renders to
the expression's value with its type; any other templated string renders to text; a
string is never re-parsed. Expressions run in an immutable Jinja sandbox (`flows.sandbox`)
that refuses Python internals, may call only our filters and a few pure methods, and is
bounded in time, output size and integer size. `docs/reference/expressions.md` is the reference.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from decimal import Decimal, DecimalException, InvalidOperation, Overflow
from typing import Final, TypeAlias

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError

from seamflow import errors, redact
from seamflow.flows import sandbox, values
from seamflow.flows.expression_checks import (
    GLOBALS,
    REMOVED_FILTERS,
    Rewriter,
    check_names,
    check_secret_blocks,
    check_tree,
    parse,
    references,
    single_expression,
)
from seamflow.flows.expression_checks import MAX_SOURCE_CHARS as MAX_SOURCE_CHARS
from seamflow.flows.sandbox import RENDER_TIME_LIMIT as RENDER_TIME_LIMIT
from seamflow.flows.values import MAX_NESTING as MAX_NESTING
from seamflow.flows.values import Secrets
from seamflow.ids import Json

__all__ = ["ROOTS", "Secrets", "Template", "filter_names"]

ROOTS: Final = frozenset({"event", "steps", "run", "env", "secrets", "item", "result", "loop_index"})
"""The names a render context may hold; any other free name in an expression is an error."""


def filter_names() -> list[str]:
    """The filters an expression may use (`{{ x | cents }}`), sorted: ours and the kept Jinja ones."""
    return sorted(sandbox.ENVIRONMENT.filters)


# RENDER_TIME_LIMIT (from `flows.sandbox`) and MAX_NESTING (from `flows.values`) are re-exported above:
# tests and callers read every bound of an expression here.

_RESULT: Final = "seamflow_result"


# --- compiling ---------------------------------------------------------------------------


class _Compiled:
    """One templated string: a single expression (keeps its type) or text."""

    __slots__ = ("is_text", "source", "template", "where")

    def __init__(self, source: str, where: str, template: jinja2.Template, is_text: bool) -> None:
        self.source, self.where, self.template, self.is_text = source, where, template, is_text

    def evaluate(self, variables: dict[str, object], budget: values.Budget) -> Json:
        try:
            context = self.template.new_context(variables, shared=True)  # `variables` holds the globals
            if self.is_text:
                chunks, unmasked = [], False
                for chunk in self.template.root_render_func(context):
                    budget.spend(len(chunk))
                    chunks.append(chunk)
                    unmasked = unmasked or (isinstance(chunk, values.SecretText) and not redact.is_registered(chunk))
                text = "".join(chunks)
                if unmasked:  # short pieces of a secret, too short to mask alone: the whole text is secret
                    values.secret_text(text)
                return text
            for _ in self.template.root_render_func(context):
                pass
            return values.as_json(context.vars[_RESULT], budget)
        except errors.ExpressionError as exc:
            raise self.error(exc.message, exc.code) from None
        except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError,
                AttributeError, RecursionError, MemoryError) as exc:  # fmt: skip
            raise self.error(*_translate(exc)) from None

    def error(self, message: str, code: str) -> errors.ExpressionError:
        return errors.ExpressionError(_locate(self.where, self.source, message), code=code)


class _Reference:
    """A template that is one reference such as `{{ event.body.order_no }}`: read without Jinja.

    Each step reads a key of a dict or an index of a list, exactly what the sandbox's
    `getattr`/`getitem` return first for those; anything else (a missing key, a method name, a
    secret, another type) is handed to the compiled template, so errors and results are the same.
    """

    __slots__ = ("compiled", "path", "root")

    def __init__(self, compiled: _Compiled, root: str, path: tuple[str | int, ...]) -> None:
        self.compiled, self.root, self.path = compiled, root, path

    def evaluate(self, variables: dict[str, object], budget: values.Budget) -> Json:
        value = variables.get(self.root, _ABSENT)
        for key in self.path:
            if isinstance(value, dict) and isinstance(key, str) and key in value:
                value = value[key]
            elif isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value):
                value = value[key]
            else:
                return self.compiled.evaluate(variables, budget)
        if value is _ABSENT:
            return self.compiled.evaluate(variables, budget)
        try:
            return values.as_json(value, budget)
        except errors.ExpressionError as exc:
            raise self.compiled.error(exc.message, exc.code) from None


_ABSENT: Final = object()

_Node: TypeAlias = "_Literal | _Compiled | _Reference | list[_Node] | dict[str, _Node]"


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
        code = "expression.forbidden" if match[2] in REMOVED_FILTERS else "expression.syntax"
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
            return _Literal(value if value is None or isinstance(value, bool) else values.as_number(value))
        except errors.ExpressionError as exc:
            raise errors.ExpressionError(f"{where}: {exc.message}", code=exc.code) from None
    raise errors.ExpressionError(
        f"{where}: got {values.describe(value)}; expected text, a number, true/false, null, a list or a mapping",
        code="expression.type",
    )


def _collapse(children: list[_Node] | dict[str, _Node]) -> _Node:
    """A list or mapping whose children are all literal is itself one literal."""
    if isinstance(children, dict):
        pairs = {k: c.value for k, c in children.items() if isinstance(c, _Literal)}
        return _Literal(pairs) if len(pairs) == len(children) else children
    items = [child.value for child in children if isinstance(child, _Literal)]
    return _Literal(items) if len(items) == len(children) else children


def _compile_source(
    source: str, where: str, names: frozenset[str], found: set[tuple[str, str]]
) -> _Compiled | _Reference:
    """Parse, check and compile one templated string (the work is shared by equal sources)."""
    try:
        template, references, is_text, reference = _compile_parts(source, names)
    except errors.ExpressionError as exc:
        raise errors.ExpressionError(_locate(where, source, exc.message), code=exc.code) from None
    found.update(references)
    compiled = _Compiled(source, where, template, is_text=is_text)
    return compiled if reference is None else _Reference(compiled, reference[0], reference[1])


@functools.lru_cache(maxsize=4096)
def _compile_parts(
    source: str, names: frozenset[str]
) -> tuple[jinja2.Template, frozenset[tuple[str, str]], bool, tuple[str, tuple[str | int, ...]] | None]:
    """The compiled template of a source, its references, whether it is text, and its single reference.

    Cached: a project's templates repeat (`{{ event.body.order_no }}` in many flows), and
    validating a project then compiling its flows would otherwise compile each twice. A
    compiled Jinja template is immutable in use, so sharing it is safe; errors are not cached.
    """
    tree = parse(source)
    check_tree(tree, names)
    # Jinja's analysis optimises the tree it is given in place, so it gets its own copy.
    free = meta.find_undeclared_variables(parse(source)) - GLOBALS
    check_names(free, names)
    referenced = frozenset(references(tree, free & names))
    if any(root == "secrets" for root, _ in referenced):
        check_secret_blocks(tree)
    expression = single_expression(tree)
    reference = None if expression is None else _reference_path(expression, names)
    if expression is not None:
        tree = nodes.Template([nodes.Assign(nodes.Name(_RESULT, "store"), expression)])
    tree = Rewriter().visit(tree)
    tree.set_environment(sandbox.ENVIRONMENT)
    tree.set_lineno(1)
    return sandbox.ENVIRONMENT.from_string(tree), referenced, expression is None, reference


def _reference_path(expression: nodes.Expr, names: frozenset[str]) -> tuple[str, tuple[str | int, ...]] | None:
    """("event", ("body", "order_no")) for `event.body.order_no` or `event['body'].order_no`; else None."""
    path: list[str | int] = []
    node: nodes.Node = expression
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        if isinstance(node, nodes.Getattr):
            path.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and type(node.arg.value) in (str, int):
            path.append(node.arg.value)
        else:
            return None
        node = node.node
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name in names:
        return node.name, tuple(reversed(path))
    return None


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
        secret_read = values.SECRET_READ.set(False)
        with sandbox.time_limit():
            try:
                return _render(self._root, {**sandbox.ENVIRONMENT.globals, **context}, values.Budget())
            except errors.ExpressionError as exc:
                message = redact.mask_text(exc.message)
                if message == exc.message:
                    raise
                raise errors.ExpressionError(message, code=exc.code) from None
            finally:
                values.SECRET_READ.reset(secret_read)

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


def _render(node: _Node, variables: dict[str, object], budget: values.Budget) -> Json:
    if isinstance(node, _Literal):
        return values.as_json(node.value, budget)
    if isinstance(node, _Compiled | _Reference):
        return node.evaluate(variables, budget)
    if isinstance(node, list):
        return [_render(child, variables, budget) for child in node]
    return {key: _render(child, variables, budget) for key, child in node.items()}
