"""The settings of an `openapi` connection: the document, where the API is, and credentials by security scheme."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["Credentials", "OpenApiConfig"]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Credentials(BaseModel):
    """Credentials for one security scheme of the document; which fields it needs depends on the scheme.

    http bearer: `token`; http basic: `username`, `password`; apiKey: `value`; oauth2 and
    openIdConnect: `client_id` and, by flow, `client_secret` (client credentials; a confidential
    client of the others), `username` and `password` (password flow); optional `scopes`, `flow`.
    """

    model_config = _STRICT
    token: SecretStr | None = None
    value: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scopes: list[str] | None = None
    """Scopes asked for (consent and token requests); by default every scope the document's operations
    require of this scheme."""
    flow: Literal["authorization_code", "client_credentials", "password", "implicit"] | None = None
    """The oauth2 flow to use; by default password when `username` is given, else client credentials,
    else authorization code — the first the scheme declares. `implicit` is refused with the reason."""
    client_auth: Literal["basic", "post"] = "basic"
    """How the client authenticates to the token URL: HTTP basic, or `client_id`/`client_secret` in the form."""
    redirect_port: int = Field(0, ge=0, le=65535)
    """The loopback port of `seamflow connections authorize` (authorization code); 0: any free port."""
    refresh_early_s: int = Field(60, ge=0)
    """An access token is renewed this long before it expires."""


class OpenApiConfig(BaseModel):
    """The settings of an `openapi` connection in `connections.yaml`."""

    model_config = _STRICT
    document: str = Field(min_length=1)
    """A path to the OpenAPI 3.0/3.1 document (YAML or JSON), or an http(s) URL fetched when the connection opens."""
    base_url: str | None = None
    """Where the API is; by default the document's first server (relative: against the document's URL)."""
    auth: dict[str, Credentials] = Field(default_factory=dict)
    """Credentials by security scheme name, as in `components.securitySchemes` of the document."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with every request."""
    check_operation: str | None = None
    """An operation without required inputs that `seamflow connections test` calls to prove the credentials."""
    verify_tls: bool = True
    max_connections: int = Field(100, ge=1)
    response_max_bytes: int = Field(10 * 1024 * 1024, ge=1)
    """A larger response body is a Permanent error."""
    document_max_bytes: int = Field(20 * 1024 * 1024, ge=1)

    @field_validator("base_url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value
