"""The shape of a declarative connector file (`connectors/<name>.yaml`, or a pack's file).

A declared connector is an HTTP/JSON system described instead of programmed: the settings its
connections take, a base URL and a sign-in (an `http` connection's `auth:` kinds, reused as
they are), its operations (method, path, query or body built from inputs, an input JSON Schema,
an output path, pagination) and how its errors look in an answer.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from seamflow.connectors.http.config import Auth
from seamflow.connectors.http.signing import Signing
from seamflow.connectors.openapi.paging import Paginate
from seamflow.ids import Json

__all__ = ["ConnectorFile", "ErrorCodes", "Operation", "RateLimit", "Setting", "connector_file_schema"]

_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
_TEMPLATE = re.compile(r"\{\{[^}]*\}\}")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Setting(BaseModel):
    """One setting a connection of this connector gives in `connections.yaml`."""

    model_config = _STRICT
    description: str = ""
    default: str | int | None = None
    """Without a default the setting is required."""
    is_secret: bool = Field(False, alias="secret")
    """Masked in every message; give it as `{{ secrets.NAME }}` in `connections.yaml`."""


class ErrorCodes(BaseModel):
    """How a refusal looks in an answer the system sends with HTTP 200 (DingTalk, WeCom, Feishu).

    A code in `ok` (or no code at all) is success; a code in `retryable` is `connector.transient`;
    a code in `revoked` renews the token once and sends again; any other code is
    `connector.rejected` (permanent).
    """

    model_config = _STRICT
    code: str | list[str]
    """Dotted path of the code in the answer's body, e.g. `errcode` or `code` (a number picks from a
    list: `0.0.Result.ResponseStatus.MsgCode`); a list of paths: the first one present."""
    message: str | list[str] | None = None
    """Dotted path of the message shown with the code, e.g. `errmsg`; a list: the first one present."""
    ok: list[int | str] = Field(default_factory=lambda: list[int | str]([0]))
    retryable: list[int | str] = Field(default_factory=list)
    """E.g. DingTalk's `-1` (system busy) and `90018` (rate limited)."""
    revoked: list[int | str] = Field(default_factory=list)
    """Codes meaning the token was revoked early (DingTalk's 40014, 42001): the connection renews
    its token once and sends the call again. Needs `auth: {token_endpoint: …}`."""
    statuses: list[int] = Field(default_factory=list)
    """HTTP statuses (4xx) whose answers carry a code too and are judged by it, e.g. `[400]` for
    Feishu, which refuses a revoked token with HTTP 400 and code 99991663. Such an answer without
    a code is `connector.rejected`."""


class RateLimit(BaseModel):
    """How fast the system lets an app call it, and what "too frequent" looks like.

    The connector paces its calls to `per_second` (in each process: a cluster of N workers
    declares the system's limit divided by N), and a refusal for calling too often — HTTP 429 or a
    code in `codes` — is `connector.rate_limited` (transient) with `retry_after` = the answer's
    `Retry-After` (or `wait_header`), else `wait_s`.
    """

    model_config = _STRICT
    per_second: float = Field(ge=0.01, le=100_000)
    """E.g. 20 for DingTalk's 20 calls per second per app."""
    burst: int = Field(1, ge=1)
    """How many calls may leave at once after a quiet moment; then one each 1/per_second."""
    codes: list[int | str] = Field(default_factory=list)
    """Error codes meaning "too frequent", e.g. DingTalk's 90018; checked before `errors.retryable`."""
    wait_s: float = Field(1.0, ge=0.01, le=86_400)
    """How long to wait before the retry when the answer does not say (no `Retry-After`)."""
    wait_header: str | None = None
    """Another header of the refusal that says how many seconds to wait, e.g. Feishu's
    `x-ogw-ratelimit-reset`; `Retry-After` is read first."""


class Operation(BaseModel):
    """One operation: a step calls it as `connection.operation`."""

    model_config = _STRICT
    description: str = ""
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str
    """Relative to `base_url`; `{name}` is replaced by the input `name`, URL-encoded."""
    query: dict[str, Any] = Field(default_factory=dict)
    """Query parameters; a value `"{{ input.x }}"` takes input `x` (left out when not given)."""
    body: dict[str, Any] | None = None
    """A JSON body, built like `query`; `{{ config.x }}` reads a connection setting."""
    input: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    """The JSON Schema of the step's `with`; `flow validate` checks literal inputs against it."""
    output: str | dict[str, str] | None = None
    """What the step returns: a dotted path in the answer's body (`result`), or a mapping of names
    to paths (`{task: task_id, request: request_id}`); none: the whole body."""
    paginate: Paginate | None = None
    """Read every page (as the `openapi` connector's `paginate`); the step gets `{items, pages, has_more}`."""
    page_in: Literal["query", "body"] = "query"
    """Where the page, offset, cursor and size parameters go."""
    is_idempotent: bool = Field(False, alias="idempotent")

    @field_validator("input")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type", "object") != "object":
            raise ValueError("must be a JSON Schema of type object (the step's `with`)")
        return value


class ConnectorFile(BaseModel):
    """A declarative connector file."""

    model_config = _STRICT
    connector: str
    """The connector's kind: a connection uses it with `connector: <kind>`."""
    title: str = ""
    description: str = ""
    settings: dict[str, Setting] = Field(default_factory=dict)
    base_url: str
    """E.g. `"{{ config.base_url }}"` or `https://oapi.dingtalk.com`; `{{ env.NAME }}` reads the environment."""
    auth: dict[str, Any] | None = None
    """Exactly as an `http` connection's `auth:` (token_endpoint, oauth2, bearer, …); values may read
    `{{ config.x }}`. Checked when the file loads, with every template standing for a value."""
    headers: dict[str, str] = Field(default_factory=dict)
    sign: dict[str, Any] | None = None
    """Sign every request as an `http` connection's `sign:` (parameters sorted and signed with the app
    secret, MD5 or HMAC-SHA256, timestamp and nonce, the body too); values may read `{{ config.x }}`."""
    errors: ErrorCodes | None = None
    rate_limit: RateLimit | None = None
    operations: dict[str, Operation] = Field(min_length=1)

    @field_validator("connector")
    @classmethod
    def _kind(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be lowercase letters, digits and _, starting with a letter")
        return value

    @field_validator("auth")
    @classmethod
    def _sign_in(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            Auth.model_validate(_standing_in(value))
        return value

    @field_validator("sign")
    @classmethod
    def _signing(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            Signing.model_validate(_standing_in(value))
        return value

    @field_validator("errors")
    @classmethod
    def _revoked_needs_a_token_endpoint(cls, value: ErrorCodes | None, info: ValidationInfo) -> ErrorCodes | None:
        if "auth" not in info.data:  # the sign-in itself is wrong: that is the problem to report
            return value
        if value is not None and value.revoked and "token_endpoint" not in (info.data.get("auth") or {}):
            raise ValueError("revoked needs auth: {token_endpoint: …} (the sign-in that can be renewed)")
        return value

    @model_validator(mode="after")
    def _names(self) -> ConnectorFile:
        bad = [name for name in self.operations if not _NAME.match(name)]
        if bad:
            raise ValueError(f"operation names must be lowercase letters, digits and _: {', '.join(bad)}")
        return self


def _standing_in(value: Any) -> Any:
    """`value` with each template replaced by a stand-in (a URL where one starts a text)."""
    if isinstance(value, dict):
        return {key: _standing_in(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_standing_in(item) for item in value]
    if isinstance(value, str) and "{{" in value:
        return _TEMPLATE.sub("https://stand-in.invalid" if value.lstrip().startswith("{{") else "x", value)
    return value


def connector_file_schema() -> dict[str, Json]:
    """The JSON Schema of declarative connector files (`seamflow connector schema`)."""
    schema: dict[str, Json] = ConnectorFile.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "Seamflow declarative connector file",
        "description": "An HTTP/JSON system described in YAML: settings, base URL, sign-in, operations, errors.",
    }
