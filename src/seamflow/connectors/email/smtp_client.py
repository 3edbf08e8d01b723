"""An SMTP client for a connection, connected through the outbound guard to a checked address."""

from __future__ import annotations

import ssl

import aiosmtplib

from seamflow.connectors.email.config import EmailConfig
from seamflow.connectors.guard import Outbound, connect_checked

__all__ = ["open_smtp"]


async def open_smtp(
    config: EmailConfig, outbound: Outbound, tls: ssl.SSLContext | None, timeout_s: float, where: str
) -> aiosmtplib.SMTP:
    """An `aiosmtplib.SMTP` on a socket already connected to a checked address of `config.host`.

    The host name stays the client's `hostname`, so TLS checks the certificate against it.

    Raises:
        connectors.OutboundRefused: the host resolves to an address the guard does not allow.
        aiosmtplib.SMTPConnectTimeoutError, aiosmtplib.SMTPConnectError: as aiosmtplib raises them
            when it connects itself (no answer in time; refused or not resolved).
    """
    assert config.host is not None  # callers send or check only a connection that `can_send`
    try:
        sock = await connect_checked(outbound, config.host, config.smtp_port, timeout_s, where)
    except TimeoutError:
        raise aiosmtplib.SMTPConnectTimeoutError(
            f"Timed out connecting to {config.host} on port {config.smtp_port}"
        ) from None
    except OSError as exc:
        raise aiosmtplib.SMTPConnectError(
            f"Error connecting to {config.host} on port {config.smtp_port}: {exc}"
        ) from exc
    password = config.password.get_secret_value() if config.password is not None else None
    return aiosmtplib.SMTP(
        hostname=config.host,
        sock=sock,
        username=config.username,
        password=password,
        timeout=timeout_s,  # each command and reply
        use_tls=config.security == "ssl",
        start_tls=config.security == "starttls",
        validate_certs=config.verify_tls,
        tls_context=tls,
    )
