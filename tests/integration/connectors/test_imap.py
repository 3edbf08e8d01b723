"""The `email` connector's `messages` poll feed and IMAP check, against a private Dovecot on 127.0.0.1.

Each test reads its own, uniquely named folder; the cursor goes through JSON between polls,
as the engine stores it. Nothing is mocked: mail is filed by IMAP APPEND, flags and folders
are read back from the server.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

import pytest

from seamflow import codec, connectors, errors
from seamflow.connectors.base import Batch, Item
from seamflow.connectors.email import EmailConnector
from seamflow.connectors.email.imap import folder_name
from seamflow.ids import Json
from tests.support.dovecot import PASSWORD, USER, Dovecot, dovecot_unavailable
from tests.support.server import free_port

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    reason = dovecot_unavailable()
    if reason is not None:
        print(f"skipping the IMAP tests: {reason}")
        pytest.skip(reason)
    server = Dovecot()
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        print(f"skipping the IMAP tests: {exc}")
        pytest.skip(f"Dovecot did not start: {exc}")
    yield server
    server.stop()


@pytest.fixture
def folder(dovecot: Dovecot) -> str:
    """A new, empty folder for this test."""
    name = f"t{uuid.uuid4().hex[:10]}"
    dovecot.create_folder(name)
    return name


def imap_config(dovecot: Dovecot, **imap: Json) -> dict[str, Json]:
    settings: dict[str, Json] = {"host": "127.0.0.1", "port": dovecot.port, "security": "none"}
    settings.update(imap)
    return {"username": USER, "password": PASSWORD, "imap": settings}


@asynccontextmanager
async def opened(config: Mapping[str, Json]) -> AsyncIterator[EmailConnector]:
    connector = EmailConnector()
    connection = connectors.Connection(
        name="invoices", connector="email", config=dict(config), timeout=timedelta(seconds=5)
    )
    await connector.open(connection)
    try:
        yield connector
    finally:
        await connector.close()


async def poll(mailbox: EmailConnector, settings: Json, cursor: Json, limit: int = 100) -> Batch:
    """One poll, with the cursor passed through JSON as the engine stores it."""
    batch = await mailbox.poll("messages", settings, codec.loads(codec.dumps(cursor)), limit=limit)
    batch.cursor = codec.loads(codec.dumps(batch.cursor))
    codec.dumps([item.body for item in batch.items])  # every body is storable JSON
    return batch


def mail(subject: str, sender: str = "张伟 <zhangwei@supplier.cn>", **extra: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "应付账款 <ap@example.cn>"
    message["Subject"] = subject
    message["Date"] = "Tue, 24 Nov 2026 10:00:00 +0800"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@supplier.cn>"
    for name, value in extra.items():
        message[name] = value
    message.set_content(f"{subject}\n")
    return message.as_bytes()


def attachments_of(item: Item) -> list[dict[str, Any]]:
    assert isinstance(item.body, dict) and isinstance(item.body["attachments"], list)
    return [dict(attachment) for attachment in item.body["attachments"] if isinstance(attachment, dict)]


def subjects(items: list[Item]) -> list[Json]:
    return [item.body["subject"] for item in items if isinstance(item.body, dict)]


async def test_email_connector_offers_the_messages_poll_feed() -> None:
    assert isinstance(EmailConnector(), connectors.Polls)
    assert connectors.feeds_of(EmailConnector)["messages"].mode == "poll"


async def test_each_mail_is_delivered_once_across_polls_and_a_restart(dovecot: Dovecot, folder: str) -> None:
    for n in (1, 2, 3):
        dovecot.deliver(mail(f"发票 {n}"), folder)
    settings: Json = {"folder": folder}
    async with opened(imap_config(dovecot)) as mailbox:
        first = await poll(mailbox, settings, None, limit=2)
        assert subjects(first.items) == ["发票 1", "发票 2"] and first.more
        second = await poll(mailbox, settings, first.cursor, limit=2)
        assert subjects(second.items) == ["发票 3"] and not second.more
        assert (await poll(mailbox, settings, second.cursor)).items == []
    keys = [item.key for item in first.items + second.items]
    assert len(set(keys)) == 3
    assert all(key.startswith(f"{folder}:") for key in keys)
    assert isinstance(second.cursor, dict)
    assert keys[-1] == f"{folder}:{second.cursor['uidvalidity']}:{second.cursor['last_uid']}"
    # A restart: a new connector with the stored cursor sees nothing old, then the new mail.
    dovecot.deliver(mail("发票 4"), folder)
    async with opened(imap_config(dovecot)) as restarted:
        after = await poll(restarted, settings, second.cursor)
        assert subjects(after.items) == ["发票 4"]
        again = await poll(restarted, settings, second.cursor)  # the cursor was not stored: same keys again
    assert [item.key for item in again.items] == [item.key for item in after.items]
    assert after.items[0].key not in keys


async def test_reading_leaves_mail_unread_and_the_body_says_who_what_and_when(dovecot: Dovecot, folder: str) -> None:
    dovecot.deliver(mail("【发票】2026年11月", Cc="李娜 <lina@example.cn>"), folder)
    async with opened(imap_config(dovecot)) as mailbox:
        batch = await poll(mailbox, {"folder": folder}, None)
    (item,) = batch.items
    body = item.body
    assert isinstance(body, dict)
    assert body["from"] == {"name": "张伟", "address": "zhangwei@supplier.cn"}
    assert body["to"] == [{"name": "应付账款", "address": "ap@example.cn"}]
    assert body["cc"] == [{"name": "李娜", "address": "lina@example.cn"}]
    assert body["date"] == "2026-11-24T10:00:00+08:00"
    assert item.at == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    assert body["text"] == "【发票】2026年11月\n" and body["html"] is None
    assert isinstance(body["message_id"], str) and body["message_id"].endswith("@supplier.cn>")
    assert body["folder"] == folder and body["uid"] == 1
    assert all("\\Seen" not in flags for flags in dovecot.flags(folder).values())


async def test_gbk_and_utf8_chinese_headers_and_attachment_names_are_decoded(dovecot: Dovecot, folder: str) -> None:
    gbk = base64.b64encode("增值税专用发票（镕）".encode("gbk")).decode()
    name = base64.b64encode("王芳".encode("gbk")).decode()
    dovecot.deliver(
        (
            f"From: =?GB2312?B?{name}?= <wangfang@supplier.cn>\r\nTo: ap@example.cn\r\n"
            f"Subject: =?GBK?B?{gbk}?=\r\nDate: Tue, 24 Nov 2026 09:30:00 +0800\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=GB2312\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + base64.encodebytes("请查收附件。".encode("gbk")),
        folder,
    )
    message = EmailMessage()
    message["From"] = Address("上海供应商有限公司", "billing", "supplier.cn")
    message["To"] = "ap@example.cn"
    message["Subject"] = "发票 2026-11 第 0042 号"
    message.set_content("附件为发票。")
    message.add_alternative("<p>附件为<b>发票</b>。</p>", subtype="html")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="发票-2026年11月.pdf")
    dovecot.deliver(message.as_bytes(), folder)
    async with opened(imap_config(dovecot)) as mailbox:
        described = await poll(mailbox, {"folder": folder}, None)
        included = await poll(mailbox, {"folder": folder, "attachments": "include"}, None)
        capped = await poll(mailbox, {"folder": folder, "attachments": "include", "max_attachment_bytes": 100}, None)
    first, second = (item.body for item in described.items)
    assert isinstance(first, dict) and isinstance(second, dict)
    assert first["subject"] == "增值税专用发票（镕）"  # 镕 is in GBK but not GB2312: read as GB18030
    assert first["from"] == {"name": "王芳", "address": "wangfang@supplier.cn"}
    assert first["text"] == "请查收附件。"
    assert second["subject"] == "发票 2026-11 第 0042 号"
    assert second["from"] == {"name": "上海供应商有限公司", "address": "billing@supplier.cn"}
    assert second["html"] == "<p>附件为<b>发票</b>。</p>\n"
    assert second["attachments"] == [
        {"name": "发票-2026年11月.pdf", "content_type": "application/pdf", "size": len(PDF), "content_id": None}
    ]
    (attachment,) = attachments_of(included.items[1])
    assert base64.b64decode(attachment["content"]) == PDF
    (too_big,) = attachments_of(capped.items[1])
    assert too_big["content"] is None and too_big["is_truncated"] is True


async def test_new_mail_between_polls_appears_and_start_now_skips_what_was_there(dovecot: Dovecot, folder: str) -> None:
    dovecot.deliver(mail("旧邮件"), folder)
    settings: Json = {"folder": folder, "start": "now"}
    async with opened(imap_config(dovecot)) as mailbox:
        first = await poll(mailbox, settings, None)
        assert first.items == []
        dovecot.deliver(mail("新邮件 1"), folder)
        dovecot.deliver(mail("新邮件 2"), folder)
        second = await poll(mailbox, settings, first.cursor)
        assert subjects(second.items) == ["新邮件 1", "新邮件 2"]
        dovecot.deliver(mail("新邮件 3"), folder)
        third = await poll(mailbox, settings, second.cursor)
    assert subjects(third.items) == ["新邮件 3"]


async def test_mark_seen_happens_on_ack_only_and_a_lost_ack_is_done_by_the_next_poll(
    dovecot: Dovecot, folder: str
) -> None:
    for n in (1, 2):
        dovecot.deliver(mail(f"对账单 {n}"), folder)
    settings: Json = {"folder": folder, "mark_seen": True}
    async with opened(imap_config(dovecot)) as mailbox:
        first = await poll(mailbox, settings, None, limit=1)
        assert all("\\Seen" not in flags for flags in dovecot.flags(folder).values())
        assert first.ack is not None
        await first.ack()
        assert ["\\Seen" in flags for _, flags in sorted(dovecot.flags(folder).items())] == [True, False]
        second = await poll(mailbox, settings, first.cursor, limit=1)
        assert subjects(second.items) == ["对账单 2"]
        assert ["\\Seen" in flags for _, flags in sorted(dovecot.flags(folder).items())] == [True, False]
        # The engine stored the cursor, then crashed before the ack: the next poll marks the mail.
        third = await poll(mailbox, settings, second.cursor)
    assert third.items == [] and third.ack is None
    assert all("\\Seen" in flags for flags in dovecot.flags(folder).values())


async def test_move_to_happens_on_ack_only_and_makes_the_folder(dovecot: Dovecot, folder: str) -> None:
    dovecot.deliver(mail("待处理发票"), folder)
    done = f"{folder}-已处理"
    settings: Json = {"folder": folder, "move_to": done, "mark_seen": True}
    async with opened(imap_config(dovecot)) as mailbox:
        batch = await poll(mailbox, settings, None)
        assert subjects(batch.items) == ["待处理发票"]
        assert len(dovecot.flags(folder)) == 1
        assert batch.ack is not None
        await batch.ack()
        assert dovecot.flags(folder) == {}
        assert [("\\Seen" in flags) for flags in dovecot.flags(folder_name(done).strip('"')).values()] == [True]
        dovecot.deliver(mail("下一张发票"), folder)
        after = await poll(mailbox, settings, batch.cursor)  # re-applies the done move: a no-op
    assert subjects(after.items) == ["下一张发票"]
    assert len(dovecot.flags(folder_name(done).strip('"'))) == 1


async def test_a_chinese_folder_name_is_read(dovecot: Dovecot) -> None:
    name = f"发票-{uuid.uuid4().hex[:6]}"
    dovecot.create_folder(folder_name(name).strip('"'))
    dovecot.deliver(mail("在中文文件夹里"), folder_name(name).strip('"'))
    async with opened(imap_config(dovecot, folder=name)) as mailbox:
        batch = await poll(mailbox, {}, None)
    assert subjects(batch.items) == ["在中文文件夹里"]
    assert batch.items[0].key.startswith(f"{name}:")


async def test_a_uidvalidity_change_continues_after_the_newest_mail_with_a_warning(
    dovecot: Dovecot, folder: str, caplog: pytest.LogCaptureFixture
) -> None:
    dovecot.deliver(mail("之前 1"), folder)
    dovecot.deliver(mail("之前 2"), folder)
    settings: Json = {"folder": folder}
    async with opened(imap_config(dovecot)) as mailbox:
        before = await poll(mailbox, settings, None)
        assert subjects(before.items) == ["之前 1", "之前 2"]
        dovecot.reset_uidvalidity(folder)
        with caplog.at_level(logging.WARNING, logger="seamflow.connectors.email"):
            reset = await poll(mailbox, settings, before.cursor)
        assert reset.items == []  # the two old mails are not delivered again under new keys
        assert any("UIDVALIDITY" in record.getMessage() for record in caplog.records)
        assert isinstance(reset.cursor, dict) and isinstance(before.cursor, dict)
        assert reset.cursor["uidvalidity"] != before.cursor["uidvalidity"]
        dovecot.deliver(mail("之后"), folder)
        after = await poll(mailbox, settings, reset.cursor)
    assert subjects(after.items) == ["之后"]
    assert after.items[0].key == f"{folder}:{reset.cursor['uidvalidity']}:3"


async def test_max_batch_bytes_splits_a_poll_but_reads_at_least_one_mail(dovecot: Dovecot, folder: str) -> None:
    for n in (1, 2, 3):
        dovecot.deliver(mail(f"大邮件 {n}") + b"x" * 3000, folder)
    settings: Json = {"folder": folder, "max_batch_bytes": 1000}
    async with opened(imap_config(dovecot)) as mailbox:
        seen: list[Json] = []
        cursor: Json = None
        for _ in range(5):
            batch = await poll(mailbox, settings, cursor)
            assert len(batch.items) <= 1
            seen += subjects(batch.items)
            cursor = batch.cursor
            if not batch.more:
                break
    assert seen == ["大邮件 1", "大邮件 2", "大邮件 3"]


async def test_a_wrong_password_says_credentials_refused_without_the_password(
    dovecot: Dovecot, folder: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = imap_config(dovecot)
    config["password"] = "wr0ng-Imap-pa55"
    caplog.set_level(logging.DEBUG)
    async with opened(config) as mailbox:
        with pytest.raises(errors.Permanent, match=r"credentials refused.*login of 'invoices'") as polled:
            await poll(mailbox, {"folder": folder}, None)
        with pytest.raises(errors.Permanent, match=r"credentials refused") as checked:
            await mailbox.check()
    assert (polled.value.where, checked.value.where) == ("invoices.messages", "invoices.check")
    for failure in (polled.value, checked.value):
        assert "wr0ng-Imap-pa55" not in str(failure) and "wr0ng-Imap-pa55" not in repr(failure)
    assert "wr0ng-Imap-pa55" not in caplog.text


async def test_a_missing_folder_is_permanent_and_named(dovecot: Dovecot) -> None:
    async with opened(imap_config(dovecot)) as mailbox:
        with pytest.raises(errors.Permanent, match=r"the folder '不存在的' cannot be opened"):
            await poll(mailbox, {"folder": "不存在的"}, None)


async def test_a_refused_connection_is_transient_for_a_poll_and_permanent_for_a_check() -> None:
    port = free_port()
    config: dict[str, Json] = {
        "username": USER,
        "password": PASSWORD,
        "imap": {"host": "127.0.0.1", "port": port, "security": "none"},
    }
    async with opened(config) as mailbox:
        with pytest.raises(errors.Transient, match=rf"connection to 127\.0\.0\.1:{port} was refused"):
            await poll(mailbox, {}, None)
        with pytest.raises(errors.Permanent, match=rf"connection to 127\.0\.0\.1:{port} was refused"):
            await mailbox.check()


async def test_check_logs_in_over_tls_and_starttls_and_refuses_an_untrusted_certificate(dovecot: Dovecot) -> None:
    tls = imap_config(dovecot, port=dovecot.tls_port, security="ssl")
    async with opened({**tls, "ca_file": dovecot.ca_file}) as mailbox:
        answer = await mailbox.check()
    expected = rf"IMAP: connected to 127\.0\.0\.1:{dovecot.tls_port} with TLS, logged in as invoices, folder INBOX has \d+ mails"  # noqa: E501
    assert re.fullmatch(expected, answer)
    starttls = imap_config(dovecot, security="starttls")
    async with opened({**starttls, "ca_file": dovecot.ca_file}) as mailbox:
        assert "with STARTTLS, logged in as invoices" in await mailbox.check()
    async with opened(tls) as mailbox:
        with pytest.raises(errors.Permanent, match=r"TLS certificate of .* is not trusted"):
            await mailbox.check()
        with pytest.raises(errors.Permanent, match=r"TLS certificate of .* is not trusted"):
            await poll(mailbox, {}, None)


async def test_check_reports_smtp_and_imap_and_a_receive_only_connection_cannot_send(dovecot: Dovecot) -> None:
    async with opened(imap_config(dovecot)) as mailbox:
        assert (await mailbox.check()).startswith(f"IMAP: connected to 127.0.0.1:{dovecot.port} with no encryption")
        with pytest.raises(errors.Permanent, match="only receives mail"):
            await mailbox.call("send", {"to": "a@example.cn", "subject": "s", "text": "t"}, idempotency_key="k")


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({}, "give host and from"),
        ({"imap": {"host": "127.0.0.1"}}, "imap needs a login"),
        ({"imap": {"host": "127.0.0.1", "security": "imaps"}, "username": "u", "password": "p"}, "imap.security"),
    ],
)
async def test_a_bad_imap_config_names_the_field(config: dict[str, Json], problem: str) -> None:
    with pytest.raises(errors.InvalidInput, match="connection 'invoices' has an invalid email config") as failure:
        async with opened(config):
            pass
    assert problem in str(failure.value)


async def test_bad_feed_settings_are_permanent(dovecot: Dovecot) -> None:
    async with opened(imap_config(dovecot)) as mailbox:
        with pytest.raises(errors.Permanent, match=r"with\.start"):
            await poll(mailbox, {"start": "yesterday"}, None)
        with pytest.raises(errors.Permanent, match="not a messages cursor"):
            await poll(mailbox, {}, {"after": 3})
        with pytest.raises(errors.Permanent, match="no poll feed 'rows'"):
            await mailbox.poll("rows", {}, None, limit=10)
