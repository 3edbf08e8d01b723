"""Approval notifications by e-mail, through a real `seamflow serve` and a local SMTP server (aiosmtpd).

张伟 gets 【待审批】 with a decision link that decides from the mail; the mail server's first
answer is a 451, so the notice is sent on the second try — the decision never waited for it; 李娜
gets the outcome. 陈静 has no e-mail address: her notice fails for good, logged, and the approval
goes on regardless.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.approvals import Site, company, output_of
from tests.support.runs import run_in_status
from tests.support.wait import eventually

PROCURE = """
id: procure
trigger: {manual: {}}
steps:
  - id: approve
    approval:
      requester: "{{ event.body.requester }}"
      subject: "采购申请 {{ event.body.no }}"
      due: 2d
      notify: {connection: mail}
      levels:
        - name: 部门负责人
          assignees: [{department_head: it}]
        - name: 财务总监
          when: "{{ event.body.amount > 5000 }}"
          assignees: [{position: finance_director}]
"""


@dataclass
class Mailbox:
    """An aiosmtpd handler keeping each accepted mail; `data_replies` answer the next DATA commands first."""

    received: list[EmailMessage] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        assert isinstance(envelope.original_content, bytes)
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(parsed)
        return "250 2.0.0 queued"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.received if address in str(m["To"])]


def _text(mail: EmailMessage) -> str:
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


@dataclass
class Mailed:
    site: Site
    mailbox: Mailbox


@pytest.fixture
async def mailed(project_dir: Path, tmp_path: Path) -> AsyncIterator[Mailed]:
    mailbox = Mailbox(data_replies=["451 4.3.0 try again later"])
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(mailbox, hostname="mx.test"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connections = (
        f"mail:\n  connector: email\n  host: 127.0.0.1\n  port: {port}\n  security: none\n"
        '  from: "审批中心 <approvals@example.cn>"\n  timeout: 10s\n'
    )
    try:
        async with company(project_dir, tmp_path, {"procure": PROCURE}, connections) as site:
            yield Mailed(site, mailbox)
    finally:
        server.close()
        await server.wait_closed()


async def _logged(site: Site, run_id: str, kind: str, count: int = 1) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]]:
        found = [e for e in await site.events(run_id) if e["kind"] == kind]
        assert len(found) == count, found
        return found

    return await eventually(check, timeout=30)


async def test_the_approver_is_mailed_a_link_that_decides_and_the_requester_the_outcome(mailed: Mailed) -> None:
    site, mailbox = mailed.site, mailed.mailbox
    run_id = await site.start("procure", {"no": "PR-2026-0042", "requester": "li.na", "amount": 1200})
    [task] = await site.inbox("zhang.wei")

    async def mail_for_the_head() -> EmailMessage:
        found = mailbox.to("zhang.wei@example.cn")
        assert len(found) == 1, [m["Subject"] for m in mailbox.received]
        return found[0]

    mail = await eventually(mail_for_the_head, timeout=30)  # after the 451, on the second try
    assert mail["Subject"] == "【待审批】采购申请 PR-2026-0042"
    text = _text(mail)
    assert "张伟，您好" in text and "li.na 提交的「采购申请 PR-2026-0042」等待您审批" in text
    [link] = re.findall(r"http://127\.0\.0\.1:\d+/approve/t/\S+", text)
    [sent] = await _logged(site, run_id, "notification.sent")
    assert (sent["attributes"]["who"], sent["attributes"]["attempts"]) == ("zhang.wei", 2)
    async with httpx.AsyncClient(timeout=30) as browser:
        decided = await browser.post(link, data={"decision": "approve", "comment": "邮件里同意"})
    assert decided.status_code == 200, decided.text
    run = await run_in_status(site.admin, run_id, "completed")
    assert output_of(run, "approve")["levels"][0]["who"] == task["assignee"] == "zhang.wei"

    async def outcome_for_the_requester() -> EmailMessage:
        found = mailbox.to("li.na@example.cn")
        assert len(found) == 1, [m["Subject"] for m in mailbox.received]
        return found[0]

    outcome = await eventually(outcome_for_the_requester, timeout=30)
    assert outcome["Subject"] == "【审批通过】采购申请 PR-2026-0042"


async def test_a_notice_that_cannot_be_sent_is_logged_and_the_approval_goes_on(mailed: Mailed) -> None:
    site = mailed.site
    run_id = await site.start("procure", {"no": "PR-2026-0043", "requester": "li.na", "amount": 8600})
    [head] = await site.inbox("zhang.wei")
    assert (await site.decide("zhang.wei", head["id"], "approve")).status_code == 200
    [finance] = await site.inbox("chen.jing")  # 陈静 has no e-mail address
    [failed] = await _logged(site, run_id, "notification.failed")
    assert failed["attributes"]["who"] == "chen.jing" and "no e-mail address" in failed["attributes"]["error"]
    assert (await site.decide("chen.jing", finance["id"], "reject", comment="超预算")).status_code == 200
    run = await run_in_status(site.admin, run_id, "completed")
    assert output_of(run, "approve")["decision"] == "rejected"
