"""The connector plugin interface: a connector is code for a kind of system, a connection its configured instance.

A connector declares its config model, its actions (with typed inputs) and is found through
the `seamflow.connectors` entry-point group. See docs/howto/write-a-connector.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from importlib.metadata import entry_points
from typing import ClassVar, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from seamflow import errors
from seamflow.ids import Json

__all__ = ["Action", "Connection", "Connector", "available_connectors", "field_problems", "parse_config"]

M = TypeVar("M", bound=BaseModel)

ENTRY_POINT_GROUP = "seamflow.connectors"


@dataclass(frozen=True, slots=True)
class Action:
    """An operation a connector offers, called from a step as `connection.action`."""

    name: str
    input: type[BaseModel]
    """Validates the step's `with` inputs; its required fields are checked by `flow validate`."""
    description: str = ""
    is_idempotent: bool = False
    """True if calling twice with the same idempotency key yields one effect at the target."""


@dataclass(frozen=True, slots=True)
class Connection:
    """A configured instance of a connector, as declared in `connections.yaml`.

    `config` holds the connector-specific settings with secrets already resolved; never
    log it or put it in an error message.
    """

    name: str
    connector: str
    config: Mapping[str, Json] = field(default_factory=dict)
    concurrency: int | None = None
    """At most this many calls in flight on this connection at once (None: no limit)."""
    timeout: timedelta = timedelta(seconds=30)
    """Bound on every network await of a call."""


@runtime_checkable
class Connector(Protocol):
    """Code for a kind of system. One instance serves one connection."""

    kind: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    actions: ClassVar[Mapping[str, Action]]

    async def open(self, connection: Connection) -> None:
        """Validate `connection.config` against `Config` and open pools/clients."""

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Perform `action`; pass `idempotency_key` to the target.

        Raises:
            errors.Transient: worth retrying with the same key.
            errors.Permanent: retrying will not help.
        """

    async def close(self) -> None:
        """Release pools and clients."""


def available_connectors() -> dict[str, type[Connector]]:
    """Return every installed connector class by kind, from the entry-point group.

    Raises:
        errors.SeamflowError: a plugin failed to import (its name and the reason are given).
    """
    found: dict[str, type[Connector]] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = point.load()
        except Exception as exc:  # a broken plugin must say which one it is
            raise errors.SeamflowError(
                f"connector plugin {point.name!r} ({point.value}) failed to load: {exc}",
                code="connector.plugin",
            ) from exc
        found[cls.kind] = cls
    return found


def field_problems(exc: ValidationError, root: str, file: str | None = None) -> list[errors.Problem]:
    """Name each bad field and what is wrong, without echoing the values (they may be secret)."""
    return [
        errors.Problem(errors.Location(file, path=".".join([root, *map(str, error["loc"])])), error["msg"])
        for error in exc.errors(include_url=False, include_input=False)
    ]


def parse_config(model: type[M], connection: Connection) -> M:
    """Validate a connection's settings against its connector's `Config` model.

    Raises:
        errors.InvalidInput: `connection.invalid`, naming the connection and every bad field of
            `connections.yaml` — never a value. It is raised outside the handler, so the
            Pydantic error (whose text may hold a URL with a token) is not even its context.
    """
    problems: list[errors.Problem] = []
    try:
        return model.model_validate(dict(connection.config))
    except ValidationError as exc:
        problems = field_problems(exc, connection.name, file="connections.yaml")
    failure = errors.InvalidInput(
        f"connection {connection.name!r} has an invalid {connection.connector} config: "
        + "; ".join(map(str, problems)),
        code="connection.invalid",
    )
    failure.problems = problems
    raise failure
