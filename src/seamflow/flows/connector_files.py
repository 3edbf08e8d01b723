"""Loading declarative connector files with positions, and finding them in a project and in packs.

A project's `connectors/*.yaml` and every file a Python package publishes through the
`seamflow.connector_packs` entry-point group (the entry point names a `str` or `Path` of the
file) become connector kinds beside the installed ones. Problems carry file:line:column and,
for an unknown key, the closest known one — the same loader as flow files.
"""

from __future__ import annotations

import functools
import re
from importlib.metadata import entry_points
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from seamflow import connectors, errors
from seamflow.errors import Location, Problem
from seamflow.flows import load
from seamflow.flows.source import parse_yaml, read_source
from seamflow.ids import Json

if TYPE_CHECKING:  # imported when a connector file is loaded: it brings the http connector (aiohttp)
    from seamflow.connectors import declared

__all__ = [
    "PACK_GROUP",
    "connector_file_schema",
    "install_project_connectors",
    "load_connector_file",
    "load_connector_text",
]

PACK_GROUP = "seamflow.connector_packs"


def connector_file_schema() -> dict[str, Json]:
    """The JSON Schema of declarative connector files (`seamflow connector schema`)."""
    from seamflow.connectors import declared

    return declared.connector_file_schema()


def load_connector_text(text: str | bytes, filename: str) -> type[declared.DeclaredConnector]:
    """Read a declarative connector file and build its connector class.

    Raises:
        errors.FlowInvalid: every problem of the file, each at file:line:column.
    """
    from seamflow.connectors import declared

    data, source_map = parse_yaml(text, filename)
    if not isinstance(data, dict):
        found = "the file is empty" if data is None else f"got {errors.redact(data)}"
        raise errors.FlowInvalid([Problem(Location(filename, 1, 1), found, "a connector: base_url, operations, …")])
    try:
        file = declared.ConnectorFile.model_validate(data)
    except ValidationError as exc:
        problems = [load.problem_of(detail, source_map, declared.ConnectorFile) for detail in exc.errors()]
        raise errors.FlowInvalid(sorted(problems, key=lambda p: (p.where.line or 0, p.where.column or 0))) from None
    problems = _template_problems(data, (), file, None, source_map)
    if problems:
        raise errors.FlowInvalid(problems)
    return declared.connector_class(file, data)


_TEMPLATE = re.compile(r"\{\{(.*?)\}\}")
_PROSE = {0: ("title", "description", "settings"), 2: ("description", "input")}
"""Keys holding words for people (which may show `{{ secrets.x }}` as an example), not templates."""
_NAME = re.compile(r"^\s*(config|env|input)\.([A-Za-z_][A-Za-z0-9_]*)\s*$")


def _template_problems(
    value: Json, path: load.JsonPath, file: declared.ConnectorFile, operation: str | None, source_map: load.SourceMap
) -> list[Problem]:
    """Each template names a setting of the file, an environment variable or an input of its operation."""
    if isinstance(value, dict):
        if path == ("operations",):
            return [
                p for name, op in value.items() for p in _template_problems(op, (*path, name), file, name, source_map)
            ]
        skip = _PROSE.get(len(path), ()) if operation is not None or not path else ()  # words, a JSON Schema
        return [
            p
            for k, v in value.items()
            if k not in skip
            for p in _template_problems(v, (*path, k), file, operation, source_map)
        ]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _template_problems(v, (*path, i), file, operation, source_map)]
    if not isinstance(value, str):
        return []
    found = []
    for template in _TEMPLATE.findall(value):
        problem = _template_problem(template, file, operation)
        if problem is not None:
            found.append(Problem(source_map.locate(path), problem[0], problem[1]))
    return found


def _template_problem(template: str, file: declared.ConnectorFile, operation: str | None) -> tuple[str, str] | None:
    match = _NAME.match(template)
    if match is None:
        return f"template {{{{{template}}}}} is not a name", "{{ config.NAME }}, {{ env.NAME }} or {{ input.NAME }}"
    scope, name = match.groups()
    if scope == "config" and name not in file.settings:
        known = sorted(file.settings)
        return (
            f"unknown setting {name!r}{load.suggest(name, known)}",
            f"a name under settings: {', '.join(known) or 'none'}",
        )
    if scope == "input":
        if operation is None:
            return "an {{ input.… }} outside an operation", "{{ config.NAME }} or {{ env.NAME }}"
        properties = sorted(file.operations[operation].input.get("properties", {}))
        if name not in properties:
            hint = load.suggest(name, properties)
            return (
                f"unknown input {name!r} of {operation}{hint}",
                f"a property of its input: {', '.join(properties) or 'none'}",
            )
    return None


def load_connector_file(path: Path) -> type[declared.DeclaredConnector]:
    """Read a declarative connector file; see `load_connector_text`."""
    return load_connector_text(read_source(path), str(path))


def _pack_files() -> tuple[list[Path], list[Problem]]:
    files, problems = [], []
    for point in entry_points(group=PACK_GROUP):
        try:
            found = point.load()
        except Exception as exc:  # a broken pack must say which one it is
            problems.append(Problem(Location(f"entry point {point.name}"), f"failed to load: {exc}", point.value))
            continue
        if isinstance(found, str | PathLike):
            files.append(Path(found))
        else:
            where = Location(f"entry point {point.name} ({point.value})")
            problems.append(Problem(where, f"got {type(found).__name__}", "the path of a connector file (str or Path)"))
    return files, problems


def install_project_connectors(project_dir: Path) -> list[Problem]:
    """Load the project's `connectors/*.yaml` and the installed packs, and make their kinds available.

    The pack that ships with Seamflow (`connectors.PACK_FILES`) is only named here: a file is read
    when a connection first uses its kind, and a project's file of the same kind replaces it.

    Returns:
        The problems of the files that could not be loaded (the others are installed); a kind
        that an installed connector or an earlier file has is a problem too.
    """
    for kind, shipped in connectors.PACK_FILES.items():
        connectors.add_declared_later(kind, functools.partial(load_connector_file, shipped))
    folder = project_dir / "connectors"
    files, problems = _pack_files()
    if folder.is_dir():
        files += sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    seen: dict[str, Path] = {}
    for path in files:
        try:
            cls = load_connector_file(path)
        except errors.FlowInvalid as exc:
            problems += exc.problems
            continue
        installed = connectors.available_connectors()
        if cls.kind in seen or (cls.kind in installed and not connectors.is_declared(cls.kind)):
            first = str(seen.get(cls.kind, "an installed connector"))
            problems.append(Problem(Location(str(path)), f"connector {cls.kind!r} is also {first}", "a unique name"))
            continue
        seen[cls.kind] = path
        connectors.add_declared(cls)
    return problems
