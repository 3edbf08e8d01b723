"""The `email` connector against a real local SMTP server (aiosmtpd) on 127.0.0.1 (nothing mocked)."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import logging
import re
import socket
import ssl
import warnings
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from seamflow import connectors, errors
from seamflow.connectors.email import EmailConnector
from seamflow.ids import Json

PASSWORD = "smtp-pa55-7c1e9d"
SENDER = "华东销售部 <sales@example.cn>"
CHINESE_FILE = "对账单-2026年11月.csv"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps every accepted mail; it can refuse recipients and fail DATA."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    """Recipient → reply to RCPT TO."""
    data_replies: list[str] = field(default_factory=list)
    """Replies to the next DATA commands, before mail is accepted again."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        assert envelope.mail_from is not None and isinstance(envelope.original_content, bytes)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 queued"


def content_of(part: MIMEPart | None) -> str | bytes:
    """A part's decoded content; text in MIME's canonical CRLF form is read back with \n."""
    assert part is not None
    content = part.get_content()
    return content.replace("\r\n", "\n") if isinstance(content, str) else content


def only_sales(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"sales",
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 235 or 535


@asynccontextmanager
async def smtp_server(
    handler: Recorder, *, server_tls: ssl.SSLContext | None = None, **options: Any
) -> AsyncIterator[int]:
    """Serve SMTP on 127.0.0.1 in this test's event loop; yield the port."""

    def protocol() -> SMTP:
        with warnings.catch_warnings():  # AUTH without TLS is what the plain-AUTH test wants
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            return SMTP(handler, hostname="mx.test", **options)

    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0, ssl=server_tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def opened(config: Mapping[str, Json], *, timeout: float = 5) -> AsyncIterator[EmailConnector]:
    connector = EmailConnector()
    connection = connectors.Connection(
        name="mailer", connector="email", config=dict(config), timeout=timedelta(seconds=timeout)
    )
    await connector.open(connection)
    try:
        yield connector
    finally:
        await connector.close()


def plain(port: int, **extra: Json) -> dict[str, Json]:
    return {"host": "127.0.0.1", "port": port, "security": "none", "from": SENDER, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


MAIL: dict[str, Json] = {
    "to": ["张三 <zhangsan@example.cn>"],
    "subject": "【对账提醒】2026年11月 客户：上海某某贸易有限公司",
    "text": "您好：\n\n附件为本月对账单，请于 5 个工作日内确认。\n\n——华东销售部\n",
}


async def send(connector: EmailConnector, mail: Mapping[str, Json], key: str = "run-1/notify") -> dict[str, Json]:
    result = await connector.call("send", dict(mail), idempotency_key=key)
    assert isinstance(result, dict)
    return result


async def test_email_connector_meets_the_connector_protocol() -> None:
    assert isinstance(EmailConnector(), connectors.Connector)
    assert connectors.available_connectors()["email"] is EmailConnector, "registered as an entry point"
    assert EmailConnector.kind == "email"
    assert set(EmailConnector.actions) == {"send"}
    assert not EmailConnector.actions["send"].is_idempotent  # SMTP cannot deduplicate


async def test_chinese_subject_display_names_and_body_round_trip_exactly() -> None:
    recorder = Recorder()
    async with smtp_server(recorder) as port, opened(plain(port)) as mailer:
        result = await send(mailer, {**MAIL, "cc": "李四 <lisi@example.cn>", "bcc": ["audit@example.cn"]})

    [mail] = recorder.received
    assert mail.mail_from == "sales@example.cn"
    assert mail.rcpt_tos == ["zhangsan@example.cn", "lisi@example.cn", "audit@example.cn"]
    assert mail.data.isascii()  # RFC 2047 headers and an encoded body: no server needs 8BITMIME or SMTPUTF8
    message = mail.message
    assert message["Subject"] == MAIL["subject"]
    assert message["From"].addresses[0].display_name == "华东销售部"
    assert message["From"].addresses[0].addr_spec == "sales@example.cn"
    assert message["To"].addresses[0].display_name == "张三"
    assert message["Cc"].addresses[0].display_name == "李四"
    assert "Bcc" not in message and b"audit@example.cn" not in mail.data
    assert content_of(message.get_body(("plain",))) == MAIL["text"]
    assert result["message_id"] == message["Message-ID"]
    assert result["accepted"] == mail.rcpt_tos and result["refused"] == {}


async def test_html_and_text_are_sent_as_alternatives() -> None:
    recorder = Recorder()
    html = "<p>您好，<b>张三</b>：本月对账单已生成。</p>\n"
    async with smtp_server(recorder) as port, opened(plain(port)) as mailer:
        await send(mailer, {**MAIL, "html": html, "reply_to": "客服 <service@example.cn>"})
    message = recorder.received[0].message
    assert message.get_content_type() == "multipart/alternative"
    assert content_of(message.get_body(("html",))) == html
    assert content_of(message.get_body(("plain",))) == MAIL["text"]
    assert message["Reply-To"].addresses[0].display_name == "客服"


async def test_html_only_mail_has_one_html_part() -> None:
    recorder = Recorder()
    async with smtp_server(recorder) as port, opened(plain(port)) as mailer:
        await send(mailer, {"to": "a@example.cn", "subject": "hi", "html": "<p>好</p>\n"})
    message = recorder.received[0].message
    assert message.get_content_type() == "text/html"
    assert content_of(message) == "<p>好</p>\n"


async def test_attachments_with_a_chinese_file_name_decode_back_exactly() -> None:
    recorder = Recorder()
    csv = "客户,金额\n上海某某贸易有限公司,19.90\n"
    pdf = b"%PDF-1.4\n\x00\xff\x10 binary"
    attachments: list[Json] = [
        {"name": CHINESE_FILE, "content": csv},
        {
            "name": "发票.pdf",
            "content": base64.b64encode(pdf).decode(),
            "encoding": "base64",
            "content_type": "application/pdf",
        },
    ]
    async with smtp_server(recorder) as port, opened(plain(port)) as mailer:
        await send(mailer, {**MAIL, "attachments": attachments})

    mail = recorder.received[0]
    assert b"filename*=utf-8''%E5%AF%B9%E8%B4%A6%E5%8D%95" in mail.data  # RFC 2231
    parts = list(mail.message.iter_attachments())
    assert [part.get_filename() for part in parts] == [CHINESE_FILE, "发票.pdf"]
    assert parts[0].get_content_type() == "text/csv" and content_of(parts[0]) == csv
    assert parts[1].get_content_type() == "application/pdf" and content_of(parts[1]) == pdf
    assert content_of(mail.message.get_body(("plain",))) == MAIL["text"]


async def test_message_id_follows_the_idempotency_key() -> None:
    recorder = Recorder()
    async with smtp_server(recorder) as port, opened(plain(port)) as mailer:
        first = await send(mailer, MAIL, key="run-7/notify")
        again = await send(mailer, MAIL, key="run-7/notify")
        other = await send(mailer, MAIL, key="run-8/notify")
    ids = [mail.message["Message-ID"] for mail in recorder.received]
    assert ids[0] == ids[1] == first["message_id"] == again["message_id"]
    assert ids[2] == other["message_id"] != ids[0]
    assert isinstance(ids[0], str) and ids[0].startswith("<") and ids[0].endswith(".seamflow@example.cn>")


async def test_451_is_transient_and_the_retry_with_the_same_key_delivers_once() -> None:
    recorder = Recorder(data_replies=["451 4.3.0 mailbox busy, try again later"])
    async with smtp_server(recorder) as port, opened(plain(port)) as mailer:
        with pytest.raises(errors.Transient) as failure:
            await send(mailer, MAIL, key="run-9/notify")
        result = await send(mailer, MAIL, key="run-9/notify")
    assert failure.value.where == "mailer.send"
    assert "451 4.3.0 mailbox busy" in str(failure.value)
    [mail] = recorder.received
    assert mail.message["Message-ID"] == result["message_id"]


async def test_421_greeting_is_transient() -> None:
    hung_up = asyncio.Event()

    async def busy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"421 4.3.2 too many connections, try later\r\n")
            await writer.drain()
            await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()
            hung_up.set()

    server = await asyncio.start_server(busy, "127.0.0.1", 0)
    try:
        async with opened(plain(server.sockets[0].getsockname()[1])) as mailer:
            with pytest.raises(errors.Transient, match=re.escape("421 4.3.2 too many connections")):
                await send(mailer, MAIL)
        await asyncio.wait_for(hung_up.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()


async def test_450_for_the_only_recipient_is_transient() -> None:
    recorder = Recorder()
    async with smtp_server(recorder) as port, opened(plain(port)) as mailer:
        recorder.refuse["zhangsan@example.cn"] = "450 4.2.1 mailbox temporarily unavailable"
        with pytest.raises(errors.Transient, match=re.escape("450 4.2.1")):
            await send(mailer, MAIL)
    assert recorder.received == []


async def test_550_unknown_recipient_is_permanent_with_the_reply() -> None:
    recorder = Recorder(refuse={"zhangsan@example.cn": "550 5.1.1 <zhangsan@example.cn>: no such user"})
    async with smtp_server(recorder) as port, opened(plain(port)) as mailer:
        with pytest.raises(errors.Permanent) as failure:
            await send(mailer, MAIL)
    assert "550 5.1.1 <zhangsan@example.cn>: no such user" in str(failure.value)
    assert failure.value.where == "mailer.send"
    assert recorder.received == []


async def test_a_refused_recipient_among_accepted_ones_is_reported_not_raised() -> None:
    recorder = Recorder(refuse={"nobody@example.cn": "550 5.1.1 no such user"})
    async with smtp_server(recorder) as port, opened(plain(port)) as mailer:
        result = await send(mailer, {**MAIL, "cc": ["nobody@example.cn"]})
    assert result["accepted"] == ["zhangsan@example.cn"]
    assert result["refused"] == {"nobody@example.cn": "550 5.1.1 no such user"}
    assert recorder.received[0].rcpt_tos == ["zhangsan@example.cn"]


async def test_554_on_data_is_permanent() -> None:
    recorder = Recorder(data_replies=["554 5.7.1 message rejected as spam"])
    async with smtp_server(recorder) as port, opened(plain(port)) as mailer:
        with pytest.raises(errors.Permanent, match=re.escape("554 5.7.1 message rejected as spam")):
            await send(mailer, MAIL)


async def test_login_then_send_and_a_wrong_password_is_permanent_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Recorder()
    options: dict[str, Any] = {"authenticator": only_sales, "auth_required": True, "auth_require_tls": False}
    async with smtp_server(recorder, **options) as port:
        async with opened(plain(port, username="sales", password=PASSWORD)) as mailer:
            await send(mailer, MAIL)
        wrong = PASSWORD + "-wrong"
        async with opened(plain(port, username="sales", password=wrong)) as mailer:
            with pytest.raises(errors.Permanent) as failure:
                await send(mailer, MAIL)
        async with opened(plain(port)) as mailer:  # no login: the server demands one
            with pytest.raises(errors.Permanent, match="530"):
                await send(mailer, MAIL)
    assert len(recorder.received) == 1
    assert "535" in str(failure.value) and "'sales'" in str(failure.value)
    seen = [str(failure.value), repr(failure.value), str(failure.value.__context__), caplog.text]
    for text in seen:
        assert PASSWORD not in text and "pa55" not in text


async def test_unreachable_server_is_transient() -> None:
    async with opened(plain(free_port())) as mailer:
        with pytest.raises(errors.Transient) as failure:
            await send(mailer, MAIL)
    assert failure.value.where == "mailer.send"
    assert "127.0.0.1" in str(failure.value)


async def test_a_silent_server_times_out_as_transient() -> None:
    hung_up = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # never greets; returns when the client hangs up
        finally:
            writer.close()
            await writer.wait_closed()
            hung_up.set()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with opened(plain(port), timeout=0.3) as mailer:
            with pytest.raises(errors.Transient, match=re.escape("did not answer within 0.3s")):
                await send(mailer, MAIL)
        await asyncio.wait_for(hung_up.wait(), 5)  # the client closed its socket on the timeout
    finally:
        server.close()
        await server.wait_closed()


ONE_LINE: dict[str, Json] = {"to": "a@example.cn", "subject": "x", "text": "y"}


@pytest.mark.parametrize(
    ("mail", "problem"),
    [
        ({"subject": "x", "text": "y"}, "at least one recipient"),
        ({"to": "a@example.cn", "subject": "x"}, "text, html or both"),
        ({"to": "not an address", "subject": "x", "text": "y"}, "expected an address"),
        ({"to": "a@example.cn", "subject": "x\r\nBcc: b@example.cn", "text": "y"}, "line break"),
        ({**ONE_LINE, "headers": {"Message-ID": "<a@b>"}}, "set by the connector"),
        ({**ONE_LINE, "attachments": [{"name": "a.bin", "content": "%%", "encoding": "base64"}]}, "not valid base64"),
    ],
)  # fmt: skip
async def test_invalid_inputs_are_permanent_and_send_nothing(mail: dict[str, Json], problem: str) -> None:
    recorder = Recorder()
    async with smtp_server(recorder) as port, opened(plain(port)) as mailer:
        with pytest.raises(errors.Permanent, match=problem):
            await send(mailer, mail)
    assert recorder.received == []


@pytest.mark.parametrize(
    "config",
    [
        {"host": "127.0.0.1", "from": "no address"},
        {"host": "127.0.0.1", "from": SENDER, "security": "smtps"},
        {"host": "127.0.0.1", "from": SENDER, "username": "sales"},
    ],
)
async def test_a_bad_config_names_the_connection_without_values(config: dict[str, Json]) -> None:
    with pytest.raises(errors.InvalidInput, match="connection 'mailer' has an invalid email config") as failure:
        async with opened(config):
            pass
    assert failure.value.code == "connection.invalid"


# TLS: a private CA issues the server's certificate for 127.0.0.1.


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


async def test_starttls_then_login_then_send(server_tls: ssl.SSLContext, ca_file: str) -> None:
    recorder = Recorder()
    options: dict[str, Any] = {
        "tls_context": server_tls,
        "require_starttls": True,
        "authenticator": only_sales,
        "auth_required": True,
    }
    config = {"security": "starttls", "ca_file": ca_file, "username": "sales", "password": PASSWORD}
    async with smtp_server(recorder, **options) as port, opened(plain(port, **config)) as mailer:
        await send(mailer, MAIL)
    assert recorder.received[0].message["Subject"] == MAIL["subject"]


async def test_implicit_tls_sends(server_tls: ssl.SSLContext, ca_file: str) -> None:
    recorder = Recorder()
    async with (
        smtp_server(recorder, server_tls=server_tls) as port,
        opened(plain(port, security="ssl", ca_file=ca_file)) as mailer,
    ):
        await send(mailer, MAIL)
    assert len(recorder.received) == 1


async def test_an_untrusted_certificate_is_permanent_unless_verification_is_off(server_tls: ssl.SSLContext) -> None:
    recorder = Recorder()
    async with smtp_server(recorder, server_tls=server_tls) as port:
        async with opened(plain(port, security="ssl")) as mailer:
            with pytest.raises(errors.Permanent, match="certificate") as failure:
                await send(mailer, MAIL)
        assert failure.value.code == "connector.email.tls"
        async with opened(plain(port, security="ssl", verify_tls=False)) as mailer:
            await send(mailer, MAIL)
    assert len(recorder.received) == 1


async def test_starttls_required_but_not_offered_is_permanent() -> None:
    recorder = Recorder()
    async with smtp_server(recorder) as port, opened(plain(port, security="starttls")) as mailer:
        with pytest.raises(errors.Permanent, match="STARTTLS"):
            await send(mailer, MAIL)
    assert recorder.received == []


async def test_a_non_ascii_address_is_sent_with_smtputf8_where_the_server_offers_it() -> None:
    recorder = Recorder()
    mail: dict[str, Json] = {**MAIL, "to": ["张三 <张三@例子.中国>"]}
    async with smtp_server(recorder, enable_SMTPUTF8=True) as port, opened(plain(port)) as mailer:
        await send(mailer, mail)
    assert recorder.received[0].rcpt_tos == ["张三@例子.中国"]
    headers = email.message_from_string(recorder.received[0].data.decode(), policy=email.policy.default)
    assert headers["To"].addresses[0].addr_spec == "张三@例子.中国"  # UTF-8 headers (RFC 6532)
    async with smtp_server(recorder) as port, opened(plain(port)) as mailer:
        with pytest.raises(errors.Permanent, match="SMTPUTF8"):
            await send(mailer, mail)
