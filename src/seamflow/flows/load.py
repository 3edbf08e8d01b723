"""Loading flows and connections: a file's plain data checked into a `spec.Flow` or connection settings.

Pydantic's errors become problems at file:line:column with their path (`steps[1].retry.attempts`);
`flows.validate` adds the checks that need the rest of the project: connections, other flows, step references.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from seamflow import connectors, errors
from seamflow.errors import Location, Problem
from seamflow.flows import spec
from seamflow.flows.source import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    JsonPath,
    SourceMap,
    format_path,
    parse_yaml,
    read_source,
)
from seamflow.ids import Json

# Re-exported from `flows.source`: callers read `load.SourceMap`, `load.parse_yaml` and the rest.
__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "JsonPath",
    "SourceMap",
    "flow_from_data",
    "flow_version",
    "format_path",
    "load_connections_file",
    "load_connections_text",
    "load_flow_file",
    "load_flow_text",
    "parse_yaml",
    "problem_of",
    "read_source",
    "suggest",
]

_CONNECTION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def flow_version(text: bytes) -> str:
    """Return the version of a flow file: the first 16 hex digits of the SHA-256 of its bytes."""
    return hashlib.sha256(text).hexdigest()[:16]


_PATTERNS = {
    r"^[a-z][a-z0-9_]{0,62}$": "a lowercase letter, then lowercase letters, digits or _ (at most 63 characters)",
    r"^[a-z0-9][a-z0-9_.-]{0,99}$": "a flow id: lowercase letters, digits, _ . - "
    "(at most 100 characters), e.g. contract-signed-to-erp",
    r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$": "connection.action, e.g. erp.create_sales_order",
    r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,199}$": "a URL path of letters, digits, _ . / -, e.g. crm/contracts",
    r"^[A-Za-z0-9_.:-]{1,100}$": "a signal name of letters, digits, _ . : - (at most 100 characters)",
}
_EXPECTED = {
    "int": "an integer",
    "str": "a string",
    "string": "a string",
    "bool": "true or false",
    "dict": "a mapping",
    "model": "a mapping",
    "model_attributes": "a mapping",
    "list": "a list",
    "float": "a number",
    "timedelta": "a duration such as 30s, 5m, 2h or 3d",
}
_NAMED = {
    "trigger": "a trigger: webhook, schedule or manual",
    "steps": "a list of steps",
    "then": "a list of steps",
    "respond": "a mapping with status, body and headers",
    "wait": "a mapping with one of duration, until, signal",
    "emit": "a mapping with activity, objects and attributes",
    "approval": "a mapping with requester and levels",
}
_STEP_LISTS = {"steps", "then", "else"}


@dataclass(frozen=True, slots=True)
class _Target:
    """What a Pydantic error location points at: our path, the model and field it belongs to."""

    path: JsonPath
    model: type[BaseModel] | None
    name: str | None
    field: FieldInfo | None
    annotation: object
    """The type expected at the path."""


def _unwrap(annotation: object) -> object:
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _fields_by_key(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {info.alias or name: info for name, info in model.model_fields.items()}


def _target(loc: Sequence[str | int], root: type[BaseModel]) -> _Target:
    """Follow an error location through the spec, dropping the step-kind tags Pydantic adds."""
    current: object = root
    path: list[str | int] = []
    model, name, info = None, None, None
    for part in loc:
        current = _unwrap(current)
        if get_origin(current) in (Union, UnionType) and part in spec.STEP_KINDS:
            current = spec.STEP_KINDS[str(part)]  # the tag of the step union, not a field
            continue
        path.append(part)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            model, name, info = current, part, _fields_by_key(current).get(part)
            current = info.annotation if info else object
        else:  # an item of a list or mapping: the field's constraints no longer apply
            name, info = None, None
            is_container = get_origin(current) in (list, dict)
            current = get_args(current)[-1] if is_container else object
    return _Target(tuple(path), model, name, info, _unwrap(current))


def _constraint(info: FieldInfo | None, attribute: str) -> object:
    for item in info.metadata if info else ():
        if hasattr(item, attribute):
            return getattr(item, attribute)
    return None


def _describe(target: _Target) -> str | None:
    """Say what a field expects, from its name, its pattern, its range or its type."""
    info, name, annotation = target.field, target.name, target.annotation
    if name in _NAMED:
        return _NAMED[name]
    pattern = _constraint(info, "pattern")
    if isinstance(pattern, str):
        return _PATTERNS.get(pattern, f"text matching {pattern}")
    low, high = _constraint(info, "ge"), _constraint(info, "le")
    noun = "an integer" if annotation is int else "a number"
    if low is not None and high is not None:
        return f"{noun} from {low} to {high}"
    shortest, longest = _constraint(info, "min_length"), _constraint(info, "max_length")
    if annotation is str and (shortest or longest):
        return f"text of {shortest or 0} to {longest or 'any number of'} characters"
    type_name = getattr(annotation, "__name__", "")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        type_name = "model"
    return _EXPECTED.get(type_name) or _EXPECTED.get(getattr(get_origin(annotation), "__name__", ""))


def _found(value: object) -> str:
    if value is None:
        return "got null"
    if isinstance(value, dict):
        return "got fields " + ", ".join(map(str, value)) if value else "got no fields"
    return f"got {errors.redact(value)}"


def _value_problem(detail: ErrorDetails, target: _Target) -> tuple[str, str | None]:
    message = detail["msg"].removeprefix("Value error, ")
    if message.startswith("expected "):
        return _found(detail["input"]), message.removeprefix("expected ")
    if message.startswith("give "):
        wanted, _, got = message.removeprefix("give ").partition("; got ")
        got = got.strip("[]").replace("'", "")  # the spec says "got ['webhook', 'manual']"
        return (f"got {got}" if got else _found(detail["input"])), wanted
    return message, None


def _step_kind_problem(detail: ErrorDetails, source_map: SourceMap, path: JsonPath) -> Problem:
    step = detail["input"]
    expected = "exactly one of: " + ", ".join(spec.STEP_KINDS)
    if not isinstance(step, dict):
        return Problem(source_map.locate(path), f"got {errors.redact(step)}", "a step: " + expected)
    kinds = [key for key in step if key in spec.STEP_KINDS]
    if kinds:
        where = source_map.locate((*path, kinds[1]), at_key=True)
        return Problem(where, "a step with several kinds: " + ", ".join(kinds), expected)
    known = [*spec.STEP_KINDS, *_fields_by_key(spec.ActionStep)]
    unknown = [f"unknown field {key!r}{suggest(key, known)}" for key in step if key not in known]
    found = "a step without a kind" + (f" ({'; '.join(unknown)})" if unknown else "")
    return Problem(source_map.locate(path), found, expected)


def problem_of(detail: ErrorDetails, source_map: SourceMap, root: type[BaseModel] = spec.Flow) -> Problem:
    """Turn one Pydantic error of validating `root` into a problem: position, what was found, what was expected."""
    target = _target(detail["loc"], root)
    path, kind = target.path, detail["type"]
    if kind == "missing":
        about = target.field.description if target.field else None
        expected = _NAMED.get(str(target.name)) or about or _describe(target)
        return Problem(source_map.locate(path[:-1]), f"missing field {target.name!r}", expected)
    if kind == "extra_forbidden":
        known = list(_fields_by_key(target.model)) if target.model else []
        hint = suggest(str(path[-1]), known)
        expected = None if hint else "one of: " + ", ".join(known)
        return Problem(source_map.locate(path, at_key=True), f"unknown field {path[-1]!r}{hint}", expected)
    if kind == "step_kind":
        return _step_kind_problem(detail, source_map, path)
    if kind == "value_error":
        problem, expected = _value_problem(detail, target)
    else:
        problem, expected = _found(detail["input"]), _describe(target)
    if kind in ("enum", "literal_error"):
        expected = "one of " + str(detail.get("ctx", {}).get("expected"))
    elif kind == "too_short" and target.name in _STEP_LISTS:
        expected = "at least one step"
    elif expected is None and kind != "value_error":
        expected = _EXPECTED.get(kind.removesuffix("_type")) or detail["msg"].lower()
    return Problem(source_map.locate(path), problem, expected)


def flow_from_data(data: Json, source_map: SourceMap) -> tuple[spec.Flow | None, list[Problem]]:
    """Check the shape of a flow (fields, types, ranges) and build its `spec.Flow`.

    Returns:
        The flow (None if it has problems) and every problem found, each with its position.
    """
    if data is None:
        where = Location(source_map.file, 1, 1)
        return None, [Problem(where, "the file is empty", "a flow with id, trigger and steps")]
    try:
        return spec.Flow.model_validate(data), []
    except ValidationError as exc:
        found = [problem_of(detail, source_map) for detail in exc.errors()]
        return None, sorted(found, key=lambda p: (p.where.line or 0, p.where.column or 0))


def load_flow_text(text: str | bytes, filename: str) -> tuple[spec.Flow, SourceMap]:
    """Read a flow file's text and check its YAML and its shape.

    Checks that need the project (connections, other flows, step references) are made by
    `validate.validate_flow`.

    Raises:
        errors.FlowInvalid: with every problem found.
    """
    data, source_map = parse_yaml(text, filename)
    flow, problems = flow_from_data(data, source_map)
    if flow is None:
        raise errors.FlowInvalid(problems)
    return flow, source_map


def load_flow_file(path: Path) -> tuple[spec.Flow, SourceMap]:
    """Read a flow file and check its YAML and its shape; see `load_flow_text`.

    Raises:
        errors.FlowInvalid: with every problem found, or if the file cannot be read.
    """
    return load_flow_text(read_source(path), str(path))


def _connection_problems(name: str, config: Json, source_map: SourceMap) -> list[Problem]:
    """The settings every connection has; the connector checks the rest when it opens."""
    if not _CONNECTION_NAME.match(name):
        where = source_map.locate((name,), at_key=True)
        return [
            Problem(
                where,
                f"got connection name {errors.redact(name)}",
                "lowercase letters, digits and _",
            )
        ]
    if not isinstance(config, dict):
        return [Problem(source_map.locate((name,)), f"got {errors.redact(config)}", "a mapping")]
    problems = []

    def refuse(key: str, expected: str) -> None:
        if key in config:
            where, found = source_map.locate((name, key)), f"got {errors.redact(config[key])}"
        else:
            where, found = source_map.locate((name,)), f"missing field {key!r}"
        problems.append(Problem(where, found, expected))

    if not isinstance(config.get("connector"), str):
        refuse("connector", "the connector kind, e.g. http")
    concurrency = config.get("concurrency")
    if concurrency is not None and (type(concurrency) is not int or not 1 <= concurrency <= 10_000):
        refuse("concurrency", "an integer from 1 to 10000")
    try:
        spec.parse_duration(config.get("timeout", 0))
    except ValueError as exc:
        refuse("timeout", str(exc).removeprefix("expected "))
    problems += _outbound_allow_problems(name, config.get("outbound_allow"), source_map)
    return problems


def _outbound_allow_problems(name: str, allow: Json, source_map: SourceMap) -> list[Problem]:
    """Each `outbound_allow` entry that is not an address, a CIDR network or a host name."""
    if allow is None:
        return []
    if not isinstance(allow, list):
        where = source_map.locate((name, "outbound_allow"))
        return [Problem(where, f"got {errors.redact(allow)}", "a list of addresses, CIDR networks or host names")]
    found = []
    for index, entry in enumerate(allow):
        problem = connectors.allow_entry_problem(entry)
        if problem is not None:
            got, _, expected = problem.partition("; expected ")
            found.append(Problem(source_map.locate((name, "outbound_allow", index)), got, expected))
    return found


def load_connections_text(text: str | bytes, filename: str) -> tuple[dict[str, dict[str, Json]], SourceMap]:
    """Read `connections.yaml`: connection name -> `{connector: kind, ...settings}`.

    Returns:
        The raw configuration of each connection (secrets still as templates) and the source map.

    Raises:
        errors.FlowInvalid: with every problem found.
    """
    data, source_map = parse_yaml(text, filename)
    if data is None:
        return {}, source_map
    if not isinstance(data, dict):
        found = f"got {errors.redact(data)}"
        raise errors.FlowInvalid([Problem(source_map.locate(()), found, "a mapping of connection names")])
    problems = [p for name, config in data.items() for p in _connection_problems(name, config, source_map)]
    if problems:
        raise errors.FlowInvalid(problems)
    return {name: config for name, config in data.items() if isinstance(config, dict)}, source_map


def load_connections_file(path: Path) -> tuple[dict[str, dict[str, Json]], SourceMap]:
    """Read a `connections.yaml` file; see `load_connections_text`."""
    return load_connections_text(read_source(path), str(path))


def suggest(name: str, choices: Sequence[str]) -> str:
    """Return `; did you mean 'x'?` for the closest of `choices`, or an empty string."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
