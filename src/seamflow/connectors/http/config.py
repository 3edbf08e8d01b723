"""The settings of an `http` connection and how its credentials travel.

Credentials go in fixed headers (bearer, basic, API key), a query parameter (API key) or an
HMAC signature computed per request. Every secret is registered so that error messages mask
it, also in its query-string form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import yarl
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from seamflow import clock, redact
from seamflow.connectors.base import Connection, parse_config
from seamflow.connectors.http.oauth2 import OAuth2Auth
from seamflow.connectors.http.signing import Signing
from seamflow.connectors.http.token_endpoint import TokenEndpointAuth

__all__ = [
    "ApiKeyAuth",
    "Auth",
    "BasicAuth",
    "HmacAuth",
    "HttpConfig",
    "auth_parts",
    "sign",
    "validate_config",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class BasicAuth(BaseModel):
    """HTTP Basic credentials (`Authorization: Basic …`)."""

    model_config = _STRICT
    username: str
    password: SecretStr


class ApiKeyAuth(BaseModel):
    """A static API key, sent in a header (`X-API-Key` unless named) or a query parameter."""

    model_config = _STRICT
    value: SecretStr
    header: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_place(self) -> ApiKeyAuth:
        if self.header is not None and self.query is not None:
            raise ValueError("give header or query, not both")
        return self


class HmacAuth(BaseModel):
    """An HMAC-SHA256 signature of each request, hex in `header` after `prefix`.

    Without `timestamp_header` the signed bytes are the raw request body. With it, the
    Unix time in seconds is sent in that header and the signed bytes are
    `<timestamp>.<raw body>` (the timestamp, a full stop, then the body).
    """

    model_config = _STRICT
    secret: SecretStr
    header: str = "X-Signature"
    prefix: str = ""
    timestamp_header: str | None = None


class Auth(BaseModel):
    """How the connection authenticates: exactly one of the six kinds."""

    model_config = _STRICT
    bearer: SecretStr | None = None
    basic: BasicAuth | None = None
    api_key: ApiKeyAuth | None = None
    hmac: HmacAuth | None = None
    token_endpoint: TokenEndpointAuth | None = None
    """Sign in through a declared token call (DingTalk, WeCom, Feishu); see `http.token_endpoint`."""
    oauth2: OAuth2Auth | None = None
    """OAuth2 authorization code with PKCE, password or client credentials; see `http.oauth2`."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Auth:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of bearer, basic, api_key, hmac, token_endpoint, oauth2 (got {len(given)})"
            )
        return self


class HttpConfig(BaseModel):
    """The settings of an `http` connection in `connections.yaml`."""

    model_config = _STRICT
    base_url: str | None = None
    """Prefix of every step's `path`, e.g. `https://erp.example.com/api/v2`."""
    check_path: str | None = None
    """What `seamflow connections test` GETs: a path under `base_url` (or a full URL) that
    answers below 400 with valid credentials, e.g. `me`. Without it, `base_url` itself."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with every request; a step's `headers` override them."""
    auth: Auth | None = None
    sign: Signing | None = None
    """Sign each request's query parameters with the app secret (shop platforms); see `http.signing`."""
    verify_tls: bool = True
    """Check the server's certificate (turn off only for a self-signed test server)."""
    max_connections: int = Field(100, ge=1)
    """Most connections open to the target at once."""
    response_max_bytes: int = Field(10 * 1024 * 1024, ge=1)
    """A larger response body (after content decoding) is a Permanent error."""

    @field_validator("base_url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


def validate_config(connection: Connection) -> HttpConfig:
    """Return the connection's config as an `HttpConfig` (see `connectors.base.parse_config`)."""
    return parse_config(HttpConfig, connection)


def auth_parts(auth: Auth | None) -> tuple[dict[str, str], dict[str, str]]:
    """Return the fixed headers and query parameters that carry the credentials."""
    if auth is None:
        return {}, {}
    if auth.bearer is not None:
        token = auth.bearer.get_secret_value()
        _remember_secret(token)
        return {"Authorization": f"Bearer {token}"}, {}
    if auth.basic is not None:
        password = auth.basic.password.get_secret_value()
        pair = base64.b64encode(f"{auth.basic.username}:{password}".encode()).decode()
        _remember_secret(password)
        _remember_secret(pair)  # a server echoing the header must not reveal the pair either
        return {"Authorization": f"Basic {pair}"}, {}
    if auth.api_key is not None:
        key = auth.api_key.value.get_secret_value()
        _remember_secret(key)
        if auth.api_key.query is not None:
            return {}, {auth.api_key.query: key}
        return {auth.api_key.header or "X-API-Key": key}, {}
    if auth.token_endpoint is not None or auth.oauth2 is not None:  # tokens obtained and placed per call; the values
        return {}, {}  # the token call sends come from secrets, which the redactor knows since they were read
    assert auth.hmac is not None
    _remember_secret(auth.hmac.secret.get_secret_value())
    return {}, {}


def _remember_secret(value: str) -> None:
    """Mask `value`, and its form in a query string as sent, in error messages."""
    redact.register(value)
    redact.register(yarl.URL("http://x/").with_query({"k": value}).raw_query_string[2:])


def sign(body: bytes, auth: HmacAuth) -> dict[str, str]:
    """Return the HMAC signature (and timestamp) headers for a request with `body` (see `HmacAuth`)."""
    headers = {}
    message = body
    if auth.timestamp_header is not None:
        stamp = str(int(clock.now().timestamp()))
        headers[auth.timestamp_header] = stamp
        message = stamp.encode() + b"." + body
    key = auth.secret.get_secret_value().encode()
    headers[auth.header] = auth.prefix + hmac.new(key, message, hashlib.sha256).hexdigest()
    return headers
