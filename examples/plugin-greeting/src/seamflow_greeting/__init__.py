"""The `greeting` connector: the smallest complete Seamflow connector, as an example plugin.

Its one action, `greet`, builds a greeting and touches no other system. A real connector
has the same shape: a `Config` model, typed action inputs, `open`/`call`/`close`, failures
classified as `errors.Transient` or `errors.Permanent`, secrets registered at `open`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from seamflow import connectors, errors, redact
from seamflow.ids import Json

__all__ = ["GreetingConnector"]


class GreetingConfig(BaseModel):
    """The settings of a `greeting` connection in `connections.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    salutation: str = "Hello"
    """The first word of every English greeting."""
    token: SecretStr | None = None
    """Stands for a credential: a real connector sends it to its target, never logs it."""


class GreetInput(BaseModel):
    """Inputs of `greet` (a step's `with:`)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    language: Literal["en", "zh"] = "en"


ACTIONS: dict[str, connectors.Action] = {
    "greet": connectors.Action(
        "greet",
        GreetInput,
        "Return a greeting for `name`. No effect outside, so a retry is harmless; a real "
        "action names here how it passes the idempotency key to its target.",
        is_idempotent=True,
    ),
}


class GreetingConnector:
    """Greets people: action `greet` returns `{"message": ..., "idempotency_key": ...}`."""

    kind: ClassVar[str] = "greeting"
    Config: ClassVar[type[BaseModel]] = GreetingConfig
    actions: ClassVar[Mapping[str, connectors.Action]] = ACTIONS

    def __init__(self) -> None:
        self._name = "greeting"
        self._salutation = "Hello"

    async def open(self, connection: connectors.Connection) -> None:
        """Validate the connection's config and remember its secret.

        Raises:
            errors.InvalidInput: a field of the config is wrong (its value is not shown).
        """
        try:
            config = GreetingConfig.model_validate(dict(connection.config))
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            raise errors.InvalidInput(
                f"connection {connection.name!r}: invalid greeting config: {fields}",
                code="connection.invalid",
            ) from None  # the pydantic error shows input values, which may be secrets
        if config.token is not None:
            redact.register(config.token.get_secret_value())
        self._name = connection.name
        self._salutation = config.salutation

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Perform `action`.

        Raises:
            errors.Permanent: an unknown action or bad inputs; retrying will not help.
        """
        where = f"{self._name}.{action}"
        if action not in ACTIONS:
            raise errors.Permanent(f"unknown action; expected one of {', '.join(ACTIONS)}", where=where)
        try:
            inputs = GreetInput.model_validate(params)
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            raise errors.Permanent(f"invalid input: {fields}", where=where) from None
        if inputs.language == "zh":
            message = f"你好，{inputs.name}！"
        else:
            message = f"{self._salutation}, {inputs.name}!"
        return {"message": message, "idempotency_key": idempotency_key}

    async def close(self) -> None:
        """Nothing to release: this connector holds no pool."""
