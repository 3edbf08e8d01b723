"""An IMAP session of an `email` connection: log in, open a folder, and each failure in clear words.

Python's `imaplib` is used, in a worker thread: it is the IMAP client with the longest record
(literals, odd server replies, STARTTLS, MOVE through `uid`), and a feed's work is one short
session per poll, so a thread per poll costs nothing that matters. Every socket operation is
bounded by the connection's `timeout`. The session is opened, used and logged out within one
blocking function, run through `asyncio.to_thread` by its caller.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import imaplib
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from seamflow import errors
from seamflow.connectors.email.config import EmailConfig
from seamflow.connectors.guard import Outbound

__all__ = [
    "ImapSession",
    "Mailbox",
    "check_imap",
    "failure",
    "folder_name",
    "imap_session",
    "pin_imap",
    "select",
]

_CODE = re.compile(rb"\[([A-Z-]+)")


@dataclass(frozen=True, slots=True)
class ImapSession:
    """How to reach the IMAP server: the config, TLS settings, timeout and the `where` of errors."""

    config: EmailConfig
    tls: ssl.SSLContext | None
    timeout_s: float
    where: str
    is_check: bool = False
    """A check calls a refused connection permanent (fix the port); a poll calls it transient."""
    address: str | None = None
    """The server's address checked by the outbound guard (`pin_imap`): connect there, keep the host
    name for TLS. None: connect by name (only sessions built without the guard, never the connector's)."""

    @property
    def server(self) -> str:
        imap = self.config.imap
        assert imap is not None
        return f"{imap.host}:{imap.imap_port}"


@dataclass(slots=True)
class Mailbox:
    """A selected folder: its UIDVALIDITY and UIDNEXT (0 if the server does not say)."""

    client: imaplib.IMAP4
    folder: str
    uidvalidity: int
    uidnext: int
    exists: int
    capabilities: frozenset[str]


def folder_name(folder: str) -> str:
    """Return `folder` as IMAP names it: modified UTF-7 (RFC 3501 5.1.3) for `发票`, quoted."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            packed = base64.b64encode("".join(pending).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + packed.replace("/", ",") + "-")
            pending.clear()

    for char in folder:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    encoded = "".join(out)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextlib.contextmanager
def imap_session(session: ImapSession) -> Iterator[imaplib.IMAP4]:
    """Connect, secure the link, log in; log out at the end. Blocking.

    Raises:
        errors.Permanent: the name does not resolve, TLS or the login failed, STARTTLS is missing.
        errors.Transient: no answer in time, the connection was lost, or (outside a check) refused.
    """
    client = _login(session)
    try:
        yield client
    except (OSError, imaplib.IMAP4.error) as exc:
        raise failure(exc, session, doing="reading the mailbox") from None
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def select(client: imaplib.IMAP4, session: ImapSession, folder: str, *, readonly: bool) -> Mailbox:
    """Open `folder`; raise Permanent if it does not exist."""
    typ, data = client.select(folder_name(folder), readonly=readonly)
    if typ != "OK":
        raise errors.Permanent(
            f"{session.server}: the folder {errors.redact(folder)} cannot be opened ({_said(data)});"
            " expected an existing folder such as INBOX",
            where=session.where,
        )
    typ, caps = client.capability()
    names = frozenset(caps[0].decode().upper().split()) if typ == "OK" and isinstance(caps[0], bytes) else frozenset()
    return Mailbox(
        client,
        folder,
        uidvalidity=_number(client, "UIDVALIDITY"),
        uidnext=_number(client, "UIDNEXT"),
        exists=int(data[0] or 0) if isinstance(data[0], bytes) else 0,
        capabilities=names,
    )


def _number(client: imaplib.IMAP4, code: str) -> int:
    _, values = client.response(code)
    value = values[-1] if values else None
    return int(value) if isinstance(value, bytes) and value.isdigit() else 0


def _login(session: ImapSession) -> imaplib.IMAP4:
    config = session.config
    imap = config.imap
    assert imap is not None
    username, secret = config.imap_username, config.imap_password
    assert username is not None and secret is not None
    try:
        if imap.security == "ssl":
            client: imaplib.IMAP4 = _PinnedImapSsl(
                session.address, imap.host, imap.imap_port, ssl_context=session.tls, timeout=session.timeout_s
            )
        else:
            client = _PinnedImap(session.address, imap.host, imap.imap_port, timeout=session.timeout_s)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise failure(exc, session, doing="connecting") from None
    try:
        if imap.security == "starttls":
            if "STARTTLS" not in client.capabilities:
                raise errors.Permanent(
                    f"{session.server} does not offer STARTTLS;"
                    " expected security: ssl (port 993) or a server with STARTTLS",
                    where=session.where,
                )
            client.starttls(ssl_context=session.tls)
        password = secret.get_secret_value()
        if username.isascii() and password.isascii():
            client.login(username, password)
        else:  # LOGIN takes ASCII only; AUTHENTICATE PLAIN carries UTF-8
            client.authenticate("PLAIN", lambda _: f"\0{username}\0{password}".encode())
    except (OSError, imaplib.IMAP4.error) as exc:
        _shutdown(client)
        raise failure(exc, session, doing="logging in") from None
    except BaseException:
        _shutdown(client)
        raise
    return client


def _shutdown(client: imaplib.IMAP4) -> None:
    with contextlib.suppress(Exception):
        client.shutdown()


class _PinnedImap(imaplib.IMAP4):
    """imaplib's client, connecting to the address the outbound guard checked."""

    def __init__(self, address: str | None, host: str, port: int, *, timeout: float) -> None:
        self._address = address
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection((self._address or self.host, self.port), timeout)


class _PinnedImapSsl(imaplib.IMAP4_SSL):
    """imaplib's TLS client, connecting to the checked address and checking the certificate for the host."""

    def __init__(
        self, address: str | None, host: str, port: int, *, ssl_context: ssl.SSLContext | None, timeout: float
    ) -> None:
        self._address = address
        super().__init__(host, port, ssl_context=ssl_context, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = socket.create_connection((self._address or self.host, self.port), timeout)
        context: ssl.SSLContext = self.ssl_context  # set by IMAP4_SSL.__init__ before it connects
        return context.wrap_socket(sock, server_hostname=self.host)


async def pin_imap(session: ImapSession, outbound: Outbound) -> ImapSession:
    """`session` with the IMAP server's address resolved and checked by the outbound guard.

    Raises:
        connectors.OutboundRefused: the server's host resolves to an address the guard does not allow.
        errors.Permanent: the host name does not resolve.
    """
    imap = session.config.imap
    assert imap is not None
    try:
        addresses = await outbound.resolve_checked(imap.host, imap.imap_port, session.where)
    except OSError as exc:
        raise failure(exc, session, doing="connecting") from None
    return dataclasses.replace(session, address=str(addresses[0]))


def failure(exc: BaseException, session: ImapSession, *, doing: str) -> errors.ConnectorError:
    """Turn an imaplib or socket failure into Transient or Permanent, in words a person can act on."""
    server, where = session.server, session.where
    imap = session.config.imap
    assert imap is not None
    if isinstance(exc, TimeoutError):
        return errors.Transient(f"{server} did not answer within {session.timeout_s:g}s ({doing})", where=where)
    if isinstance(exc, socket.gaierror):
        return errors.Permanent(f"the host name {imap.host!r} does not resolve (DNS)", where=where)
    if isinstance(exc, ConnectionRefusedError):
        text = f"the connection to {server} was refused (is an IMAP server listening on that port?)"
        return errors.Permanent(text, where=where) if session.is_check else errors.Transient(text, where=where)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return errors.Permanent(
            f"the TLS certificate of {server} is not trusted ({_text(exc.verify_message or str(exc))});"
            " expected a certificate valid for the host, or set ca_file",
            where=where,
            code="connector.email.tls",
        )
    if isinstance(exc, ssl.SSLError):
        return errors.Permanent(
            f"the TLS handshake with {server} failed ({_text(str(exc))}); is `imap.security` right for port"
            f" {imap.imap_port}? (ssl: 993, starttls: 143)",
            where=where,
            code="connector.email.tls",
        )
    if isinstance(exc, imaplib.IMAP4.abort | OSError):
        return errors.Transient(f"{server}: the connection was lost while {doing} ({_text(str(exc))})", where=where)
    said = _said([exc.args[0] if exc.args else b""])
    if doing == "logging in":
        code = _CODE.search(exc.args[0]) if exc.args and isinstance(exc.args[0], bytes) else None
        if code is not None and code.group(1) in (b"UNAVAILABLE", b"INUSE", b"LIMIT"):
            return errors.Transient(f"{server} cannot log in now: {said}", where=where)
        return errors.Permanent(
            f"credentials refused: {server} refused the login of"
            f" {errors.redact(session.config.imap_username)} ({said})",
            where=where,
        )
    return errors.Permanent(f"{server} refused {doing}: {said}", where=where)


def _said(data: list[bytes | None] | list[object]) -> str:
    """The server's words from an imaplib reply, secrets masked, at most 200 characters."""
    parts = [item.decode(errors="replace") if isinstance(item, bytes) else str(item) for item in data if item]
    return _text(" ".join(parts)) or "no reason given"


def _text(text: str) -> str:
    return errors.redact_text(" ".join(text.split()), limit=200)


def check_imap(session: ImapSession) -> str:
    """Log in and open the configured folder as a poll would; return a one-line answer. Blocking.

    Raises:
        errors.Permanent: DNS, refused, TLS or login failure, or the folder does not exist.
        errors.Transient: no answer in time.
    """
    imap = session.config.imap
    assert imap is not None
    with imap_session(session) as client:
        box = select(client, session, imap.folder, readonly=True)
    security = {"starttls": "STARTTLS", "ssl": "TLS", "none": "no encryption"}[imap.security]
    return (
        f"IMAP: connected to {session.server} with {security}, logged in as {session.config.imap_username},"
        f" folder {imap.folder} has {box.exists} mails"
    )
