"""Packages meet through their public names: no module imports another package's modules.

`from seamflow.engine.feeds import feed_health` couples the importer to where a name happens to
live inside `engine/`; `from seamflow import engine` and `engine.feed_health` (or `from seamflow.engine
import feed_health`, listed in its `__all__`) does not. Layers are checked by import-linter
(`lint-imports`); this test checks what it cannot: the depth of an import and `__all__`.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import seamflow

SOURCE = Path(seamflow.__file__).parent


def _own_package(path: Path) -> str | None:
    parts = path.relative_to(SOURCE).parts
    return parts[0] if len(parts) > 1 else None


def _deep_imports(path: Path) -> list[str]:
    own, found = _own_package(path), []
    where = path.relative_to(SOURCE.parent)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "seamflow" and len(parts) > 2 and parts[1] != own:
                    found.append(f"{where}:{node.lineno} import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "seamflow" or len(parts) < 2 or parts[1] == own:
                continue
            names = ", ".join(a.name for a in node.names)
            if len(parts) > 2:
                found.append(f"{where}:{node.lineno} from {node.module} import {names}")
            elif (SOURCE / parts[1]).is_dir():
                public = set(importlib.import_module(node.module).__all__)
                found += [
                    f"{where}:{node.lineno} from {node.module} import {a.name} (not in its __all__)"
                    for a in node.names
                    if a.name not in public
                ]
    return found


def test_no_module_imports_the_modules_of_another_package() -> None:
    found = [line for path in sorted(SOURCE.rglob("*.py")) for line in _deep_imports(path)]
    assert not found, "import the package and use the names its __init__ exports:\n" + "\n".join(found)
