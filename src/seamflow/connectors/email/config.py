"""The settings of an `email` connection: the SMTP server, how the link is secured, the login and the sender."""

from __future__ import annotations

import base64
import ssl
from email.headerregistry import Address
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from seamflow import errors
from seamflow.connectors.base import Connection, parse_config
from seamflow.connectors.email.message import parse_address

__all__ = ["EmailConfig", "remember_secrets", "tls_context", "validate_config"]

_DEFAULT_PORT = {"starttls": 587, "ssl": 465, "none": 25}


class EmailConfig(BaseModel):
    """The settings of an `email` connection in `connections.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    host: str = Field(min_length=1)
    """The SMTP server, e.g. `smtp.exmail.qq.com`."""
    port: int | None = Field(None, ge=1, le=65535)
    """By default 587 for `starttls`, 465 for `ssl`, 25 for `none`."""
    security: Literal["starttls", "ssl", "none"] = "starttls"
    """`starttls`: upgrade a plain connection (port 587); `ssl`: TLS from the first byte (port 465);
    `none`: no encryption, only for a relay on a trusted network or a local test server."""
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(alias="from")
    """`from:` in the connection: the From address, with a display name if wanted
    (`华东销售部 <sales@example.cn>`); its address is also the envelope sender."""
    verify_tls: bool = True
    """Check the server's certificate (turn off only for a self-signed test server)."""
    ca_file: str | None = None
    """A PEM file of the CA certificates to trust instead of the system's (a private mail relay)."""

    @field_validator("sender")
    @classmethod
    def _an_address(cls, value: str) -> str:
        parse_address(value)  # raises ValueError with the reason
        return value

    @model_validator(mode="after")
    def _login_complete(self) -> EmailConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        return self

    @property
    def from_address(self) -> Address:
        """The sender as a parsed address."""
        return parse_address(self.sender)

    @property
    def smtp_port(self) -> int:
        """The port to connect to: `port`, or the usual one for `security`."""
        return self.port or _DEFAULT_PORT[self.security]


def validate_config(connection: Connection) -> EmailConfig:
    """Return the connection's config as an `EmailConfig` (see `connectors.base.parse_config`)."""
    return parse_config(EmailConfig, connection)


def remember_secrets(config: EmailConfig) -> None:
    """Mask the password, and its forms in AUTH PLAIN and AUTH LOGIN, in messages and logs."""
    if config.password is None:
        return
    password = config.password.get_secret_value()
    errors.register_secret(password)
    errors.register_secret(base64.b64encode(password.encode()).decode())
    plain = f"\0{config.username}\0{password}".encode()
    errors.register_secret(base64.b64encode(plain).decode())


def tls_context(config: EmailConfig) -> ssl.SSLContext | None:
    """Return the TLS settings for `starttls` and `ssl` (None for `none`).

    Blocking (it reads certificate files): call it through `asyncio.to_thread`.
    """
    if config.security == "none":
        return None
    context = ssl.create_default_context(cafile=config.ca_file)
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
