"""The settings of an `email` connection: the SMTP server, how the link is secured, the login and the sender;
and, under `imap:`, the mailbox the `messages` feed reads."""

from __future__ import annotations

import base64
import ssl
from email.headerregistry import Address
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from seamflow import redact
from seamflow.connectors.base import Connection, parse_config
from seamflow.connectors.email.message import parse_address

__all__ = ["EmailConfig", "ImapConfig", "imap_tls_context", "remember_secrets", "tls_context", "validate_config"]

_DEFAULT_PORT = {"starttls": 587, "ssl": 465, "none": 25}
_DEFAULT_IMAP_PORT = {"starttls": 143, "ssl": 993, "none": 143}


class ImapConfig(BaseModel):
    """The `imap:` block of an `email` connection: the mailbox that the `messages` feed reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    host: str = Field(min_length=1)
    """The IMAP server, e.g. `imap.exmail.qq.com`."""
    port: int | None = Field(None, ge=1, le=65535)
    """By default 993 for `ssl`, 143 for `starttls` and `none`."""
    security: Literal["ssl", "starttls", "none"] = "ssl"
    """`ssl`: TLS from the first byte (port 993); `starttls`: upgrade a plain connection (port 143);
    `none`: no encryption, only for a local test server."""
    username: str | None = None
    """By default the connection's `username`."""
    password: SecretStr | None = None
    """By default the connection's `password`."""
    folder: str = Field("INBOX", min_length=1)
    """The folder a feed reads unless its `with:` names another; Chinese names (`发票`) work."""

    @property
    def imap_port(self) -> int:
        """The port to connect to: `port`, or the usual one for `security`."""
        return self.port or _DEFAULT_IMAP_PORT[self.security]


class EmailConfig(BaseModel):
    """The settings of an `email` connection in `connections.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    host: str | None = Field(None, min_length=1)
    """The SMTP server, e.g. `smtp.exmail.qq.com`; required unless the connection only receives (`imap:`)."""
    port: int | None = Field(None, ge=1, le=65535)
    """By default 587 for `starttls`, 465 for `ssl`, 25 for `none`."""
    security: Literal["starttls", "ssl", "none"] = "starttls"
    """`starttls`: upgrade a plain connection (port 587); `ssl`: TLS from the first byte (port 465);
    `none`: no encryption, only for a relay on a trusted network or a local test server."""
    username: str | None = None
    password: SecretStr | None = None
    sender: str | None = Field(None, alias="from")
    """`from:` in the connection: the From address, with a display name if wanted
    (`华东销售部 <sales@example.cn>`); its address is also the envelope sender. Required with `host`."""
    verify_tls: bool = True
    """Check the server's certificate (turn off only for a self-signed test server)."""
    ca_file: str | None = None
    """A PEM file of the CA certificates to trust instead of the system's (a private mail relay);
    also used for the IMAP server."""
    imap: ImapConfig | None = None
    """The mailbox to receive from (the `messages` feed); none: the connection only sends."""

    @field_validator("sender")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        if value is not None:
            parse_address(value)  # raises ValueError with the reason
        return value

    @model_validator(mode="after")
    def _login_complete(self) -> EmailConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        if self.host is None and self.imap is None:
            raise ValueError("give host and from (to send mail), imap (to receive it), or both")
        if (self.host is None) != (self.sender is None):
            raise ValueError("give both host and from to send mail, or neither")
        if self.imap is not None and (self.imap_username is None or self.imap_password is None):
            raise ValueError("imap needs a login: give imap.username and imap.password, or username and password")
        return self

    @property
    def can_send(self) -> bool:
        """True if the SMTP server and sender are configured."""
        return self.host is not None and self.sender is not None

    @property
    def from_address(self) -> Address:
        """The sender as a parsed address."""
        assert self.sender is not None, "from_address asked of a receive-only connection"
        return parse_address(self.sender)

    @property
    def imap_username(self) -> str | None:
        """The IMAP login: `imap.username`, else the connection's `username`."""
        return self.imap.username if self.imap and self.imap.username else self.username

    @property
    def imap_password(self) -> SecretStr | None:
        """The IMAP password: `imap.password`, else the connection's `password`."""
        return self.imap.password if self.imap and self.imap.password else self.password

    @property
    def smtp_port(self) -> int:
        """The port to connect to: `port`, or the usual one for `security`."""
        return self.port or _DEFAULT_PORT[self.security]


def validate_config(connection: Connection) -> EmailConfig:
    """Return the connection's config as an `EmailConfig` (see `connectors.base.parse_config`)."""
    return parse_config(EmailConfig, connection)


def remember_secrets(config: EmailConfig) -> None:
    """Mask the passwords, and their forms in AUTH PLAIN and AUTH LOGIN, in messages and logs."""
    logins = [(config.username, config.password), (config.imap_username, config.imap_password)]
    for username, secret in logins:
        if secret is None:
            continue
        password = secret.get_secret_value()
        redact.register(password)
        plain = f"\0{username}\0{password}".encode()
        redact.register(base64.b64encode(plain).decode())


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


def imap_tls_context(config: EmailConfig) -> ssl.SSLContext | None:
    """Return the TLS settings of the IMAP server (None without `imap` or with `security: none`).

    `verify_tls` and `ca_file` are the connection's. Blocking: call it through `asyncio.to_thread`.
    """
    if config.imap is None or config.imap.security == "none":
        return None
    context = ssl.create_default_context(cafile=config.ca_file)
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
