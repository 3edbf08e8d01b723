"""Reading flow and connections files: YAML to plain data, with the line:column of every value in a `SourceMap`.

The YAML 1.2 core schema is used (`yes`, `on`, `12:30`, `0086…` and dates stay strings), and aliases,
custom tags and duplicate keys are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeAlias

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from seamflow import errors
from seamflow.errors import Location, Problem
from seamflow.flows.yaml_words import plain_yaml_problem
from seamflow.ids import Json

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
        problem, expected = plain_yaml_problem(exc, _position(exc.context_mark))
        return Problem(_spot(filename, _position(exc.problem_mark)), problem, expected)
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
