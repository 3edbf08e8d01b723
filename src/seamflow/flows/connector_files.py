"""Loading declarative connector files with positions, and finding them in a project and in packs.

A project's `connectors/*.yaml` and every file a Python package publishes through the
`seamflow.connector_packs` entry-point group (the entry point names a `str` or `Path` of the
file) become connector kinds beside the installed ones. Problems carry file:line:column and,
for an unknown key, the closest known one — the same loader as flow files.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from os import PathLike
from pathlib import Path

from pydantic import ValidationError

from seamflow import connectors, errors
from seamflow.connectors import declared
from seamflow.errors import Location, Problem
from seamflow.flows import load
from seamflow.flows.source import parse_yaml, read_source

__all__ = [
    "PACK_GROUP",
    "connector_file_schema",
    "install_project_connectors",
    "load_connector_file",
    "load_connector_text",
]

PACK_GROUP = "seamflow.connector_packs"
connector_file_schema = declared.connector_file_schema


def load_connector_text(text: str | bytes, filename: str) -> type[declared.DeclaredConnector]:
    """Read a declarative connector file and build its connector class.

    Raises:
        errors.FlowInvalid: every problem of the file, each at file:line:column.
    """
    data, source_map = parse_yaml(text, filename)
    if not isinstance(data, dict):
        found = "the file is empty" if data is None else f"got {errors.redact(data)}"
        raise errors.FlowInvalid([Problem(Location(filename, 1, 1), found, "a connector: base_url, operations, …")])
    try:
        file = declared.ConnectorFile.model_validate(data)
    except ValidationError as exc:
        problems = [load.problem_of(detail, source_map, declared.ConnectorFile) for detail in exc.errors()]
        raise errors.FlowInvalid(sorted(problems, key=lambda p: (p.where.line or 0, p.where.column or 0))) from None
    return declared.connector_class(file, data)


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

    Returns:
        The problems of the files that could not be loaded (the others are installed); a kind
        that an installed connector or an earlier file has is a problem too.
    """
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
