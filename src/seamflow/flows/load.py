"""Reading flow files: YAML to plain data with the line:column of each value, then a `spec.Flow`.

The YAML is read with the YAML 1.2 core schema (`yes`, `on`, `12:30`, `0086…` and dates stay
strings) and without aliases, custom tags or duplicate keys. Every problem names its
file:line:column and its path (`steps[1].retry.attempts`). `flows.validate` adds the checks
that need the rest of the project: connections, other flows, step references.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Annotated, Protocol, TypeAlias, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from seamflow import errors
from seamflow.errors import Location, Problem
from seamflow.flows import spec
from seamflow.ids import Json

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
    "read_source",
    "suggest",
]

MAX_FILE_BYTES = 1024 * 1024
"""Flow and connections files above 1 MiB are refused before they are parsed."""
MAX_DEPTH = 100
"""Deepest nesting of lists and mappings accepted in a file."""

JsonPath: TypeAlias = tuple[str | int, ...]
"""Where a value sits in a document: `("steps", 1, "retry", "attempts")`."""

_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = {_TAG + name for name in ("str", "null", "bool", "int", "float", "seq", "map")}
_PLAIN_YAML = "plain YAML: text, numbers, true/false, null, lists and mappings"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONNECTION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def format_path(path: Sequence[str | int]) -> str:
    """Render a path the way people write it: `steps[1].retry.attempts`, `with["Content-Type"]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += f".{part}" if text else part
        else:
            text += '["' + part.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return text


@dataclass(frozen=True, slots=True)
class SourceMap:
    """The 1-based (line, column) of every value and mapping key of one YAML file."""

    file: str
    values: Mapping[JsonPath, tuple[int, int]] = field(default_factory=dict)
    """Position of the value at each path."""
    keys: Mapping[JsonPath, tuple[int, int]] = field(default_factory=dict)
    """Position of the mapping key that introduces the value at each path."""

    def locate(self, path: Sequence[str | int], *, at_key: bool = False) -> Location:
        """Return the location of `path`, or of its nearest ancestor that is in the file.

        Args:
            path: where the value sits in the document.
            at_key: point at the mapping key rather than at its value (for unknown fields).
        """
        probe = tuple(path)
        position = self.keys.get(probe) if at_key else None
        while position is None:
            position = self.values.get(probe)
            if not probe:
                break
            probe = probe[:-1]
        line, column = position or (None, None)
        return Location(self.file, line, column, format_path(path) or None)


def flow_version(text: bytes) -> str:
    """Return the version of a flow file: the first 16 hex digits of the SHA-256 of its bytes."""
    return hashlib.sha256(text).hexdigest()[:16]


class _Mark(Protocol):
    line: int
    column: int


def _position(mark: _Mark | None) -> tuple[int, int] | None:
    return None if mark is None else (mark.line + 1, mark.column + 1)


class _Refusal(Exception):
    """Something PyYAML would accept but a flow file must not contain."""

    def __init__(self, mark: _Mark | None, problem: str, expected: str) -> None:
        super().__init__(problem)
        self.position, self.problem, self.expected = _position(mark), problem, expected


class _FlowLoader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core schema, no aliases and bounded nesting."""

    yaml_implicit_resolvers: dict[object, object] = {}  # noqa: RUF012 (PyYAML's class table)

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        if isinstance(event, yaml.AliasEvent):
            # Refusing aliases outright rules out "billion laughs" expansion.
            raise _Refusal(event.start_mark, "aliases (*name) are not allowed", "each value written out")
        if self._depth >= MAX_DEPTH:
            raise _Refusal(event.start_mark, "nesting is too deep", f"at most {MAX_DEPTH} levels")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


for _tag, _pattern, _first in [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^[-+]?(?:0|[1-9][0-9]*)$", "-+0123456789"),
    (
        "float",
        r"^[-+]?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)$",
        "-+0123456789.",
    ),
]:
    _FlowLoader.add_implicit_resolver(_TAG + _tag, re.compile(_pattern), list(_first))


def _at(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


class _Builder:
    """Turns a composed node tree into plain data and records where each value came from."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.values: dict[JsonPath, tuple[int, int]] = {}
        self.keys: dict[JsonPath, tuple[int, int]] = {}
        self.problems: list[Problem] = []

    def refuse(self, node: Node, path: JsonPath, problem: str, expected: str | None) -> None:
        line, column = _at(node)
        where = Location(self.filename, line, column, format_path(path) or None)
        self.problems.append(Problem(where, problem, expected))

    def build(self, node: Node, path: JsonPath) -> Json:
        self.values[path] = _at(node)
        if node.tag not in _PLAIN_TAGS:
            self.refuse(node, path, f"tag {_short_tag(node.tag)} is not allowed", _PLAIN_YAML)
            return None
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self.scalar(node, path)

    def mapping(self, node: MappingNode, path: JsonPath) -> dict[str, Json]:
        result: dict[str, Json] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.refuse(key_node, path, "a list or mapping used as a key", "a text key")
                continue
            key: str = key_node.value  # keys are always text, as in JSON
            at = (*path, key)
            if key in result:
                line, column = self.keys[at]
                problem = f"duplicate key {errors.redact(key)} (first at line {line}:{column})"
                self.refuse(key_node, at, problem, "each key once in a mapping")
                continue
            self.keys[at] = _at(key_node)
            result[key] = self.build(value_node, at)
        return result

    def scalar(self, node: ScalarNode, path: JsonPath) -> Json:
        text: str = node.value
        kind = node.tag.removeprefix(_TAG)
        try:
            if kind == "int":
                return int(text)
            if kind == "float":
                number = float(text)
                if number in (float("inf"), float("-inf")) or number != number:
                    raise ValueError(text)
                return number
        except ValueError:
            self.refuse(node, path, f"got {errors.redact(text)}", f"a finite {kind}")
            return None
        if kind == "bool":
            if text.lower() not in ("true", "false"):
                self.refuse(node, path, f"got {errors.redact(text)}", "true or false")
            return text.lower() == "true"
        return None if kind == "null" else text


def _decode(text: str | bytes, filename: str) -> str:
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if len(raw) > MAX_FILE_BYTES:
        size = f"the file has {len(raw):,} bytes"
        raise errors.FlowInvalid([Problem(Location(filename), size, "at most 1 MiB (1,048,576 bytes)")])
    if isinstance(text, str):
        return text
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        where = Location(filename, line, column)
        problem = f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x})"
        raise errors.FlowInvalid([Problem(where, problem, "UTF-8 text; save the file as UTF-8")]) from None


def _spot(filename: str, position: tuple[int, int] | None) -> Location:
    return Location(filename, *(position or (None, None)))


def _yaml_problem(exc: yaml.YAMLError, filename: str, source: str) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        problem = f"invalid YAML: {exc.problem or exc.context}"
        start = _position(exc.context_mark)
        if exc.problem and exc.context and not exc.context.startswith("while"):
            problem = f"invalid YAML: {exc.context}, {exc.problem}"
        elif exc.problem and exc.context and start:
            problem += f" ({exc.context} at {start[0]}:{start[1]})"
        return Problem(_spot(filename, _position(exc.problem_mark)), problem, "valid YAML")
    if isinstance(exc, yaml.reader.ReaderError):
        before = source[: exc.position]
        line, column = before.count("\n") + 1, len(before) - before.rfind("\n")
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problem = f"character U+{code:04X} is not allowed in YAML"
        return Problem(Location(filename, line, column), problem, "printable text")
    return Problem(Location(filename), f"invalid YAML: {exc}", "valid YAML")


def parse_yaml(text: str | bytes, filename: str) -> tuple[Json, SourceMap]:
    """Read one YAML document into plain data and the position of each of its values.

    Args:
        text: the file's content; bytes must be UTF-8.
        filename: the name used in problems, e.g. `flows/contract.yaml`.

    Returns:
        The document (None for an empty file) and its source map.

    Raises:
        errors.FlowInvalid: a file over 1 MiB, not UTF-8, not YAML, or using duplicate
            keys, aliases or tags other than the standard ones.
    """
    source = _decode(text, filename)
    try:
        root = yaml.compose(source, Loader=_FlowLoader)
    except _Refusal as exc:
        problem = Problem(_spot(filename, exc.position), exc.problem, exc.expected)
        raise errors.FlowInvalid([problem]) from None
    except yaml.YAMLError as exc:
        raise errors.FlowInvalid([_yaml_problem(exc, filename, source)]) from None
    builder = _Builder(filename)
    data = None if root is None else builder.build(root, ())
    if builder.problems:
        raise errors.FlowInvalid(builder.problems)
    return data, SourceMap(filename, builder.values, builder.keys)


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


def _target(loc: Sequence[str | int]) -> _Target:
    """Follow an error location through the spec, dropping the step-kind tags Pydantic adds."""
    current: object = spec.Flow
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


def _problem_of(detail: ErrorDetails, source_map: SourceMap) -> Problem:
    """Turn one Pydantic error into a problem: position, what was found, what was expected."""
    target = _target(detail["loc"])
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
        found = [_problem_of(detail, source_map) for detail in exc.errors()]
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


def read_source(path: Path) -> bytes:
    """Read a flow or connections file; at most `MAX_FILE_BYTES` + 1 bytes are read.

    Raises:
        errors.FlowInvalid: the file cannot be read.
    """
    try:
        with path.open("rb") as file:
            return file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise errors.FlowInvalid([Problem(Location(str(path)), f"cannot read the file: {exc.strerror}")]) from exc


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
    return problems


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
