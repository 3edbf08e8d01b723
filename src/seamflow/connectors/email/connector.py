"""The `email` connector: sends a mail from a step, such as `mailer.send`, over SMTP, and feeds
flows with the mails of an IMAP folder (the `messages` poll feed).

Each call opens its own SMTP session (connect, STARTTLS or TLS, login, send, quit), and each
poll its own IMAP session: mail servers drop idle sessions within minutes, and a session per
mail or poll never meets a stale one.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import ClassVar

import aiosmtplib
from pydantic import BaseModel, ValidationError

from seamflow import clock, errors, redact
from seamflow.connectors.base import Action, Batch, Connection, Feed, field_problems
from seamflow.connectors.email.check import check_smtp
from seamflow.connectors.email.config import (
    EmailConfig,
    imap_tls_context,
    remember_secrets,
    tls_context,
    validate_config,
)
from seamflow.connectors.email.imap import ImapSession, check_imap, pin_imap
from seamflow.connectors.email.message import (
    ACTIONS,
    BUILD_POLICY,
    SendInput,
    build_message,
    message_id,
    recipients_of,
)
from seamflow.connectors.email.messages_feed import (
    FEEDS,
    MessagesFeedInput,
    MessagesPoll,
    acknowledge,
    poll_messages,
)
from seamflow.connectors.email.smtp_client import open_smtp
from seamflow.connectors.guard import Outbound
from seamflow.ids import Json

__all__ = ["EmailConnector"]

_REPLY_SHOWN = 300
"""The most characters of a server's reply shown in an error message."""


class EmailConnector:
    """Sends mail over SMTP (action `send`) and reads it over IMAP (poll feed `messages`).

    SMTP has no idempotency key. The mail's Message-ID is derived from the step's key
    (`<sha256(key)[:32].seamflow@sender-domain>`), so a retried send carries the same
    Message-ID and receiving servers and mailboxes that deduplicate by it keep one copy.
    A call returns `{"message_id": str, "accepted": [address], "refused": {address: reply},
    "reply": str}`; `refused` lists recipients the server rejected while accepting others.
    """

    kind: ClassVar[str] = "email"
    Config: ClassVar[type[BaseModel]] = EmailConfig
    actions: ClassVar[Mapping[str, Action]] = ACTIONS
    feeds: ClassVar[Mapping[str, Feed]] = FEEDS

    def __init__(self) -> None:
        self._config: EmailConfig | None = None
        self._tls: ssl.SSLContext | None = None
        self._imap_tls: ssl.SSLContext | None = None
        self._name = "email"
        self._timeout_s = 0.0
        self._outbound = Outbound()

    async def open(self, connection: Connection) -> None:
        """Validate the connection's config, remember its password and prepare its TLS settings.

        Raises:
            errors.InvalidInput: the config is wrong; the message names the connection and field.
        """
        config = validate_config(connection)
        remember_secrets(config)
        try:
            self._tls = await asyncio.to_thread(tls_context, config)
            self._imap_tls = await asyncio.to_thread(imap_tls_context, config)
        except (OSError, ssl.SSLError) as exc:
            raise errors.InvalidInput(
                f"connection {connection.name!r}: ca_file could not be read: {exc.strerror or exc}",
                code="connection.invalid",
            ) from None
        self._config = config
        self._name = connection.name
        self._timeout_s = connection.timeout.total_seconds()
        self._outbound = connection.outbound

    async def close(self) -> None:
        """Nothing to release: every call opens and closes its own SMTP session."""
        self._config = None

    async def check(self) -> str:
        """Connect, secure the link and log in as a send (SMTP) and a poll (IMAP) would; say what worked.

        Raises:
            errors.Permanent: the host name does not resolve, the connection is refused, the TLS
                certificate is not trusted, the login is refused, or the IMAP folder is missing.
            errors.Transient: a server did not answer in time, or answered 4xx.
        """
        where = f"{self._name}.check"
        config = self._config
        if config is None:
            raise errors.SeamflowError(f"{where}: connection not open", code="connector.closed")
        answers: list[str] = []
        if config.can_send:
            answers.append(await check_smtp(config, self._outbound, self._tls, self._timeout_s, where))
        if config.imap is not None:
            session = ImapSession(config, self._imap_tls, self._timeout_s, where, is_check=True)
            session = await pin_imap(session, self._outbound)
            answers.append(await asyncio.to_thread(check_imap, session))
        return "; ".join(answers)

    async def poll(self, feed: str, params: Json, cursor: Json, *, limit: int) -> Batch:
        """Return the mails that arrived in the folder after `cursor`, oldest first (feed `messages`).

        Raises:
            errors.Permanent: bad settings, no `imap:` in the connection, a refused login, a
                missing folder or an untrusted certificate.
            errors.Transient: the server could not be reached or did not answer in time.
        """
        where = f"{self._name}.{feed}"
        config = self._config
        if config is None:
            raise errors.SeamflowError(f"{where}: connection not open", code="connector.closed")
        if feed not in FEEDS:
            raise errors.Permanent(
                f"no poll feed {errors.redact(feed)}; expected one of {', '.join(FEEDS)}", where=where
            )
        if config.imap is None:
            raise errors.Permanent(
                f"connection {self._name!r} has no imap settings; expected an `imap:` block with host and folder",
                where=where,
            )
        try:
            inputs = MessagesFeedInput.model_validate(params)
        except ValidationError as exc:
            problems = "; ".join(map(str, field_problems(exc, "with")))
            raise errors.Permanent(f"invalid feed settings: {problems}", where=where) from None
        session = await pin_imap(ImapSession(config, self._imap_tls, self._timeout_s, where), self._outbound)
        folder = inputs.folder or config.imap.folder
        polled = await asyncio.to_thread(poll_messages, MessagesPoll(session, inputs, folder, cursor, max(limit, 1)))
        batch = Batch(polled.items, cursor=polled.cursor, more=polled.more)
        acked = polled.acked
        if acked is not None:

            async def ack() -> None:
                await asyncio.to_thread(acknowledge, session, inputs, folder, acked)

            batch.ack = ack
        return batch

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Send one mail and return its Message-ID and the recipients accepted and refused.

        Args:
            action: `send`.
            params: the step's `with` inputs (see `SendInput`).
            idempotency_key: becomes the mail's Message-ID (SMTP itself cannot deduplicate).

        Raises:
            errors.Transient: connection refused or lost, a timeout, or a 4xx reply (421, 450, 451, …).
            errors.Permanent: bad inputs, a TLS or login failure, or a 5xx reply (550, 535, 554, …),
                with the server's reply.
        """
        where = f"{self._name}.{action}"
        spec = ACTIONS.get(action)
        if spec is None:
            raise errors.Permanent(
                f"unknown action {errors.redact(action)}; expected one of {', '.join(ACTIONS)}", where=where
            )
        try:
            inputs = SendInput.model_validate(params)
        except ValidationError as exc:
            problems = "; ".join(map(str, field_problems(exc, "with")))
            raise errors.Permanent(f"invalid input: {problems}", where=where) from None
        config = self._config
        if config is None:
            raise errors.SeamflowError(f"{where}: connection not open", code="connector.closed")
        if not config.can_send:
            raise errors.Permanent(
                f"connection {self._name!r} only receives mail; expected host and from to send", where=where
            )
        sender = config.from_address
        msgid = message_id(idempotency_key, sender)
        message = build_message(inputs, sender, msgid, clock.now())
        recipients = recipients_of(inputs)
        addresses = [sender.addr_spec, *recipients]
        eai = not all(address.isascii() for address in addresses)  # needs SMTPUTF8 (RFC 6531)
        data = message.as_bytes(policy=BUILD_POLICY.clone(utf8=True) if eai else BUILD_POLICY)
        try:
            refused, reply = await self._send(config, sender.addr_spec, recipients, data, eai)
        except aiosmtplib.SMTPException as exc:
            raise _classified(exc, config, self._timeout_s, where) from None
        refused_json: dict[str, Json] = dict(refused)
        return {
            "message_id": msgid,
            "accepted": [address for address in recipients if address not in refused],
            "refused": refused_json,
            "reply": reply,
        }

    async def _send(
        self, config: EmailConfig, sender: str, recipients: list[str], data: bytes, eai: bool
    ) -> tuple[dict[str, str], str]:
        client = await open_smtp(config, self._outbound, self._tls, self._timeout_s, self._name)
        async with client:
            errors_by_rcpt, reply = await client.sendmail(
                sender, recipients, data, mail_options=["SMTPUTF8"] if eai else None
            )
        refused = {rcpt: f"{answer.code} {answer.message}" for rcpt, answer in errors_by_rcpt.items()}
        return refused, reply


def _classified(
    exc: aiosmtplib.SMTPException, config: EmailConfig, timeout_s: float, where: str
) -> errors.ConnectorError:
    """Turn an SMTP failure into Transient (worth retrying) or Permanent, with the server's reply."""
    server = f"{config.host}:{config.smtp_port}"
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return errors.Transient(f"{server} did not answer within {timeout_s:g}s", where=where)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        replies = "; ".join(f"{r.recipient}: {_reply(r.code, r.message)}" for r in exc.recipients)
        text = f"{server} refused every recipient: {replies}"
        if any(400 <= r.code < 500 for r in exc.recipients):
            return errors.Transient(text, where=where)
        return errors.Permanent(text, where=where, code="connector.email.rejected")
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 400:
        what = _doing(exc, config)
        text = f"{server} {what}: {_reply(exc.code, exc.message)}"
        if exc.code < 500:
            return errors.Transient(text, where=where)
        return errors.Permanent(text, where=where, code="connector.email.rejected")
    if _is_certificate_failure(exc):
        return errors.Permanent(
            f"{server}: the TLS certificate was not accepted ({_cause_text(exc)}); "
            "expected a certificate valid for the host, or set ca_file",
            where=where,
            code="connector.email.tls",
        )
    if isinstance(exc, aiosmtplib.SMTPNotSupported) or type(exc) is aiosmtplib.SMTPException:
        # The server lacks what the connection needs (STARTTLS, AUTH, SMTPUTF8): retrying will not help.
        return errors.Permanent(f"{server}: {_shown(exc.message)}", where=where)
    # Refused or lost connection, a failed TLS handshake, a garbled reply: try again later.
    return errors.Transient(f"{server}: {_shown(str(exc))}", where=where)


def _doing(exc: aiosmtplib.SMTPResponseException, config: EmailConfig) -> str:
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return f"refused the login of {errors.redact(config.username)}"
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return f"refused the sender {errors.redact(exc.sender)}"
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return "refused the message"
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return "refused the connection"
    return "answered"


def _reply(code: int, message: str) -> str:
    return f"{code} {_shown(message)}"


def _shown(text: str) -> str:
    """The server's own words, secrets masked, cut to `_REPLY_SHOWN` characters."""
    masked = redact.mask_text(" ".join(text.split()))
    return masked if len(masked) <= _REPLY_SHOWN else masked[: _REPLY_SHOWN - 1] + "…"


def _is_certificate_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _cause_text(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return _shown(seen.verify_message or str(seen))
        seen = seen.__cause__ or seen.__context__
    return _shown(str(exc))
