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
import json
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
from tests.support.im_robots import ImRobots
from tests.support.platforms import DingTalk, Feishu, WeCom, dingtalk, feishu, wecom
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


async def test_a_task_handed_over_to_a_delegate_is_mailed_to_the_delegate_on_whose_behalf(mailed: Mailed) -> None:
    site, mailbox = mailed.site, mailed.mailbox
    await site.start("procure", {"no": "PR-2026-0044", "requester": "li.na", "amount": 1200})
    [task] = await site.inbox("zhang.wei")
    period = {"delegate": "liu.yang", "from": "2026-12-07T08:00:00+08:00", "until": "2026-12-10T18:00:00+08:00"}
    async with site.client("zhang.wei") as him:
        answer = await him.put("/api/v1/delegations/zhang.wei", json={**period, "hand_over": True})
    assert answer.status_code == 200 and answer.json()["handed_over"] == [task["id"]], answer.text

    async def mail_for_the_delegate() -> EmailMessage:
        found = mailbox.to("liu.yang@example.cn")
        assert len(found) == 1, [m["Subject"] for m in mailbox.received]
        return found[0]

    mail = await eventually(mail_for_the_delegate, timeout=30)
    assert mail["Subject"] == "【待审批】采购申请 PR-2026-0044" and "（代 zhang.wei 审批）" in _text(mail)


ROBOTS = """
id: robots
trigger: {manual: {}}
steps:
  - id: approve
    approval:
      requester: "{{ event.body.requester }}"
      subject: "用印申请 {{ event.body.no }}"
      notify: {connection: "{{ event.body.channel }}"}
      levels:
        - assignees: [{user: liu.yang}]
"""


async def test_dingtalk_mentions_the_approver_and_feishu_gets_a_card_whose_button_opens_the_link(
    project_dir: Path, tmp_path: Path
) -> None:
    async with ImRobots.start() as robots:
        dingtalk, feishu = robots.add("dingtalk", "dd-approvals"), robots.add("feishu", "fs-approvals")
        connections = (
            f"dd:\n  connector: dingtalk\n  webhook: {dingtalk}\nfs:\n  connector: feishu\n  webhook: {feishu}\n"
        )
        flows = {"dd": ROBOTS.replace("robots", "dd").replace('"{{ event.body.channel }}"', "dd")}
        flows["fs"] = ROBOTS.replace("robots", "fs").replace('"{{ event.body.channel }}"', "fs")
        async with company(project_dir, tmp_path, flows, connections) as site:
            for flow in ("dd", "fs"):
                await site.start(flow, {"no": f"YY-2026-{flow}", "requester": "li.na"})

            async def both_sent() -> dict[str, dict[str, Any]]:
                assert len(robots.messages) == 2, robots.messages
                return {m.platform: m.body for m in robots.messages}

            sent = await eventually(both_sent, timeout=30)
            ding = sent["dingtalk"]
            assert ding["msgtype"] == "text" and ding["at"]["atMobiles"] == ["13800138000"]
            assert (
                "【待审批】用印申请 YY-2026-dd" in ding["text"]["content"] and "/approve/t/" in ding["text"]["content"]
            )
            card = json.dumps(sent["feishu"]["card"], ensure_ascii=False)
            assert sent["feishu"]["msg_type"] == "interactive" and "用印申请 YY-2026-fs" in card
            [link] = set(re.findall(r"http://127\.0\.0\.1:\d+/approve/t/[A-Za-z0-9_\-]+", card))  # text and button
            async with httpx.AsyncClient(timeout=30) as browser:
                page = await browser.get(link)
            assert page.status_code == 200 and "用印申请 YY-2026-fs" in page.text


APPS = """
id: {name}
trigger: {{manual: {{}}}}
steps:
  - id: approve
    approval:
      requester: "{{{{ event.body.requester }}}}"
      subject: "采购申请 {{{{ event.body.no }}}}"
      notify: {{connection: {name}}}
      levels:
        - assignees: [{{department_head: it}}]
"""
APP_CONNECTIONS = """
dd:
  connector: dingtalk_app
  appkey: {dd_key}
  appsecret: "{{{{ secrets.dingtalk_appsecret }}}}"
  agent_id: "2876554321"
  base_url: {dd_url}
wx:
  connector: wecom_app
  corpid: {corpid}
  corpsecret: "{{{{ secrets.wecom_corpsecret }}}}"
  agent_id: 1000002
  base_url: {wx_url}
fs:
  connector: feishu_app
  app_id: {fs_id}
  app_secret: "{{{{ secrets.feishu_appsecret }}}}"
  base_url: {fs_url}/open-apis
"""


async def test_work_notifications_reach_the_approver_by_user_id_with_a_link_and_retries_never_block(
    project_dir: Path, tmp_path: Path
) -> None:
    async with DingTalk.start() as dd, WeCom.start() as wx, Feishu.start() as fs:
        dd.users |= {"zhang.wei", "li.na"}
        wx.users["zhang.wei"] = "张伟"  # li.na is not in the WeCom corp: her outcome notice fails for good
        dd.fail_next(-1, "系统繁忙", "asyncsend_v2")  # the first send is retried
        connections = APP_CONNECTIONS.format(
            dd_key=dingtalk.APPKEY,
            dd_url=dd.base_url,
            corpid=wecom.CORPID,
            wx_url=wx.base_url,
            fs_id=feishu.APP_ID,
            fs_url=fs.base_url,
        )
        env = {
            "SEAMFLOW_SECRET_DINGTALK_APPSECRET": dingtalk.APPSECRET,
            "SEAMFLOW_SECRET_WECOM_CORPSECRET": wecom.CORPSECRET,
            "SEAMFLOW_SECRET_FEISHU_APPSECRET": feishu.APP_SECRET,
        }
        flows = {name: APPS.format(name=name) for name in ("dd", "wx", "fs")}
        async with company(project_dir, tmp_path, flows, connections, env=env) as site:
            runs = {name: await site.start(name, {"no": f"PR-2026-{name}", "requester": "li.na"}) for name in flows}

            async def all_sent() -> None:
                assert (len(dd.sent), len(wx.sent), len(fs.sent)) == (1, 1, 1), (dd.sent, wx.sent, fs.sent)

            await eventually(all_sent, timeout=30)
            [ding] = dd.sent
            assert ding["userid_list"] == "zhang.wei" and ding["msg"]["msgtype"] == "action_card"
            link = ding["msg"]["action_card"]["single_url"]
            assert "/approve/t/" in link and "采购申请 PR-2026-dd" in ding["msg"]["action_card"]["markdown"]
            [sent] = await _logged(site, runs["dd"], "notification.sent")
            assert sent["attributes"]["attempts"] == 2
            [card] = [m["template_card"] for m in wx.sent]
            assert (wx.sent[0]["touser"], card["card_type"]) == ("zhang.wei", "button_interaction")
            keys = [b["key"].split(":", 1)[0] for b in card["button_list"]]
            assert keys == ["approve", "reject"] and card["card_action"]["url"].startswith(site.server.url)
            [lark] = fs.sent
            content = json.loads(lark["content"])
            values = [a.get("value") for a in content["elements"][1]["actions"]]
            assert lark["receive_id"] == "zhang.wei" and lark["msg_type"] == "interactive"
            assert [v["decision"] for v in values if v] == ["approve", "reject"]
            async with httpx.AsyncClient(timeout=30) as browser:
                decided = await browser.post(link, data={"decision": "approve"})
            assert decided.status_code == 200, decided.text
            [wx_task] = [t for t in await site.inbox("zhang.wei", count=2) if t["run_id"] == runs["wx"]]
            assert (await site.decide("zhang.wei", wx_task["id"], "reject")).status_code == 200
            await run_in_status(site.admin, runs["dd"], "completed")
            await run_in_status(site.admin, runs["wx"], "completed")

            async def outcome_to_the_requester() -> None:
                assert [m["userid_list"] for m in dd.sent] == ["zhang.wei", "li.na"], dd.sent
                assert "审批通过" in dd.sent[1]["msg"]["text"]["content"]

            await eventually(outcome_to_the_requester, timeout=30)
            [failed] = await _logged(site, runs["wx"], "notification.failed")
            assert failed["attributes"]["who"] == "li.na" and "81013" in failed["attributes"]["error"]
