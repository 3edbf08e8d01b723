"""The models a declared connector offers the engine and `flow validate`: its settings and each
operation's inputs, built from the file's `settings:` and the operations' input JSON Schemas."""

from __future__ import annotations

from typing import Any, ClassVar

import jsonschema  # type: ignore[import-untyped]  # no stubs installed, as in openapi/schemas.py
from pydantic import BaseModel, ConfigDict, create_model

from seamflow import redact
from seamflow.connectors.declared.spec import ConnectorFile, Operation

__all__ = ["DeclaredInput", "input_model", "schema_problems", "settings_model"]


def _is_template(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


def schema_problems(schema: dict[str, Any], given: dict[str, Any], *, literal_only: bool) -> list[tuple[str, str]]:
    """What is wrong with `given` against an operation's input schema: (path of the input, problem).

    With `literal_only`, values that are templates (rendered at run time) and missing required
    inputs are not checked: that is what `flow validate` can know before a run.
    """
    checked = dict(schema)
    if literal_only:
        checked.pop("required", None)
        given = {key: value for key, value in given.items() if not _is_template(value)}
    validator = jsonschema.Draft202012Validator(checked)
    found = []
    for error in sorted(validator.iter_errors(given), key=lambda e: list(map(str, e.path))):
        if literal_only and _is_template(error.instance):  # a template inside an object: known at run time
            continue
        found.append((".".join(map(str, error.path)), redact.mask_text(error.message)))
    return found


class DeclaredInput(BaseModel):
    """The inputs of a declared operation: its fields are the input schema's properties."""

    model_config = ConfigDict(extra="forbid")
    input_schema: ClassVar[dict[str, Any]] = {}

    @classmethod
    def literal_problems(cls, given: dict[str, Any]) -> list[tuple[str, str]]:
        """The literal inputs a step gives that the input schema refuses (for `flow validate`)."""
        return schema_problems(cls.input_schema, given, literal_only=True)


def input_model(kind: str, name: str, operation: Operation) -> type[DeclaredInput]:
    """A model whose fields are the schema's properties (the required ones required)."""
    properties = operation.input.get("properties", {})
    required = set(operation.input.get("required", []))
    fields: dict[str, Any] = {key: (Any, ... if key in required else None) for key in properties}
    is_open = operation.input.get("additionalProperties", False) is not False
    model = create_model(f"{kind}.{name}", __base__=DeclaredInput, **fields)
    model.model_config = ConfigDict(extra="allow" if is_open else "forbid")
    model.input_schema = operation.input
    model.model_rebuild(force=True)
    return model


def settings_model(file: ConnectorFile) -> type[BaseModel]:
    """The `Config` of the connector: its settings, required unless they have a default."""
    fields: dict[str, Any] = {
        name: (str | int, ... if setting.default is None else setting.default)
        for name, setting in file.settings.items()
    }
    model: type[BaseModel] = create_model(
        f"{file.connector}.settings", __config__=ConfigDict(extra="forbid", frozen=True), **fields
    )
    return model
