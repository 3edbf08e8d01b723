"""Checking a step's inputs against its operation's schemas before anything is sent.

An operation's inputs form one JSON object — its parameters by name and `body` — checked with
JSON Schema Draft 2020-12 for OpenAPI 3.1 and draft 4 rules with `nullable` for 3.0. Every
problem is named by its field (`body.phone: '123' does not match '^1[3-9]\\d{9}$'`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from seamflow import errors, redact
from seamflow.connectors.openapi.document import Document, Operation
from seamflow.ids import Json

__all__ = ["InputCheck", "invalid_input"]

_MAX_SHOWN = 10


def invalid_input(problems: Iterable[str], where: str) -> errors.Permanent:
    """The error for inputs that break the document: `connector.invalid_input`, every problem named."""
    return errors.Permanent("invalid input: " + "; ".join(problems), where=where, code="connector.invalid_input")


class InputCheck:
    """The inputs of one operation as one JSON Schema, with a compiled validator."""

    def __init__(self, document: Document, operation: Operation, where: str) -> None:
        """Compile the operation's input schema.

        Raises:
            errors.Permanent: a schema of the document for this operation is not valid JSON Schema.
        """
        properties: dict[str, Json] = {p.name: p.schema for p in operation.parameters}
        required: list[Json] = [p.name for p in operation.parameters if p.is_required]
        if operation.body is not None:
            properties["body"] = operation.body.schema
            if operation.body.is_required:
                required.append("body")
        schema: dict[str, Json] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
            "components": document.components,  # the target of the schemas' `#/components/...` refs
        }
        if required:  # draft 4 refuses an empty list
            schema["required"] = required
        self.names = list(properties)
        self._types = {p.name: p.schema.get("type") for p in operation.parameters if p.where != "cookie"}
        kind: Any = jsonschema.Draft202012Validator if document.is_31 else jsonschema.Draft4Validator
        schema = schema if document.is_31 else _nullable(schema)  # type: ignore[assignment]
        try:
            kind.check_schema(schema)
        except jsonschema.SchemaError as exc:
            at = _path(exc.absolute_path)
            raise errors.Permanent(
                f"the document's schemas for {operation.operation_id} are not valid JSON Schema at {at}: "
                f"{errors.redact(exc.message, limit=200)}",
                where=where,
            ) from None
        self._validator: Any = kind(schema)

    def coerce(self, inputs: dict[str, Json]) -> dict[str, Json]:
        """Read text given for an integer, number or boolean parameter (they travel as text anyway)."""
        coerced = dict(inputs)
        for name, kind in self._types.items():
            value = inputs.get(name)
            if isinstance(value, str):
                coerced[name] = _scalar(value, kind)
        return coerced

    def errors(self, inputs: dict[str, Json]) -> list[Any]:
        """Every way `inputs` break the operation's schemas (jsonschema's errors), by field."""
        return sorted(self._validator.iter_errors(inputs), key=lambda e: [str(p) for p in e.absolute_path])

    def check(self, inputs: dict[str, Json], where: str) -> None:
        """Raise `invalid_input` naming every field that breaks the operation's schemas."""
        found = self.errors(inputs)
        if found:
            problems = [self.describe(error) for error in found[:_MAX_SHOWN]]
            if len(found) > _MAX_SHOWN:
                problems.append(f"and {len(found) - _MAX_SHOWN} more")
            raise invalid_input(problems, where)

    def describe(self, error: Any) -> str:
        """One error in words, named by its field: `body.mobile: '123' does not match '^1[3-9]\\d{9}$'`."""
        path = _path(error.absolute_path)
        kind, expected, instance = error.validator, error.validator_value, error.instance
        if kind == "required" and isinstance(instance, dict):
            missing = [name for name in expected if name not in instance]
            fields = ", ".join(f"{path}.{name}" if path else name for name in missing)
            return f"{fields}: missing; it is required"
        if kind == "additionalProperties" and isinstance(instance, dict) and isinstance(expected, bool):
            known = self.names if not path else list(error.schema.get("properties", {}))
            unknown = ", ".join(repr(name) for name in instance if name not in known)
            field = "unknown input" if not path else f"{path}: unknown field"
            return f"{field} {unknown}; expected {', '.join(known) or 'none'}"
        if kind == "pattern":
            return f"{path}: {errors.redact(instance)} does not match '{expected}'"
        message = redact.mask_text(error.message)
        if len(message) > 200:
            message = message[:199] + "…"
        return f"{path or 'inputs'}: {message}"


def _path(parts: deque[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _scalar(value: str, kind: Json) -> Json:
    if kind == "integer" and value.lstrip("-").isdigit():
        return int(value)
    if kind == "number":
        try:
            return Decimal(value) if "." in value else int(value)
        except (InvalidOperation, ValueError):
            return value
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


def _nullable(node: Json) -> Json:
    """OpenAPI 3.0's `nullable: true` as JSON Schema: `null` joins the type (and the enum)."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable(value) for key, value in node.items()}
    if node.get("nullable") is True:
        kind = converted.get("type")
        if isinstance(kind, str):
            converted["type"] = [kind, "null"]
        enum = converted.get("enum")
        if isinstance(enum, list) and None not in enum:
            converted["enum"] = [*enum, None]
    return converted
