"""A received mail as an event body: decoded addresses, subject, date, bodies and attachments.

Mail from Chinese senders arrives in every encoding seen in practice: RFC 2047 words in
UTF-8, GBK or GB2312 (often holding GBK-only characters, so GB2312 and GBK are read as their
superset GB18030), raw 8-bit UTF-8 or GBK headers that no RFC allows, attachment names per
RFC 2231 or as RFC 2047 words inside quotes. Each is decoded to text; what cannot be decoded
is replaced (U+FFFD), never an error: one odd mail must not stop a feed.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from seamflow.ids import Json

__all__ = ["AttachmentPolicy", "decode_text", "received_body"]

_SUPERSET = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030", "gb_2312-80": "gb18030"}
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


@dataclass(frozen=True, slots=True)
class AttachmentPolicy:
    """Whether attachment contents go into the event, and up to which size."""

    is_included: bool
    max_bytes: int


def _charset(name: str | None) -> str:
    name = (name or "utf-8").strip().strip('"').lower()
    return _SUPERSET.get(name, name)


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset; if it is unknown or wrong, try UTF-8, then GB18030."""
    tried = [_charset(charset)] if charset else []
    for name in [*tried, "utf-8", "gb18030"]:
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", errors="replace")


def decode_text(raw: str) -> str:
    """Decode a header value: raw 8-bit bytes (kept as surrogates by the parser) and RFC 2047 words."""
    if any("\udc80" <= char <= "\udcff" for char in raw):
        raw = _decode_bytes(raw.encode("utf-8", errors="surrogateescape"), None)
    if "=?" not in raw:
        return " ".join(raw.split())
    if not _ENCODED_WORD.search(raw):
        return " ".join(raw.split())
    parts: list[str] = []
    for chunk, charset in decode_header(raw):
        parts.append(_decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
    return " ".join("".join(parts).split())


def _headers(message: Message, name: str) -> list[str]:
    """Every value of a header as it arrived, unfolded; 8-bit bytes stay surrogates for `decode_text`."""
    wanted = name.lower()
    return [re.sub(r"\r?\n(?=[ \t])", "", value) for key, value in message.raw_items() if key.lower() == wanted]


def _header(message: Message, name: str) -> str | None:
    values = _headers(message, name)
    return values[0] if values else None


def _addresses(message: Message, header: str) -> list[Json]:
    values = _headers(message, header)
    found: list[Json] = []
    for name, address in getaddresses(values):
        if address or name:
            found.append({"name": decode_text(name), "address": address})
    return found


def _date(message: Message, fallback: datetime | None) -> datetime | None:
    raw = _header(message, "Date")
    if raw is not None:
        try:
            parsed = parsedate_to_datetime(raw.strip())
        except (TypeError, ValueError, IndexError):
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return fallback


def received_body(
    raw: bytes, received_at: datetime | None, attachments: AttachmentPolicy
) -> tuple[Json, datetime | None]:
    """Return the event body of a raw mail and its date (the Date header, else when it arrived)."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    date = _date(message, received_at)
    found = _Parts(attachments)
    found.walk(message)
    subject = _header(message, "Subject")
    message_id = _header(message, "Message-ID")
    senders = _addresses(message, "From")
    body: dict[str, Json] = {
        "message_id": message_id.strip() if message_id is not None else None,
        "from": senders[0] if senders else None,
        "to": _addresses(message, "To"),
        "cc": _addresses(message, "Cc"),
        "reply_to": _addresses(message, "Reply-To"),
        "subject": decode_text(subject) if subject is not None else "",
        "date": date.isoformat() if date is not None else None,
        "received_at": received_at.isoformat() if received_at is not None else None,
        "text": found.text,
        "html": found.html,
        "attachments": found.attachments,
        "size": len(raw),
    }
    return body, date


class _Parts:
    """The first text and HTML bodies and every attachment of a mail, in order."""

    def __init__(self, policy: AttachmentPolicy) -> None:
        self.policy = policy
        self.text: str | None = None
        self.html: str | None = None
        self.attachments: list[Json] = []

    def walk(self, part: Message) -> None:
        if part.get_content_type() == "message/rfc822" or (
            not part.is_multipart() and self._is_attachment(part)
        ):  # a forwarded mail is one attachment, not more bodies
            self._attach(part)
            return
        if part.is_multipart():
            payload = part.get_payload()
            for child in payload if isinstance(payload, list) else []:
                if isinstance(child, Message):
                    self.walk(child)
            return
        kind = part.get_content_type()
        if kind == "text/plain" and self.text is None:
            self.text = self._content_text(part)
        elif kind == "text/html" and self.html is None:
            self.html = self._content_text(part)
        elif kind not in ("text/plain", "text/html"):
            self._attach(part)  # an inline image without a name: still a file of the mail

    @staticmethod
    def _is_attachment(part: Message) -> bool:
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        return disposition == "attachment" or part.get_filename() is not None

    @staticmethod
    def _content_text(part: Message) -> str:
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            return ""
        return _decode_bytes(data, part.get_content_charset()).replace("\r\n", "\n")

    def _attach(self, part: Message) -> None:
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            data = inner[0].as_bytes() if isinstance(inner, list) and inner and isinstance(inner[0], Message) else b""
        else:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
        name = part.get_filename()
        item: dict[str, Json] = {
            "name": decode_text(name) if name is not None else None,
            "content_type": part.get_content_type(),
            "size": len(data),
            "content_id": content_id.strip().strip("<>") if (content_id := _header(part, "Content-ID")) else None,
        }
        if self.policy.is_included:
            is_small = len(data) <= self.policy.max_bytes
            item["content"] = base64.b64encode(data).decode("ascii") if is_small else None
            item["is_truncated"] = not is_small
        self.attachments.append(item)
