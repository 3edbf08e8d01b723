"""How an `email` connection proves it works (`seamflow connections test`): connect, EHLO, TLS, login, QUIT.

Each way it can fail gets its own words: the name does not resolve, the connection is
refused, the TLS certificate is not trusted, the login is refused.
"""

from __future__ import annotations

import socket
import ssl

import aiosmtplib

from seamflow import errors
from seamflow.connectors.email.config import EmailConfig
from seamflow.connectors.email.smtp_client import open_smtp
from seamflow.connectors.guard import Outbound

__all__ = ["check_smtp"]


async def check_smtp(
    config: EmailConfig, outbound: Outbound, tls: ssl.SSLContext | None, timeout_s: float, where: str
) -> str:
    """Open an SMTP session as a send would, log in if configured, and quit; return a one-line answer.

    Raises:
        errors.Permanent: DNS, refused, TLS or login failure, or a server that lacks what the
            connection needs (STARTTLS, AUTH).
        errors.Transient: no answer in time, or a 4xx greeting.
    """
    server = f"{config.host}:{config.smtp_port}"
    try:
        client = await open_smtp(config, outbound, tls, timeout_s, where)
        async with client:
            greeting = " ".join(client.last_ehlo_response.message.split()[:1]) if client.last_ehlo_response else ""
    except aiosmtplib.SMTPException as exc:
        raise _failure(exc, config, server, timeout_s, where) from None
    security = {"starttls": "STARTTLS", "ssl": "TLS", "none": "no encryption"}[config.security]
    login = f", logged in as {config.username}" if config.username else ", no login configured"
    name = f" ({greeting})" if greeting else ""
    return f"connected to {server}{name} with {security}{login}"


def _failure(
    exc: aiosmtplib.SMTPException, config: EmailConfig, server: str, timeout_s: float, where: str
) -> errors.ConnectorError:
    cause = _root_cause(exc)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return errors.Transient(f"{server} did not answer within {timeout_s:g}s", where=where)
    if isinstance(cause, socket.gaierror):
        return errors.Permanent(f"the host name {config.host!r} does not resolve (DNS)", where=where)
    if isinstance(cause, ConnectionRefusedError):
        return errors.Permanent(
            f"the connection to {server} was refused (is an SMTP server listening on that port?)", where=where
        )
    if isinstance(cause, ssl.SSLCertVerificationError):
        return errors.Permanent(
            f"the TLS certificate of {server} is not trusted ({_text(cause.verify_message or str(cause))});"
            " expected a certificate valid for the host, or set ca_file",
            where=where,
        )
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return errors.Permanent(
            f"credentials refused: {server} refused the login of {errors.redact(config.username)}"
            f" ({exc.code} {_text(exc.message)})",
            where=where,
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{server} answered {exc.code} {_text(exc.message)}"
        return errors.Transient(text, where=where) if exc.code < 500 else errors.Permanent(text, where=where)
    if isinstance(cause, ssl.SSLError):
        return errors.Permanent(f"the TLS handshake with {server} failed ({_text(str(cause))})", where=where)
    return errors.Permanent(f"{server}: {_text(str(exc))}", where=where)


def _root_cause(exc: BaseException) -> BaseException | None:
    seen: BaseException | None = exc.__cause__ or exc.__context__
    while seen is not None:
        if isinstance(seen, OSError):  # gaierror, ConnectionRefusedError and SSLError are OSErrors
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _text(text: str) -> str:
    return errors.redact_text(" ".join(text.split()), limit=200)
