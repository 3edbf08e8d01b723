"""`seamflow flow test`: the project's flow-test files (`flow-tests/*.yaml`) run with their calls
answered from fixtures; each case passes or names where it differs (file:line:column).

Exit codes for CI: 0 every case passed, 1 a case failed, 2 a test file or a flow is invalid.
Like every module of the CLI, this one imports only click and the leaves at start.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from seamflow import errors
from seamflow.cli.options import open_project, project_option, run

if TYPE_CHECKING:
    from seamflow import lifecycle
    from seamflow.flows import CompiledFlow

__all__ = ["TESTS_FOLDER", "flow_test"]

TESTS_FOLDER = "flow-tests"
"""Where a project keeps its flow-test files, beside `flows/`."""


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@project_option
def flow_test(paths: tuple[Path, ...], project: Path) -> None:
    """Run flow-test files (default: flow-tests/*.yaml) with calls answered from fixtures.

    Nothing reaches a target. Prints PASS or FAIL per case with file:line:column of each
    mismatch; exits 0 when every case passed, 1 when one failed, 2 when a file is invalid.
    """
    from seamflow import lifecycle
    from seamflow.flows import compile_flow, validate

    proj = open_project(project)
    files = _test_files(proj.root, paths)
    if not files:
        click.echo(f"no flow-test files in {proj.root / TESTS_FOLDER} (expected *.yaml)", err=True)
        sys.exit(2)
    problems: list[errors.Problem] = []
    try:
        loaded = validate.validate_project(proj.flows, proj.connections)
    except errors.FlowInvalid as exc:
        _print_problems(exc.problems)
        sys.exit(2)
    plans: list[tuple[lifecycle.FlowTestFile, CompiledFlow]] = []
    for path in files:
        try:
            test = lifecycle.load_test_file(path, _shown(path, proj.root))
        except errors.FlowInvalid as exc:
            problems += exc.problems
            continue
        flow = loaded.flows.get(test.flow_id)
        if flow is None:
            known = ", ".join(sorted(loaded.flows)) or "none"
            where = test.source_map.locate(("flow",))
            problems.append(errors.Problem(where, f"no flow {test.flow_id!r} in flows/", f"one of {known}"))
            continue
        source = flow.path.read_text(encoding="utf-8")
        plans.append((test, compile_flow(flow.spec, version=flow.version, source=source, path=str(flow.path))))
    if problems:
        _print_problems(problems)
        sys.exit(2)
    failed = run(_run_all(plans))
    sys.exit(1 if failed else 0)


async def _run_all(plans: list[tuple[lifecycle.FlowTestFile, CompiledFlow]]) -> int:
    from seamflow import lifecycle

    passed = failed = 0
    for test, flow in plans:
        for result in await lifecycle.run_test_file(test, flow):
            label = f"{result.file}::{result.case.name}"
            if result.is_passed:
                passed += 1
                click.echo(f"PASS {label}")
                continue
            failed += 1
            click.echo(f"FAIL {label}")
            for problem in result.problems:
                click.echo(f"  {problem}")
    click.echo(f"{passed} passed, {failed} failed")
    return failed


def _test_files(root: Path, paths: tuple[Path, ...]) -> list[Path]:
    found: set[Path] = set()
    for path in paths or (root / TESTS_FOLDER,):
        if path.is_dir():
            found |= {*path.glob("*.yaml"), *path.glob("*.yml")}  # subfolders hold recorded events
        elif path.exists():
            found.add(path)
    return sorted(found)


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _print_problems(problems: list[errors.Problem]) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)
    click.echo(f"{len(problems)} problem(s) found", err=True)
