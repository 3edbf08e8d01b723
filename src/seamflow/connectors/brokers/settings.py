"""What the three broker connections share: where the broker is, how to log in, TLS, and step inputs.

A connection names its broker by `url` (with the password in it) or by `host`/`port`/
`username`/`password`; either way the password is a SecretStr, registered with
`redact.register` in every form it takes on the wire, and no message built here
quotes it.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, TypeVar
from urllib.parse import quote, quote_plus, unquote, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError, model_validator

from seamflow import errors, redact
from seamflow.connectors.base import Connection

__all__ = [
    "STRICT",
    "BrokerConfig",
    "Duration",
    "Endpoint",
    "FeedInput",
    "invalid_config",
    "resolve_endpoint",
    "validated",
]

STRICT = ConfigDict(extra="forbid", frozen=True)
M = TypeVar("M", bound=BaseModel)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: object) -> object:
    """`50ms`, `30s`, `5m`, `2h`, `7d` as in flow files; anything else is left to Pydantic (ISO 8601, seconds)."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(seconds=float(match[1]) * _UNIT_S[match[2]])
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
"""A duration written `50ms`, `30s`, `5m`, `2h` or `7d` (or ISO 8601, or a number of seconds)."""


class BrokerConfig(BaseModel):
    """Settings every broker connection has in `connections.yaml`; each broker adds its own."""

    model_config = STRICT
    url: SecretStr | None = None
    """`amqp://user:password@host:5672/vhost`, `mqtt://…`, `redis://…`; `amqps`, `mqtts`, `rediss` mean TLS."""
    host: str | None = None
    """The broker's host name, when no `url` is given (default 127.0.0.1)."""
    port: int | None = Field(None, ge=1, le=65535)
    """By default the broker's standard port (its TLS port when `tls` is on)."""
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    """Encrypt the connection; also switched on by an `amqps`/`mqtts`/`rediss` URL."""
    verify_tls: bool = True
    """Check the broker's certificate and host name (switch off only for a test broker)."""
    ca_file: str | None = None
    """A PEM file of the authorities to trust, instead of the system's."""

    @model_validator(mode="after")
    def _url_or_parts(self) -> BrokerConfig:
        if self.url is not None and (self.host is not None or self.username is not None or self.password is not None):
            raise ValueError("give either url or host/username/password, not both")
        return self


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the broker is and how to log in, resolved from `url` or the separate fields."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: ssl.SSLContext | None
    path: str
    """The URL's path without its leading slash: the AMQP virtual host or the Redis database."""

    @property
    def address(self) -> str:
        """`host:port`, for messages (never with credentials)."""
        return f"{self.host}:{self.port}"


def resolve_endpoint(
    config: BrokerConfig, connection: Connection, schemes: tuple[str, str], ports: tuple[int, int]
) -> Endpoint:
    """Turn `url` or host/port/credentials into an Endpoint; register the password in every wire form.

    Args:
        schemes: the plain and the TLS URL scheme (`amqp`, `amqps`).
        ports: the plain and the TLS default port.

    Raises:
        errors.InvalidInput: the URL is not of the broker's kind; never quotes the URL.
    """
    host, port, username, password, path, is_tls = config.host, config.port, config.username, None, "", config.tls
    if config.password is not None:
        password = config.password.get_secret_value()
    if config.url is not None:
        raw = config.url.get_secret_value()
        redact.register(raw)
        try:
            parts = urlsplit(raw)
            url_port = parts.port
        except ValueError:
            raise invalid_config(
                connection, f"url is not a URL; expected {schemes[0]}://user:password@host:port"
            ) from None
        if parts.scheme not in schemes:
            raise invalid_config(
                connection, f"url has the scheme {parts.scheme!r}; expected {schemes[0]} or {schemes[1]}"
            )
        host, port = parts.hostname, url_port
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        path = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
        is_tls = is_tls or parts.scheme == schemes[1]
    if password:
        for form in (password, quote(password, safe=""), quote_plus(password)):
            redact.register(form)
    context = _tls_context(config, connection) if is_tls else None
    return Endpoint(
        host=host or "127.0.0.1",
        port=port or ports[1 if is_tls else 0],
        username=username or None,
        password=password,
        tls=context,
        path=path,
    )


def _tls_context(config: BrokerConfig, connection: Connection) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=config.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise invalid_config(
            connection, f"ca_file cannot be read ({type(exc).__name__}: {exc.strerror or exc})"
        ) from None
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class FeedInput(BaseModel):
    """Settings every consume feed has (its trigger's `with:`)."""

    model_config = STRICT
    batch: int = Field(100, ge=1, le=10_000)
    """At most this many messages per batch."""
    linger: Duration = Field(timedelta(milliseconds=50), ge=timedelta(0), le=timedelta(seconds=10))
    """After the first message of a batch, wait this long for more before handing the batch over."""


def validated(model: type[M], params: object, where: str, what: str = "with") -> M:
    """Validate a step's or trigger's `with` inputs.

    Raises:
        errors.Permanent: naming every bad field and what is wrong, never a value.
    """
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{what}.{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else f"{what}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise errors.Permanent(f"invalid input: {problems}", where=where) from None


def invalid_config(connection: Connection, problem: str) -> errors.InvalidInput:
    """The error for a connection whose settings are wrong: names the connection, never a secret."""
    return errors.InvalidInput(
        f"connection {connection.name!r} has an invalid {connection.connector} config: {problem}",
        code="connection.invalid",
    )
