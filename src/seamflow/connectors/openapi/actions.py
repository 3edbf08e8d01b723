"""The actions of an `openapi` connection: `call`, and one per operation of its document.

`flow validate` reads a connector's actions from its class, before any document is read, so
the class offers `OPEN_ACTIONS`: `call` by name, and any other action name as an operation
whose inputs are checked when the step runs. An open connection knows its document and
offers exactly its operations (`operation_actions`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from seamflow.connectors.base import Action
from seamflow.connectors.openapi.document import Document, Operation
from seamflow.connectors.openapi.paging import Paginate

__all__ = ["OPEN_ACTIONS", "CallInput", "OpenActions", "operation_actions"]

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")
"""Methods that are idempotent by definition (RFC 9110); POST and PATCH only with a key the target honours."""


class CallInput(BaseModel):
    """Inputs of `call`: the operation, and its inputs beside it (parameters by name, `body`, `paginate`)."""

    model_config = ConfigDict(extra="allow")
    operation: str = Field(min_length=1)
    """The operationId (`createCustomer`) or its action name (`create_customer`)."""


class OperationInput(BaseModel):
    """Inputs of an operation before the document is known: checked against it when the step runs."""

    model_config = ConfigDict(extra="allow")
    paginate: Paginate | None = None


CALL = Action(
    "call",
    CallInput,
    "Call any operation of the document by operationId. Sends the idempotency key as `Idempotency-Key`.",
)
_ANY_OPERATION = Action(
    "operation",
    OperationInput,
    "An operation of the connection's OpenAPI document; inputs are checked against it when called.",
)


class OpenActions(Mapping[str, Action]):
    """`call`, and any other name as an operation of a document not read yet.

    Only `call` is listed; looking up another name answers a generic operation action,
    so `flow validate` accepts `crm.create_customer` and the call checks it against the document.
    """

    def __getitem__(self, name: str) -> Action:
        if name == "call":
            return CALL
        if not isinstance(name, str) or not name:
            raise KeyError(name)
        return _ANY_OPERATION

    def __iter__(self) -> Iterator[str]:
        return iter(("call",))

    def __len__(self) -> int:
        return 1


OPEN_ACTIONS = OpenActions()


def operation_actions(document: Document) -> dict[str, Action]:
    """`call` and one action per operation, with an input model naming its parameters and `body`."""
    found = {"call": CALL}
    for name, operation in document.operations.items():
        found[name] = Action(name, _input_model(operation), _description(operation), _is_idempotent(operation))
    return found


def _input_model(operation: Operation) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for index, parameter in enumerate(operation.parameters):
        default = ... if parameter.is_required else None
        fields[f"p{index}"] = (Any, Field(default, alias=parameter.name))
    if operation.body is not None:
        fields["body"] = (Any, ... if operation.body.is_required else None)
    fields["paginate"] = (Paginate | None, None)
    config = ConfigDict(extra="forbid", populate_by_name=False)
    model: type[BaseModel] = create_model(f"{operation.action}_input", __config__=config, **fields)
    return model


def _description(operation: Operation) -> str:
    head = f"{operation.method} {operation.path} ({operation.operation_id})"
    return f"{head}: {operation.summary}" if operation.summary else head


def _is_idempotent(operation: Operation) -> bool:
    """True for safe and idempotent methods, and for operations that declare an `Idempotency-Key` header."""
    declares_key = any(p.where == "header" and p.name.lower() == "idempotency-key" for p in operation.parameters)
    return operation.method in _SAFE_METHODS or declares_key
