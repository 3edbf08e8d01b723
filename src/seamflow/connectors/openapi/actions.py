"""The actions of an `openapi` connection: `call`, and one per operation of its document.

`flow validate` reads a connector's actions from its class, before any document is read, so
the class offers `OPEN_ACTIONS`: `call` by name, and any other action name as an operation
whose inputs are checked when the step runs. An open connection knows its document and
offers exactly its operations (`operation_actions`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model

from seamflow import errors
from seamflow.connectors.base import Action
from seamflow.connectors.openapi.document import Document, Operation
from seamflow.connectors.openapi.paging import Paginate
from seamflow.connectors.openapi.schemas import InputCheck

__all__ = ["OPEN_ACTIONS", "CallInput", "DocumentActions", "OpenActions", "operation_actions", "unknown_operation"]

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


LiteralProblem = tuple[str, str, str]
"""What `flow validate` reports of a step's literal inputs: (dotted input path, problem, what was expected)."""


def _is_template(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


def _holds_template(value: object) -> bool:
    if isinstance(value, dict):
        return any(_holds_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_template(v) for v in value)
    return _is_template(value)


def literal_problems(document: Document, operation: Operation, given: Mapping[str, Any]) -> list[LiteralProblem]:
    """What the operation's schemas refuse among the inputs a step gives literally (no `{{ … }}` in them).

    Missing and unknown inputs are not reported here (`flow validate` checks them by the input
    model), nor a value that holds a template: it is known only when the step runs.
    """
    try:
        check = InputCheck(document, operation, f"{document.source} {operation.operation_id}")
    except errors.Permanent as exc:  # the document's own schemas are broken: say so where the step is
        return [("", exc.message, "an operation whose schemas are valid JSON Schema")]
    inputs = check.coerce({k: v for k, v in given.items() if k != "paginate" and not _is_template(v)})
    found = []
    for error in check.errors(inputs):
        path = list(error.absolute_path)
        if not path and error.validator in ("required", "additionalProperties"):
            continue
        if _holds_template(error.instance):
            continue
        problem, _, expected = check.describe(error).partition("; expected ")
        found.append((".".join(map(str, path)), problem, expected or "a value the operation's schemas allow"))
    return found


class OperationInputModel(BaseModel):
    """The inputs of one operation of a read document; `flow validate` checks literal values against its schemas."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)
    document: ClassVar[Document]
    operation: ClassVar[Operation]

    @classmethod
    def literal_problems(cls, given: dict[str, Any]) -> list[LiteralProblem]:
        """See `literal_problems`."""
        return literal_problems(cls.document, cls.operation, given)


class DocumentCallInput(CallInput):
    """Inputs of `call` on a read document: `flow validate` checks a literal `operation` and its inputs."""

    document: ClassVar[Document]

    @classmethod
    def literal_problems(cls, given: dict[str, Any]) -> list[LiteralProblem]:
        """An unknown literal operation, with the closest names; else the operation's literal inputs."""
        name = given.get("operation")
        if not isinstance(name, str) or _is_template(name):
            return []
        operation = cls.document.find(name)
        if operation is None:
            return [("operation", *unknown_operation(cls.document, name))]
        return literal_problems(cls.document, operation, {k: v for k, v in given.items() if k != "operation"})


def unknown_operation(document: Document, name: str) -> tuple[str, str]:
    """The problem of an operation name the document lacks, with the closest operationIds: (problem, expected)."""
    ids = sorted(op.operation_id for op in document.operations.values())
    close = difflib.get_close_matches(name, ids, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    shown = ", ".join(ids[:12]) + (f" and {len(ids) - 12} more" if len(ids) > 12 else "")
    return f"unknown operation {errors.redact(name)} of {document.source}{hint}", f"an operationId: {shown}"


def operation_actions(document: Document) -> DocumentActions:
    """`call` and one action per operation, with an input model naming its parameters and `body`."""
    return DocumentActions(document)


class DocumentActions(Mapping[str, Action]):
    """The actions of a read document; each input model is built when first looked up (Stripe has 452)."""

    def __init__(self, document: Document) -> None:
        self._document = document
        call_input = type("call_input", (DocumentCallInput,), {"document": document, "__module__": __name__})
        self._built: dict[str, Action] = {"call": Action("call", call_input, CALL.description)}

    def __getitem__(self, name: str) -> Action:
        found = self._built.get(name)
        if found is None:
            operation = self._document.operations[name]  # KeyError: not an action of the document
            model = _input_model(self._document, operation)
            found = self._built[name] = Action(name, model, _description(operation), _is_idempotent(operation))
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(("call", *self._document.operations))

    def __len__(self) -> int:
        return 1 + len(self._document.operations)


def _input_model(document: Document, operation: Operation) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for index, parameter in enumerate(operation.parameters):
        default = ... if parameter.is_required else None
        fields[f"p{index}"] = (Any, Field(default, alias=parameter.name))
    if operation.body is not None:
        fields["body"] = (Any, ... if operation.body.is_required else None)
    fields["paginate"] = (Paginate | None, None)
    model = create_model(f"{operation.action}_input", __base__=OperationInputModel, **fields)
    model.document, model.operation = document, operation
    return model


def _description(operation: Operation) -> str:
    head = f"{operation.method} {operation.path} ({operation.operation_id})"
    return f"{head}: {operation.summary}" if operation.summary else head


def _is_idempotent(operation: Operation) -> bool:
    """True for safe and idempotent methods, and for operations that declare an `Idempotency-Key` header."""
    declares_key = any(p.where == "header" and p.name.lower() == "idempotency-key" for p in operation.parameters)
    return operation.method in _SAFE_METHODS or declares_key
