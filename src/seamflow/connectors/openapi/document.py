"""An OpenAPI 3.0/3.1 document read into the operations a connection offers as actions.

`parse_document` checks what the connector relies on — the version, `paths`, every local
`$ref`, unique operation names — and reports every problem at once, each with its place in
the document. Schemas keep their `$ref`s: `schemas.py` validates against them as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import unquote

import yaml

from seamflow import errors
from seamflow.ids import Json

__all__ = ["Body", "Document", "Operation", "Parameter", "action_name", "parse_document"]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_PROBLEMS = 20
RESERVED_INPUTS = ("body", "paginate")
"""Inputs of an operation's action that are not parameters of the document."""

Where = Literal["path", "query", "header", "cookie"]


@dataclass(frozen=True, slots=True)
class Parameter:
    """A path, query, header or cookie parameter of an operation."""

    name: str
    where: Where
    is_required: bool
    schema: dict[str, Json]


@dataclass(frozen=True, slots=True)
class Body:
    """The request body an operation takes: its media type and schema."""

    media_type: str
    schema: dict[str, Json]
    is_required: bool


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the document, offered as the action `action`."""

    action: str
    """The action's name: the operationId in snake_case (`listCustomers` → `list_customers`)."""
    operation_id: str
    """The operationId, or the name derived from method and path when the document gives none."""
    method: str
    path: str
    parameters: tuple[Parameter, ...]
    body: Body | None
    security: tuple[dict[str, list[str]], ...]
    """Alternatives: each maps the security schemes that are required together to their scopes."""
    summary: str


@dataclass(frozen=True, slots=True)
class Document:
    """A checked OpenAPI document."""

    source: str
    """Where it was read from (a path or URL), for messages."""
    version: str
    title: str
    servers: tuple[str, ...]
    """Server URLs with their variables replaced by their defaults."""
    operations: dict[str, Operation]
    """By action name."""
    schemes: dict[str, dict[str, Json]]
    """Security schemes by name."""
    components: Json
    """`components` as written, for the schemas' `$ref`s."""

    @property
    def is_31(self) -> bool:
        """True for OpenAPI 3.1 (JSON Schema 2020-12); False for 3.0 (`nullable`, draft 4 rules)."""
        return self.version.startswith("3.1")

    def find(self, name: str) -> Operation | None:
        """The operation called `name`: its action name or its operationId."""
        found = self.operations.get(name)
        if found is None:
            found = next((op for op in self.operations.values() if op.operation_id == name), None)
        return found


def action_name(operation_id: str) -> str:
    """The action name of an operationId: snake_case of letters, digits and `_` (`getCustomer` → `get_customer`)."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", operation_id)
    name = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return name if re.match(r"^[a-z]", name) else f"op_{name}"


def _derived_id(method: str, path: str) -> str:
    """`GET /customers/{id}` → `get_customers_by_id`."""
    words = [method]
    for segment in path.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            words += ["by", segment[1:-1]]
        elif segment:
            words.append(segment)
    return action_name("_".join(words))


class _Reader:
    """Walks one document, resolving local `$ref`s and collecting problems with their places."""

    def __init__(self, root: dict[str, Json], source: str) -> None:
        self.root = root
        self.source = source
        self.problems: list[errors.Problem] = []

    def add(self, path: str, problem: str, expected: str | None = None) -> None:
        self.problems.append(errors.Problem(errors.Location(self.source, path=path), problem, expected))

    def pointer(self, ref: str) -> Json:
        """The value a local `$ref` (`#/components/schemas/Customer`) points at; KeyError if none."""
        node: Json = self.root
        for raw in ref[1:].split("/")[1:] if ref != "#" else []:
            part = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise KeyError(ref)
        return node

    def resolve(self, node: Json, path: str) -> dict[str, Json] | None:
        """Follow `$ref`s from `node` to an object; None (with a problem) if it is broken."""
        seen: list[str] = []
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = cast(str, node["$ref"])
            if ref in seen:
                self.add(path, f"$ref cycle {' → '.join([*seen, ref])}")
                return None
            seen.append(ref)
            try:
                node = self.pointer(ref)
            except KeyError:
                return None  # check_refs reports it
        if not isinstance(node, dict):
            self.add(path, f"got {errors.redact(node, 40)}", "an object")
            return None
        return node

    def check_refs(self, node: Json, path: str) -> None:
        """Every `$ref` of the document is local and points at something."""
        for ref_path, ref in _refs(node, path):
            if not ref.startswith("#"):
                self.add(ref_path, f"$ref {errors.redact(ref)} points outside the document", "a local $ref (#/...)")
                continue
            try:
                self.pointer(ref)
            except KeyError:
                self.add(ref_path, f"$ref {errors.redact(ref)} points at nothing", "a path that exists in the document")


def _refs(node: Json, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield f"{path}.$ref", value
            else:
                yield from _refs(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, f"{path}[{index}]")


def load_data(raw: bytes, source: str) -> Json:
    """Parse the document's bytes: JSON, or YAML (a superset of JSON for documents)."""
    text = raw.decode("utf-8-sig", errors="replace")
    try:
        if text.lstrip().startswith("{"):
            return cast(Json, json.loads(text))
        return cast(Json, yaml.safe_load(text))
    except (ValueError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        detail = f"line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise errors.InvalidInput(
            f"OpenAPI document {source}: not valid JSON or YAML{where}{detail and ' at ' + detail}",
            code="connection.invalid",
        ) from None


def parse_document(data: Json, source: str) -> Document:
    """Check a parsed OpenAPI document and return its operations.

    Raises:
        errors.InvalidInput: `connection.invalid`, listing every problem with its place in the document.
    """
    if not isinstance(data, dict):
        raise errors.InvalidInput(
            f"OpenAPI document {source}: got {type(data).__name__}; expected an object with openapi, info, paths",
            code="connection.invalid",
        )
    reader = _Reader(data, source)
    version = data.get("openapi")
    if not (isinstance(version, str) and re.match(r"^3\.[01]\.", version + ".")):
        found = f"swagger {data['swagger']!r}" if "swagger" in data else f"openapi {errors.redact(version)}"
        reader.add("openapi", f"got {found}", "OpenAPI 3.0.x or 3.1.x (convert a Swagger 2.0 document first)")
        version = "3.1.0"
    reader.check_refs(data, "")
    operations = _operations(reader, data.get("paths"))
    schemes = _schemes(reader, data)
    if reader.problems:
        shown = reader.problems[:_MAX_PROBLEMS]
        more = len(reader.problems) - len(shown)
        failure = errors.InvalidInput(
            f"OpenAPI document {source} is invalid:\n"
            + "\n".join(map(str, shown))
            + (f"\n… and {more} more" if more else ""),
            code="connection.invalid",
        )
        failure.problems = reader.problems
        raise failure
    info = data.get("info")
    title = info.get("title") if isinstance(info, dict) else None
    return Document(
        source=source,
        version=str(version),
        title=str(title or "untitled"),
        servers=_servers(data.get("servers")),
        operations=operations,
        schemes=schemes,
        components=data.get("components", {}),
    )


def _servers(servers: Json) -> tuple[str, ...]:
    found = []
    for server in servers if isinstance(servers, list) else []:
        if isinstance(server, dict) and isinstance(server.get("url"), str):
            url = cast(str, server["url"])
            variables = server.get("variables")
            for name, variable in (variables if isinstance(variables, dict) else {}).items():
                if isinstance(variable, dict) and "default" in variable:
                    url = url.replace("{" + name + "}", str(variable["default"]))
            found.append(url)
    return tuple(found)


def _schemes(reader: _Reader, data: dict[str, Json]) -> dict[str, dict[str, Json]]:
    components = data.get("components")
    raw = components.get("securitySchemes") if isinstance(components, dict) else None
    schemes = {}
    for name, node in (raw if isinstance(raw, dict) else {}).items():
        scheme = reader.resolve(node, f"components.securitySchemes.{name}")
        if scheme is not None:
            schemes[name] = scheme
    return schemes


def _operations(reader: _Reader, paths: Json) -> dict[str, Operation]:
    if not isinstance(paths, dict) or not paths:
        got = "no paths" if paths is None else f"paths {errors.redact(paths, 40)}"
        reader.add("paths", f"got {got}", "an object of paths with at least one operation")
        return {}
    found: dict[str, Operation] = {}
    places: dict[str, str] = {}
    for path, raw_item in paths.items():
        item = reader.resolve(raw_item, f"paths.{path}")
        if item is None:
            continue
        shared = _parameters(reader, item.get("parameters"), f"paths.{path}.parameters")
        for method in _METHODS:
            if method not in item:
                continue
            where = f"paths.{path}.{method}"
            operation = _operation(reader, item[method], method, path, shared, where)
            if operation is None:
                continue
            first = places.get(operation.action)
            if first is not None:
                clash = found[operation.action].operation_id
                reader.add(
                    f"{where}.operationId",
                    f"operation name {operation.operation_id!r} is already used by {clash!r} at {first}",
                    "operationIds that stay unique in snake_case",
                )
                continue
            found[operation.action], places[operation.action] = operation, where
    if not found and not reader.problems:
        reader.add("paths", "no operations", "at least one operation (get, post, …) under paths")
    return found


def _operation(
    reader: _Reader, node: Json, method: str, path: str, shared: list[Parameter], where: str
) -> Operation | None:
    if not isinstance(node, dict):
        reader.add(where, f"got {errors.redact(node, 40)}", "an operation object")
        return None
    operation_id = node.get("operationId")
    if operation_id is not None and not (isinstance(operation_id, str) and operation_id.strip()):
        reader.add(f"{where}.operationId", f"got {errors.redact(operation_id)}", "a non-empty string")
        return None
    name = action_name(operation_id) if isinstance(operation_id, str) else _derived_id(method, path)
    own = _parameters(reader, node.get("parameters"), f"{where}.parameters")
    merged = {(p.name, p.where): p for p in [*shared, *own]}  # the operation's own win
    parameters = tuple(merged.values())
    for parameter in parameters:
        if parameter.where != "header" and parameter.name in RESERVED_INPUTS:
            reader.add(f"{where}.parameters", f"parameter {parameter.name!r} clashes with the input of the same name")
    for segment in re.findall(r"{([^}]+)}", path):
        if (segment, "path") not in merged:
            reader.add(f"{where}.parameters", f"path parameter {segment!r} of {path} is not declared")
    security = node.get("security", reader.root.get("security", []))
    return Operation(
        action=name,
        operation_id=operation_id if isinstance(operation_id, str) else name,
        method=method.upper(),
        path=path,
        parameters=parameters,
        body=_body(reader, node.get("requestBody"), f"{where}.requestBody"),
        security=_security(security),
        summary=str(node.get("summary") or node.get("description") or ""),
    )


def _security(requirements: Json) -> tuple[dict[str, list[str]], ...]:
    """The alternatives of a `security` list; `{}` among them means "no credentials needed"."""
    found = []
    for requirement in requirements if isinstance(requirements, list) else []:
        if isinstance(requirement, dict):
            found.append({name: [str(s) for s in v] if isinstance(v, list) else [] for name, v in requirement.items()})
    return tuple(found)


def _parameters(reader: _Reader, nodes: Json, where: str) -> list[Parameter]:
    found = []
    for index, node in enumerate(nodes if isinstance(nodes, list) else []):
        here = f"{where}[{index}]"
        parameter = reader.resolve(node, here)
        if parameter is None:
            continue
        name, place = parameter.get("name"), parameter.get("in")
        if not isinstance(name, str) or place not in ("path", "query", "header", "cookie"):
            reader.add(here, "a parameter without name or a valid `in`", "name and in: path, query, header or cookie")
            continue
        schema = parameter.get("schema")
        if schema is None:  # `content` instead of `schema`: take its first media type's schema
            content = parameter.get("content")
            media = next(iter(content.values()), None) if isinstance(content, dict) else None
            schema = media.get("schema") if isinstance(media, dict) else None
        is_required = parameter.get("required") is True or place == "path"
        found.append(Parameter(name, cast(Where, place), is_required, schema if isinstance(schema, dict) else {}))
    return found


def _body(reader: _Reader, node: Json, where: str) -> Body | None:
    if node is None:
        return None
    body = reader.resolve(node, where)
    content = body.get("content") if body is not None else None
    if not isinstance(content, dict) or not content:
        reader.add(where, "a requestBody without content", "content: {application/json: {schema: …}}")
        return None
    media_type = next((m for m in content if m == "application/json" or m.endswith("+json")), next(iter(content)))
    media = content[media_type]
    schema = media.get("schema") if isinstance(media, dict) else None
    assert body is not None
    return Body(media_type, schema if isinstance(schema, dict) else {}, body.get("required") is True)
