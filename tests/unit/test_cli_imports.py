"""A fast start: the `seamflow` command imports only what the command it runs needs.

Each check runs in a fresh interpreter, because this test process has imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from seamflow import store
from seamflow.cli import runs

HEAVY = ("fastapi", "starlette", "uvicorn", "aiohttp", "httpx", "psycopg", "sqlalchemy", "pydantic", "jinja2")
"""Libraries a command that serves nothing and opens no database or connection must not import."""
OURS = ("seamflow.api", "seamflow.engine", "seamflow.store", "seamflow.sync", "seamflow.flows", "seamflow.connectors")


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def _help_of(*args: str) -> str:
    return (
        "import contextlib, io\nfrom seamflow.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({[*args, '--help']!r})"
    )


def _loaded(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(
        m for m in modules if m.split(".")[0] in roots or m.startswith(tuple(r + "." for r in roots)) or m in roots
    )


@pytest.mark.parametrize("command", [(), ("serve",), ("flow", "validate"), ("sync", "load"), ("runs", "list")])
def test_help_imports_no_server_database_or_connector_module(command: tuple[str, ...]) -> None:
    modules = _modules_after(_help_of(*command))
    shown = " ".join(("seamflow", *command, "--help"))
    assert "seamflow.cli.commands" in modules, "the command line was built"
    assert _loaded(modules, HEAVY) == [], f"`{shown}` imported libraries it does not use"
    assert _loaded(modules, OURS) == [], f"`{shown}` imported the engine, store, API or a connector"


def test_listing_connector_kinds_imports_no_connector_and_a_lookup_imports_only_its_own() -> None:
    code = (
        "from seamflow import connectors\n"
        "kinds = connectors.available_connectors()\n"
        "assert {'http', 'sql', 'email', 'openapi'} <= set(kinds), sorted(kinds)\n"
        "before = {m for m in sys.modules if m.startswith('seamflow.connectors.')}\n"
        "assert before == {'seamflow.connectors.base', 'seamflow.connectors.guard', 'seamflow.connectors.pack',"
        " 'seamflow.connectors.tokens'}, before\n"
        "assert kinds['file'].kind == 'file'"
    )
    connector_packages = {m for m in _modules_after(code) if m.count(".") == 2 and m.startswith("seamflow.connectors.")}
    # tokens: the interface of the cache that signed-in connections share, part of `Connection`;
    # pack: the paths of the shipped connector files (pathlib only; a file is read when its kind is used)
    # guard: the outbound guard, part of `Connection` (stdlib only)
    assert connector_packages == {
        "seamflow.connectors.base",
        "seamflow.connectors.guard",
        "seamflow.connectors.pack",
        "seamflow.connectors.tokens",
        "seamflow.connectors.file",
    }
    assert "aiohttp" not in _modules_after(code), "the file connector needs no HTTP client"


def test_every_installed_connector_is_registered_under_its_kind() -> None:
    from seamflow import connectors

    installed = connectors.available_connectors()
    assert {kind: installed[kind].kind for kind in installed} == {kind: kind for kind in installed}
    assert installed.get("no-such-kind") is None


def test_the_run_statuses_the_cli_offers_are_the_stores() -> None:
    assert runs.RUN_STATUSES == tuple(s.value for s in store.RunStatus)
