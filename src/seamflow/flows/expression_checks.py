"""Checking and rewriting a flow expression's syntax tree before it is compiled.

`flows.expressions` parses each template string here once, refuses what flow expressions may
not use (statements, names, filters, Python internals; blocks that would hide a secret's
transforms), lists what it references, and rewrites the tree so values keep their types and
secrets stay marked.
"""

from __future__ import annotations

import difflib
from typing import Final

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.visitor import NodeTransformer

from seamflow import errors
from seamflow.flows import filters, sandbox, values
from seamflow.flows.values import MAX_NESTING

__all__ = [
    "GLOBALS",
    "MAX_SOURCE_CHARS",
    "REMOVED_FILTERS",
    "Rewriter",
    "check_names",
    "check_secret_blocks",
    "check_tree",
    "environment_call",
    "parse",
    "references",
    "single_expression",
]

MAX_SOURCE_CHARS: Final = 64 * 1024
"""Longest template string."""
GLOBALS: Final = frozenset({"range", "dict", "now"})
_FORBIDDEN_NAMES: Final = frozenset(
    "self config request context cycler joiner namespace lipsum import builtins globals locals"
    " vars getattr setattr eval exec open os sys type object super".split()
)
REMOVED_FILTERS: Final = {
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
_STATEMENTS: Final = (
    nodes.Output,
    nodes.For,
    nodes.If,
    nodes.Assign,
    nodes.AssignBlock,
    nodes.With,
    nodes.FilterBlock,
)


def parse(source: str) -> nodes.Template:
    if len(source) > MAX_SOURCE_CHARS:
        raise filters.limit_error(f"template longer than {MAX_SOURCE_CHARS} characters")
    try:
        return sandbox.ENVIRONMENT.parse(source)
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


def check_tree(tree: nodes.Template, names: frozenset[str]) -> None:
    """Refuse statements, names, filters, tests and literals that flow expressions may not use."""
    stack: list[tuple[nodes.Node, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise filters.limit_error(f"expression nested deeper than {MAX_NESTING} levels")
        _check_node(node, names)
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())


def check_names(free: set[str], names: frozenset[str]) -> None:
    """Refuse a name the context will not hold: a typo such as `evnt`."""
    for name in sorted(free - names):
        close = difflib.get_close_matches(name, sorted(names), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise errors.ExpressionError(
            f"unknown name {name!r}{hint}; expected one of {', '.join(sorted(names | GLOBALS))}",
            code="expression.undefined",
        )


def _check_node(node: nodes.Node, names: frozenset[str]) -> None:
    if isinstance(node, nodes.Stmt) and not isinstance(node, _STATEMENTS):
        tag = type(node).__name__.lower()
        raise values.forbidden_error(
            f"the {tag!r} tag is not allowed in flow expressions; expected if, for, set, with or filter"
        )
    if isinstance(node, nodes.For) and node.recursive:
        raise values.forbidden_error("recursive loops are not allowed in flow expressions")
    if isinstance(node, nodes.NSRef):
        raise values.forbidden_error(
            f"assigning to {node.name}.{node.attr} is not allowed: expressions cannot change data"
        )
    if (
        isinstance(node, nodes.Name)
        and node.ctx == "load"
        and node.name not in names
        and (node.name in _FORBIDDEN_NAMES or node.name.startswith("_"))
    ):
        raise values.forbidden_error(f"{node.name!r} is not available in flow expressions")
    if isinstance(node, nodes.Filter) and node.name not in sandbox.ENVIRONMENT.filters:
        if node.name in REMOVED_FILTERS:
            raise values.forbidden_error(f"the filter {node.name!r} is not available: {REMOVED_FILTERS[node.name]}")
        raise errors.ExpressionError(
            f"unknown filter {node.name!r}; see docs/reference/expressions.md",
            code="expression.syntax",
        )
    if isinstance(node, nodes.Test) and node.name not in sandbox.ENVIRONMENT.tests:
        raise errors.ExpressionError(f"unknown test {node.name!r}", code="expression.syntax")
    if isinstance(node, nodes.Const) and isinstance(node.value, int):
        filters.check_number(node.value)


def check_secret_blocks(tree: nodes.Template) -> None:
    """Refuse the block tags whose output Seamflow cannot follow in a template that reads secrets.

    `{% filter %}` and `{% set x %}...{% endset %}` join their body into new text before a filter
    sees it, so text made from a secret there could not be marked as secret (see `values.SecretText`).
    """
    for block in tree.find_all((nodes.FilterBlock, nodes.AssignBlock)):
        tag = "filter" if isinstance(block, nodes.FilterBlock) else "set ... endset"
        raise values.forbidden_error(
            f"the {tag!r} block is not allowed in an expression that reads secrets: what it makes from a"
            " secret could not be masked; expected a filter or ~ on the value, such as {{ secrets.x | upper }}"
        )


def references(tree: nodes.Template, roots: set[str]) -> set[tuple[str, str]]:
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


def single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression if the template is exactly one `{{ expr }}` (whitespace around allowed)."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts = [
        part for part in tree.body[0].nodes if not (isinstance(part, nodes.TemplateData) and not part.data.strip())
    ]
    if len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData):
        return parts[0]
    return None


def environment_call(name: str, args: list[nodes.Expr]) -> nodes.Call:
    return nodes.Call(nodes.EnvironmentAttribute(name), args, [], None, None)


class Rewriter(NodeTransformer):
    """Route `~`, loops and fraction literals through our bounded, exact helpers."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return environment_call("seamflow_concat", node.nodes)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        assert isinstance(node.iter, nodes.Expr)
        node.iter = environment_call("seamflow_iterate", [node.iter])
        return node

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        # Jinja compiles `x[a:b]` to plain Python slicing, past the sandbox's getitem: route it
        # through `seamflow_slice` so a slice of a secret stays secret.
        self.generic_visit(node)
        if not isinstance(node.arg, nodes.Slice):
            return node
        bounds = [
            part if part is not None else nodes.Const(None) for part in (node.arg.start, node.arg.stop, node.arg.step)
        ]
        return environment_call("seamflow_slice", [node.node, *bounds])

    def visit_Const(self, node: nodes.Const) -> nodes.Node:
        if isinstance(node.value, float):
            return environment_call("seamflow_decimal", [nodes.Const(repr(node.value))])
        return node


# --- the public face ---------------------------------------------------------------------
