"""The `send` action's inputs (a step's `with:`) and the MIME message they become.

Headers are encoded for any server: a Chinese subject or display name per RFC 2047, a
Chinese attachment name per RFC 2231, bodies as 7-bit, quoted-printable or base64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import mimetypes
import re
from datetime import datetime
from email import policy
from email.errors import HeaderParseError, NonASCIILocalPartDefect
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from seamflow.connectors.base import Action

__all__ = ["ACTIONS", "Attachment", "SendInput", "build_message", "message_id", "parse_address", "recipients_of"]

BUILD_POLICY = policy.SMTP.clone(cte_type="7bit")
"""Bodies are encoded so that the message is 7-bit clean: no server needs 8BITMIME."""

_EAI_LOCAL = re.compile(r"[^\s\x00-\x1f\x7f()<>\[\]:;@\\,\"]+")
_HEADER_NAME = re.compile(r"[!-9;-~]+")
_RESERVED = frozenset(
    name.lower()
    for name in (
        "From", "To", "Cc", "Bcc", "Reply-To", "Subject", "Message-ID", "Date", "MIME-Version",
        "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
    )
)  # fmt: skip


def parse_address(value: str) -> Address:
    """Return one mailbox, `sales@example.cn` or `华东销售部 <sales@example.cn>`.

    Raises:
        ValueError: not exactly one valid address (the reason, not the value, is given).
    """
    if "\r" in value or "\n" in value:
        raise ValueError("an address may not contain a line break")
    pairs = getaddresses([value])
    if len(pairs) != 1:
        raise ValueError("give one address per list item")
    name, spec = pairs[0]
    local, at, domain = spec.rpartition("@")
    if not at or not local or "." not in domain.strip("."):
        raise ValueError("expected an address such as 名字 <name@example.com>")
    try:
        return Address(display_name=name, addr_spec=spec)
    except NonASCIILocalPartDefect:
        if _EAI_LOCAL.fullmatch(local):  # an internationalized address (RFC 6531), e.g. 张三@例子.中国
            return Address(display_name=name, username=local, domain=domain)
        raise ValueError("expected an address such as 名字 <name@example.com>") from None
    except (ValueError, IndexError, HeaderParseError):
        raise ValueError("expected an address such as 名字 <name@example.com>") from None


def _no_line_break(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("may not contain a line break")
    return value


class Attachment(BaseModel):
    """A file attached to the mail; `name` may be Chinese (`对账单-2026年11月.csv`)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    content: str
    """The file's content: text (sent as UTF-8), or base64 if `encoding` says so."""
    encoding: Literal["text", "base64"] = "text"
    content_type: str | None = None
    """E.g. `text/csv`, `application/pdf`; by default guessed from `name`."""

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if any(char in value for char in "/\\\r\n\0"):
            raise ValueError("a file name may not contain /, \\ or control characters")
        return value

    @field_validator("content_type")
    @classmethod
    def _mime_type(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[\w.+-]+/[\w.+-]+", value):
            raise ValueError("expected a media type such as text/csv or application/pdf")
        return value

    @model_validator(mode="after")
    def _decodable(self) -> Attachment:
        if self.encoding == "base64":
            try:
                base64.b64decode(self.content, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"attachment {self.name!r}: content is not valid base64") from None
        return self

    def media_type(self) -> tuple[str, str]:
        """Return the main type and subtype, guessed from the name when not given."""
        given = self.content_type or mimetypes.guess_type(self.name, strict=False)[0]
        if given is None:
            given = "text/plain" if self.encoding == "text" else "application/octet-stream"
        main, _, sub = given.lower().partition("/")
        return main, sub


class SendInput(BaseModel):
    """Inputs of `send`. Subject and bodies arrive already rendered by the step's templates."""

    model_config = ConfigDict(extra="forbid")
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    """Receive the mail but appear in no header."""
    subject: str
    text: str | None = None
    """The plain-text body."""
    html: str | None = None
    """The HTML body; with `text` too, mail clients show one of the two (multipart/alternative)."""
    attachments: list[Attachment] = Field(default_factory=list)
    reply_to: list[str] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra headers such as `X-Priority`; the addressing, subject, date, Message-ID and MIME headers are set here."""

    @field_validator("to", "cc", "bcc", "reply_to", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("to", "cc", "bcc", "reply_to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_address(item)
        return value

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return _no_line_break(value)

    @field_validator("headers")
    @classmethod
    def _extra_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"header name {name!r} is not printable ASCII without a colon")
            if name.lower() in _RESERVED:
                raise ValueError(f"header {name!r} is set by the connector; use the matching input")
            _no_line_break(text)
        return value

    @model_validator(mode="after")
    def _complete(self) -> SendInput:
        if not (self.to or self.cc or self.bcc):
            raise ValueError("give at least one recipient in to, cc or bcc")
        if self.text is None and self.html is None:
            raise ValueError("give text, html or both")
        return self


def message_id(idempotency_key: str, sender: Address) -> str:
    """Return the Message-ID of the mail sent under `idempotency_key`: the same on every retry."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    try:
        domain = sender.domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = "seamflow.invalid"
    return f"<{digest}.seamflow@{domain}>"


def build_message(inputs: SendInput, sender: Address, msgid: str, date: datetime) -> EmailMessage:
    """Return the mail of a `send` step, without a Bcc header."""
    message = EmailMessage(policy=BUILD_POLICY)
    message["Message-ID"] = msgid
    message["Date"] = format_datetime(date)
    message["From"] = sender
    for header, values in (("To", inputs.to), ("Cc", inputs.cc), ("Reply-To", inputs.reply_to)):
        if values:
            message[header] = [parse_address(value) for value in values]
    message["Subject"] = inputs.subject
    for name, value in inputs.headers.items():
        message[name] = value
    if inputs.text is not None:
        message.set_content(inputs.text)
        if inputs.html is not None:
            message.add_alternative(inputs.html, subtype="html")
    elif inputs.html is not None:
        message.set_content(inputs.html, subtype="html")
    for attachment in inputs.attachments:
        _attach(message, attachment)
    return message


def _attach(message: EmailMessage, attachment: Attachment) -> None:
    main, sub = attachment.media_type()
    name = attachment.name
    params = {"name": name}  # `name` on Content-Type too: some older clients read only that one
    if attachment.encoding == "text" and main == "text":
        message.add_attachment(attachment.content, subtype=sub, filename=name, params=params)
        return
    if attachment.encoding == "text":
        data = attachment.content.encode()
    else:
        data = base64.b64decode(attachment.content, validate=True)
    message.add_attachment(data, maintype=main, subtype=sub, filename=name, params=params)


def recipients_of(inputs: SendInput) -> list[str]:
    """Return the envelope recipients: every address of to, cc and bcc, once each, in order."""
    seen: dict[str, None] = {}
    for value in itertools.chain(inputs.to, inputs.cc, inputs.bcc):
        seen.setdefault(parse_address(value).addr_spec, None)
    return list(seen)


_NOTE = (
    "Sends one mail. SMTP cannot deduplicate: the Message-ID is derived from the step's "
    "idempotency key, so a retried send carries the same Message-ID and receivers can drop the copy."
)
ACTIONS: dict[str, Action] = {"send": Action("send", SendInput, _NOTE, is_idempotent=False)}
