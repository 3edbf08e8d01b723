"""The actions of the `http` connector and their inputs (a step's `with:`), encoded as a request."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from seamflow import codec
from seamflow.connectors.base import Action

__all__ = ["ACTIONS", "HttpInput", "RequestInput", "encode_body", "query_params"]

_Scalar = str | int | Decimal | bool


class HttpInput(BaseModel):
    """Inputs of `get`, `post`, `put`, `patch` and `delete`."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = None
    """An absolute URL (`https://…`)."""
    path: str | None = None
    """A path appended to the connection's `base_url`; give `url` or `path`."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with this request, over the connection's `headers`; may replace `Idempotency-Key`."""
    query: dict[str, _Scalar | list[_Scalar]] = Field(default_factory=dict)
    """Query parameters; a list repeats the parameter."""
    json_body: Any = Field(None, alias="json")
    """`json:` in the step: a body sent as `application/json`, numbers exact."""
    form: dict[str, str | list[str]] | None = None
    """A body sent as `application/x-www-form-urlencoded`."""
    content: str | None = None
    """A text body sent as UTF-8 (`text/plain` unless the step's headers say otherwise)."""
    expect: list[Annotated[int, Field(ge=100, le=599)]] | None = None
    """Statuses that count as success; by default every status below 400."""

    @model_validator(mode="after")
    def _coherent(self) -> HttpInput:
        if (self.url is None) == (self.path is None):
            raise ValueError("give exactly one of url (absolute) or path (relative to base_url)")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://; use path for base_url")
        bodies = ("json_body" in self.model_fields_set) + (self.form is not None)
        if bodies + (self.content is not None) > 1:
            raise ValueError("give at most one of json, form, content")
        return self


class RequestInput(HttpInput):
    """Inputs of `request`: those of the shortcuts plus the method."""

    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


_KEY_NOTE = "Sends the step's idempotency key as the `Idempotency-Key` header."
ACTIONS: dict[str, Action] = {
    "request": Action("request", RequestInput, f"Any HTTP request. {_KEY_NOTE}", True),
    **{
        verb: Action(verb, HttpInput, f"An HTTP {verb.upper()} request. {_KEY_NOTE}", True)
        for verb in ("get", "post", "put", "patch", "delete")
    },
}


def encode_body(inputs: HttpInput, headers: dict[str, str]) -> bytes | None:
    """Return the request body of `inputs` (None: no body) and set its Content-Type in `headers`."""
    if "json_body" in inputs.model_fields_set:
        headers["Content-Type"] = "application/json"
        return codec.dumps(inputs.json_body)
    if inputs.form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return urlencode(inputs.form, doseq=True).encode()
    if inputs.content is not None:
        headers["Content-Type"] = "text/plain; charset=utf-8"
        return inputs.content.encode()
    return None


def query_params(query: dict[str, _Scalar | list[_Scalar]]) -> list[tuple[str, str]]:
    """Return the step's `query` as text pairs: Decimal written exactly, booleans as `true`/`false`."""
    pairs: list[tuple[str, str]] = []
    for name, value in query.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, ("true" if item else "false") if isinstance(item, bool) else str(item)))
    return pairs
