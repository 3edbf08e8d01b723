"""docs/reference/errors.md documents exactly the error codes the code defines: none missing, none stale.

A code is defined where the source says so: `code = "…"` in an error class, `code="…"` passed to an
error, `"code": "…"` in a journaled error, or the code argument of `api.problems.problem(...)`. A
documented code is a backticked name in the first column of a table of errors.md.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import seamflow

SOURCE = Path(seamflow.__file__).parent
CATALOGUE = SOURCE.parents[1] / "docs" / "reference" / "errors.md"
_CODE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*")


def _code_value(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _CODE.fullmatch(node.value):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return f"{node.values[0].value}<n>"  # f"http.{status}": a family, documented by its members
    return None


def _codes_in(tree: ast.AST) -> set[str]:
    found: set[str | None] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.Assign) and any(getattr(t, "id", "") == "code" for t in item.targets):
                    found.add(_code_value(item.value))
                elif isinstance(item, ast.AnnAssign) and getattr(item.target, "id", "") == "code":
                    found.add(_code_value(item.value))
        elif isinstance(node, ast.Call):
            found.update(_code_value(k.value) for k in node.keywords if k.arg == "code")
            if getattr(node.func, "id", getattr(node.func, "attr", "")) == "problem" and len(node.args) > 1:
                found.add(_code_value(node.args[1]))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "code":
                    found.add(_code_value(value))
    return {code for code in found if code is not None}


def defined_codes() -> set[str]:
    codes: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        codes |= _codes_in(ast.parse(path.read_text("utf-8")))
    return codes


def documented_codes() -> set[str]:
    codes = set()
    for line in CATALOGUE.read_text("utf-8").splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            codes |= {c for c in re.findall(r"`([^`]+)`", first_cell) if _CODE.fullmatch(c)}
    return codes


def test_every_defined_error_code_is_documented_and_every_documented_code_is_defined() -> None:
    defined, documented = defined_codes(), documented_codes()
    families = {code.removesuffix("<n>") for code in defined if code.endswith("<n>")}
    undocumented = sorted(code for code in defined - documented if not code.endswith("<n>"))
    stale = sorted(code for code in documented - defined if not code.startswith(tuple(families)))
    assert not undocumented, f"codes the code defines but docs/reference/errors.md does not list: {undocumented}"
    assert not stale, f"codes docs/reference/errors.md lists but no code defines: {stale}"


def test_the_collector_finds_each_way_a_code_is_defined() -> None:
    tree = ast.parse(
        "class E(Base):\n    code = 'a.class_attr'\n"
        "class F(Base):\n    code: str = 'b.annotated'\n"
        "raise errors.Conflict('x', code='c.keyword')\n"
        "entry = {'code': 'd.journaled', 'message': 'm'}\n"
        "problem(404, 'e.problem', 'detail')\n"
        "problem(s, f'http.{s}', 'detail')\n"
    )
    assert _codes_in(tree) == {"a.class_attr", "b.annotated", "c.keyword", "d.journaled", "e.problem", "http.<n>"}
