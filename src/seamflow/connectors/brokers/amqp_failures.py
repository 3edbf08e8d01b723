"""RabbitMQ's refusals and failures put in words for the `amqp` connector: what failed, where, and
whether a retry can help (Transient) or a person must change something (Permanent)."""

from __future__ import annotations

import socket
import ssl
from datetime import timedelta

import aio_pika
import aiormq

from seamflow import errors
from seamflow.connectors.brokers.settings import Endpoint

__all__ = ["PUBLISH_FAILURES", "connect_refusal", "publish_failure", "reason"]

PUBLISH_FAILURES = (
    TimeoutError,
    aio_pika.exceptions.PublishError,
    aio_pika.exceptions.DeliveryError,
    aiormq.exceptions.AMQPError,
    aio_pika.exceptions.AMQPException,
    ConnectionError,
)
"""What publishing may raise that `publish_failure` puts in words."""


def publish_failure(
    exc: BaseException, target: str, vhost: str, timeout: timedelta, where: str
) -> errors.ConnectorError:
    """Put a failed publish to `target` in words: what retrying may fix is Transient."""
    if isinstance(exc, TimeoutError):
        return errors.Transient(
            f"the broker did not confirm the message within {timeout.total_seconds():g} s", where=where
        )
    if isinstance(exc, aio_pika.exceptions.PublishError):
        return errors.Permanent(
            f"no queue receives messages sent to {target} (the broker returned it);"
            " expected a queue bound to it, or mandatory: false",
            where=where,
        )
    if isinstance(exc, aio_pika.exceptions.DeliveryError):
        return errors.Transient(
            f"the broker refused the message sent to {target} (basic.nack: a full queue or a broker error)",
            where=where,
        )
    if isinstance(exc, aiormq.exceptions.ChannelNotFoundEntity):
        return errors.Permanent(
            f"{target} does not exist in virtual host {vhost!r}; expected a declared exchange", where=where
        )
    if isinstance(exc, aiormq.exceptions.ChannelAccessRefused):
        return errors.Permanent(
            f"user may not publish to {target} in virtual host {vhost!r} (ACCESS_REFUSED)", where=where
        )
    return errors.Transient(f"publishing failed: {reason(exc)}", where=where)


def connect_refusal(
    exc: Exception, endpoint: Endpoint, vhost: str, where: str, *, is_check: bool
) -> errors.ConnectorError:
    """Put a failed connect in words: refusals of the login, vhost, certificate or DNS are Permanent;
    a refused connection is Permanent for `check` and Transient for work."""
    server, user = endpoint.address, endpoint.username or "guest"
    if isinstance(exc, aiormq.exceptions.ProbableAuthenticationError):
        return errors.Permanent(
            f"credentials refused: the broker at {server} refused the login of user {errors.redact(user)}"
            " (ACCESS_REFUSED); expected a valid username and password",
            where=where,
        )
    if isinstance(exc, aiormq.exceptions.InvalidFrameError) and "Connection.Close" in str(exc):
        return errors.Permanent(
            f"the broker at {server} refused to open virtual host {vhost!r}: it does not exist or user"
            f" {errors.redact(user)} has no permission on it",
            where=where,
        )
    cause = _os_error(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return errors.Permanent(
            f"the TLS certificate of {server} is not trusted ({cause.verify_message or cause});"
            " expected a certificate valid for the host, or set ca_file",
            where=where,
        )
    if isinstance(cause, socket.gaierror) or _errno(exc) in (-2, -3, -5):
        return errors.Permanent(f"the host name {endpoint.host!r} does not resolve (DNS)", where=where)
    if isinstance(cause, ConnectionRefusedError) or _errno(exc) == 111:
        text = f"the connection to {server} was refused (is RabbitMQ listening on that port?)"
        return errors.Permanent(text, where=where) if is_check else errors.Transient(text, where=where)
    return errors.Transient(f"connecting to {server} failed: {reason(exc)}", where=where)


def _os_error(exc: BaseException) -> OSError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and not isinstance(seen, aiormq.exceptions.AMQPError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _errno(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def reason(exc: BaseException) -> str:
    """An exception in a short line for a message, with secret values redacted."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return errors.redact_text(f"{type(exc).__name__}: {text}", 200)
