"""Reading `directory.yaml`: departments, positions and users, each problem at file:line:column.

Every row is checked before anything is stored; `Directory.save` then checks references
(a user's department, manager, positions; a department's parent and head) and writes all of
it in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from seamflow import errors, flows
from seamflow.directory.model import DepartmentEntry, PositionEntry, UserEntry
from seamflow.errors import Location, Problem

__all__ = ["DirectoryFile", "check_entry", "read_directory_file", "read_directory_text"]

_SECTIONS: dict[str, type[BaseModel]] = {
    "departments": DepartmentEntry,
    "positions": PositionEntry,
    "users": UserEntry,
}
_KEYS = {"departments": "id", "positions": "id", "users": "login"}


@dataclass(frozen=True, slots=True)
class DirectoryFile:
    """The checked rows of one directory file, and where each field came from."""

    departments: list[DepartmentEntry]
    positions: list[PositionEntry]
    users: list[UserEntry]
    locate: Callable[[str, int, str], Location]
    """(section, row index, field) -> file:line:column, for problems found later (references)."""


def read_directory_file(path: Path) -> DirectoryFile:
    """Read and check a directory file; see `read_directory_text`."""
    try:
        raw = flows.load.read_source(path)
    except errors.FlowInvalid as exc:
        raise _invalid(exc.problems) from None
    return read_directory_text(raw, str(path))


def read_directory_text(text: str | bytes, filename: str) -> DirectoryFile:
    """Check every row of a directory document (sections `departments`, `positions`, `users`).

    Raises:
        errors.InvalidInput: `directory.invalid`, with every problem at its file:line:column.
    """
    try:
        data, source_map = flows.load.parse_yaml(text, filename)
    except errors.FlowInvalid as exc:
        raise _invalid(exc.problems) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _invalid([Problem(source_map.locate(()), "the file is not a mapping", "departments, positions, users")])
    problems: list[Problem] = []
    for key in data:
        if key not in _SECTIONS:
            expected = "one of the sections departments, positions, users"
            problems.append(Problem(source_map.locate((key,), at_key=True), f"unknown section {key!r}", expected))
    parsed = {name: _rows(name, data.get(name), source_map, problems) for name in _SECTIONS}
    if problems:
        raise _invalid(problems)

    def locate(section: str, index: int, field: str) -> Location:
        return source_map.locate((section, index, field))

    return DirectoryFile(parsed["departments"], parsed["positions"], parsed["users"], locate)  # type: ignore[arg-type]


def check_entry(section: str, data: object, where: str) -> BaseModel:
    """Check one department, position or user (`section`) sent to the API; `where` names it in problems.

    Raises:
        errors.InvalidInput: `directory.invalid`, every problem named by its field.
    """
    try:
        return _SECTIONS[section].model_validate(data)
    except ValidationError as exc:
        source_map = flows.load.SourceMap(where)
        raise _invalid([_problem(section, -1, d, source_map) for d in exc.errors(include_url=False)]) from None


def _rows(section: str, value: object, source_map: flows.load.SourceMap, problems: list[Problem]) -> list[BaseModel]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(Problem(source_map.locate((section,)), f"{section} is not a list", f"a list of {section}"))
        return []
    model, key_field = _SECTIONS[section], _KEYS[section]
    rows: list[BaseModel] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(value):
        key = row.get(key_field) if isinstance(row, dict) else None
        if isinstance(key, str) and key in seen:
            where = source_map.locate((section, index, key_field))
            first = source_map.locate((section, seen[key], key_field))
            problems.append(Problem(where, f"{key_field} {key!r} appears twice (first at {first})", "each once"))
        elif isinstance(key, str):
            seen[key] = index
        try:
            rows.append(model.model_validate(row))
        except ValidationError as exc:
            problems += [_problem(section, index, detail, source_map) for detail in exc.errors(include_url=False)]
    return rows


def _problem(section: str, index: int, detail: object, source_map: flows.load.SourceMap) -> Problem:
    assert isinstance(detail, dict)
    loc = tuple(detail.get("loc", ()))
    kind = str(detail.get("type", ""))
    message = str(detail.get("msg", "")).removeprefix("Value error, ")
    path = (section, index, *loc) if index >= 0 else loc
    if kind == "extra_forbidden":
        fields = ", ".join(f.alias or name for name, f in _SECTIONS[section].model_fields.items())
        return Problem(source_map.locate(path, at_key=True), f"unknown field {loc[-1]!r}", f"one of {fields}")
    if kind == "missing":
        return Problem(source_map.locate(path[:-1]), f"{loc[-1]!r} is missing", f"it in every row of {section}")
    found = f"got {errors.redact(detail.get('input'))}" if "input" in detail else "invalid"
    described = _SECTIONS[section].model_fields.get(str(loc[0])) if loc else None
    if kind == "string_pattern_mismatch" and described is not None and described.description:
        message = described.description  # the field says what it takes better than its regular expression
    elif kind == "enum":
        message = message.replace("Input should be", "one of")
    what, _, expected = message.partition("; expected ")
    if not expected:
        what, expected = "", message
    return Problem(source_map.locate(path), f"{found}{', ' + what if what else ''}", expected)


def _invalid(problems: list[Problem]) -> errors.InvalidInput:
    failure = errors.InvalidInput("\n".join(map(str, problems)), code="directory.invalid")
    failure.problems = list(problems)
    return failure
