"""The approvals part of `seamflow demo`: reimbursements decided in a simulated DingTalk and paid by the
example finance system, purchase requests decided in Seamflow's inbox and ordered in the ERP.

It adds `examples/reimbursement` and `examples/procure-to-pay` to the demo's project (their flows,
the DingTalk connector file, the connections lead-to-cash does not have, their KPIs, 恒达商贸's people), starts
the finance system and the simulated DingTalk (`demo_dingtalk`), plays employees who submit
requests, and approvers — 赵磊, 陈静, 张伟 — who decide their inbox at the approver pace. The
summary counts approvals handled and payments recorded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import random
import secrets
import shutil
import sqlite3
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import yaml

from seamflow import codec, directory, store
from seamflow.cli.demo_dingtalk import Pace, SimulatedDingTalk
from seamflow.cli.demo_systems import EXAMPLES, System, start_system, stop_system

__all__ = ["OaDemo"]

_FLOWS = ("submit-reimbursement", "reimbursement-decided", "procure-to-pay")
_IN_FLIGHT = ("queued", "running", "waiting")
_APPROVERS = ("zhaolei", "chenjing", "zhangwei")
_REJECT_SHARE = 0.15
_REQUESTERS = [("zhoumin", "周敏", "it"), ("sunli", "孙丽", "purchasing")]  # heads may not approve their own
_REASONS = ["上海客户拜访差旅费", "广州展会住宿费", "部门团建餐费", "客户招待费", "北京培训交通费", "办公耗材垫付"]
_PURCHASES = [
    ("ThinkPad X1 Carbon ×2", "联想（北京）有限公司"),
    ("27 寸显示器 ×4", "戴尔（中国）有限公司"),
    ("人体工学椅 ×6", "上海震旦家具有限公司"),
    ("激光打印机 M404dn ×1", "惠普贸易（上海）有限公司"),
    ("会议室投影仪 ×1", "爱普生（中国）有限公司"),
]


def _merge_connections(project: Path) -> None:
    """Append the connections of the two examples that the project does not have yet (`erp` it has)."""
    path = project / "connections.yaml"
    have = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    added: dict[str, Any] = {}
    for example in ("reimbursement", "procure-to-pay"):
        theirs = yaml.safe_load((EXAMPLES / example / "connections.yaml").read_text(encoding="utf-8")) or {}
        added |= {name: value for name, value in theirs.items() if name not in have and name not in added}
    text = path.read_text(encoding="utf-8") + "\n# from examples/reimbursement and examples/procure-to-pay\n"
    path.write_text(text + yaml.safe_dump(added, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _merge_kpis(project: Path) -> None:
    """Add the two examples' KPIs and alerts to the project's `kpis.yaml` (lead to cash's), for `seamflow kpi`."""
    path = project / "kpis.yaml"
    merged = yaml.safe_load(path.read_text(encoding="utf-8"))
    for example in ("reimbursement", "procure-to-pay"):
        theirs = yaml.safe_load((EXAMPLES / example / "kpis.yaml").read_text(encoding="utf-8"))
        merged["kpis"] += theirs["kpis"]
        merged["alerts"] = merged.get("alerts", []) + theirs.get("alerts", [])
    head = "# The KPIs of examples/lead-to-cash, examples/reimbursement and examples/procure-to-pay (seamflow demo)\n"
    path.write_text(head + yaml.safe_dump(merged, allow_unicode=True, sort_keys=False), encoding="utf-8")


@dataclass
class OaDemo:
    """The reimbursement and procure-to-pay parts of the demo, with their systems and figures."""

    root: Path
    seamflow_url: str
    finance_port: int
    pace: Pace
    rng: random.Random
    dingtalk: SimulatedDingTalk = field(init=False)
    finance: System | None = None
    finance_token: str = field(default_factory=lambda: "fin-" + secrets.token_hex(12))
    expense_secret: str = field(default_factory=lambda: secrets.token_hex(20))
    purchase_secret: str = field(default_factory=lambda: secrets.token_hex(20))
    tokens: dict[str, str] = field(default_factory=dict)
    submitted: dict[str, int] = field(default_factory=dict)
    decided: dict[str, int] = field(default_factory=dict)
    _finance_start: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        key = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")  # an EncodingAESKey
        self.dingtalk = SimulatedDingTalk(
            "dingdemo" + secrets.token_hex(4), secrets.token_hex(16), secrets.token_hex(8), key, self.pace, self.rng
        )

    def add_to_project(self, project: Path) -> dict[str, str]:
        """Copy the examples' flows, connector file and people into `project`; return the settings for `.env`."""
        for example in ("reimbursement", "procure-to-pay"):
            for flow in sorted((EXAMPLES / example / "flows").glob("*.yaml")):
                shutil.copy(flow, project / "flows" / flow.name)
        (project / "connectors").mkdir(exist_ok=True)
        shutil.copy(EXAMPLES / "reimbursement" / "connectors" / "dingtalk_approval.yaml", project / "connectors")
        shutil.copy(EXAMPLES / "procure-to-pay" / "directory.yaml", project / "directory.yaml")
        _merge_connections(project)
        _merge_kpis(project)
        self.dingtalk.callback_url = f"{self.seamflow_url}/hooks/oa/dingtalk"
        from cryptography.fernet import Fernet

        return {
            "SEAMFLOW_VAR_DINGTALK_URL": self.dingtalk.url,
            "SEAMFLOW_VAR_DINGTALK_APP_KEY": self.dingtalk.app_key,
            "SEAMFLOW_VAR_REIMBURSEMENT_PROCESS_CODE": "PROC-7B3D9E1F-REIMB",
            "SEAMFLOW_VAR_FINANCE_URL": f"http://127.0.0.1:{self.finance_port}",
            "SEAMFLOW_VAR_BUYER_LOGIN": "sunli",
            "SEAMFLOW_VAR_BUYER_MOBILE": "+86 136 2001 7788",
            "SEAMFLOW_SECRET_DINGTALK_APPSECRET": self.dingtalk.app_secret,
            "SEAMFLOW_SECRET_DINGTALK_CALLBACK_TOKEN": self.dingtalk.callback_token,
            "SEAMFLOW_SECRET_DINGTALK_AES_KEY": self.dingtalk.aes_key,
            "SEAMFLOW_SECRET_FINANCE_TOKEN": self.finance_token,
            "SEAMFLOW_SECRET_EXPENSE_WEBHOOK": self.expense_secret,
            "SEAMFLOW_SECRET_PURCHASE_WEBHOOK": self.purchase_secret,
            "SEAMFLOW_SECRET_PURCHASING_ROBOT": f"{self.dingtalk.url}/robot/send?access_token=purchasing",
            "SEAMFLOW_SECRET_PURCHASING_ROBOT_SIGN": "SEC" + secrets.token_hex(16),
            "SEAMFLOW_SECRET_KEY": Fernet.generate_key().decode(),  # DingTalk's access token is cached encrypted
        }

    def start_finance(self) -> None:
        """Start the example finance system (`examples/finance`) while the CRM and the ERP start."""
        self._finance_start = asyncio.create_task(self._start_finance())

    async def _start_finance(self) -> None:
        args = ["--db", str(self.root / "finance.db")]
        self.finance = await start_system(
            "finance", args, {"FINANCE_API_TOKEN": self.finance_token}, self.root, self.finance_port
        )

    async def finance_ready(self) -> None:
        """Wait until the finance system answers (raises if it did not start)."""
        if self._finance_start is not None:
            # shielded: a Ctrl-C here must not leave a half-started process behind; stop() waits for it
            await asyncio.shield(self._finance_start)

    async def stop(self) -> None:
        """Stop the simulated DingTalk and the finance system."""
        await self.dingtalk.stop()
        if self._finance_start is not None and not self._finance_start.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._finance_start
        if self.finance is not None:
            await stop_system(self.finance)

    async def import_people(self, db: store.Store) -> None:
        """Import 恒达商贸's people and give each approver a personal token for the inbox."""
        people = directory.Directory(db)
        await people.import_file(directory.read_directory_file(EXAMPLES / "procure-to-pay" / "directory.yaml"))
        for login in _APPROVERS:
            self.tokens[login] = (await people.create_token(login, "demo approver")).secret

    async def play(self, rate: float, duration_s: float) -> None:
        """Employees submit a request about every `4 / rate` seconds (at least one a second) for `duration_s`."""
        import aiohttp

        loop = asyncio.get_running_loop()
        start, sent = loop.time(), 0
        every_s = max(1.0, 4.0 / max(rate, 0.1))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
            while loop.time() - start < duration_s:
                kind, path, secret, body = self._request(sent)
                raw = codec.dumps(body)
                signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
                headers = {"Content-Type": "application/json", "X-Signature": signature}
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with client.post(f"{self.seamflow_url}/hooks/{path}", data=raw, headers=headers) as answer:
                        if answer.status in (200, 202):
                            self.submitted[kind] = self.submitted.get(kind, 0) + 1
                sent += 1
                await asyncio.sleep(max(0.0, start + sent * every_s - loop.time()))

    def _request(self, n: int) -> tuple[str, str, str, dict[str, Any]]:
        login, name, department = self.rng.choice(_REQUESTERS)
        if n % 2 == 0:
            amount = Decimal(self.rng.randrange(8_000, 300_000)) / 100
            body = {
                "request_no": f"BX-2026-12-{n + 1:04d}",
                "requester": {"userid": login, "name": name},
                "amount": f"{amount:.2f}",
                "reason": self.rng.choice(_REASONS),
                "approvers": ["zhaolei"],
            }
            return "reimbursements", "expense/reimbursements", self.expense_secret, body
        item, supplier = self.rng.choice(_PURCHASES)
        amount = Decimal(self.rng.randrange(60_000, 1_200_000)) / 100
        body = {
            "request_no": f"PR-2026-12-{n + 1:04d}",
            "requester": login,
            "department": department,
            "item": item,
            "supplier": supplier,
            "amount": f"{amount:.2f}",
        }
        return "purchases", "purchase-requests", self.purchase_secret, body

    async def approve(self) -> None:
        """赵磊, 陈静 and 张伟 decide their pending tasks in the inbox at the approver pace, until cancelled."""
        import aiohttp

        due: dict[str, float] = {}
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
            while True:
                for login in _APPROVERS:
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                        await self._decide_due(client, login, due, loop.time())
                await asyncio.sleep(0.3)

    async def _decide_due(self, client: Any, login: str, due: dict[str, float], now: float) -> None:
        headers = {"Authorization": f"Bearer {self.tokens[login]}"}
        url = f"{self.seamflow_url}/api/v1/tasks"
        async with client.get(url, params={"assignee": "me", "status": "pending"}, headers=headers) as answer:
            tasks = await answer.json() if answer.status == 200 else []
        for task in tasks:
            at = due.setdefault(task["id"], now + self.rng.uniform(self.pace.min_s, self.pace.max_s))
            if at > now:
                continue
            decision = "reject" if self.rng.random() < _REJECT_SHARE else "approve"
            body = {"decision": decision, "comment": "同意" if decision == "approve" else "请补充比价单"}
            async with client.post(f"{url}/{task['id']}/decision", json=body, headers=headers) as answer:
                if answer.status == 200:
                    self.decided[decision] = self.decided.get(decision, 0) + 1

    async def settle(self, db: store.Store, timeout_s: float) -> bool:
        """Wait until every request is decided and its runs have finished; False after `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            counts = await db.count_runs_by_flow_status()
            busy = sum(n for f in _FLOWS for s, n in counts.get(f, {}).items() if s in _IN_FLIGHT)
            if not busy and not self.dingtalk.pending:
                return True
            await asyncio.sleep(0.3)
        return False

    def _finance(self) -> tuple[int, Decimal]:
        with contextlib.closing(sqlite3.connect(f"file:{self.root / 'finance.db'}?mode=ro", uri=True)) as conn:
            count, fen = conn.execute("SELECT COUNT(*), COALESCE(SUM(amount_fen), 0) FROM payments").fetchone()
        return int(count), Decimal(fen) / 100

    def _purchase_orders(self) -> int:
        with contextlib.closing(sqlite3.connect(f"file:{self.root / 'erp.db'}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM purchase_orders").fetchone()[0])

    def report(self, languages: tuple[str, ...]) -> None:
        """Print the approvals block of the summary: approvals handled, payments recorded, orders made."""
        try:
            payments, paid = self._finance()
            orders = self._purchase_orders()
        except sqlite3.Error as exc:
            click.echo(f"Reading the finance system or the ERP failed: {exc}")
            return
        ding = self.dingtalk.figures
        approved, refused = ding.get("approved", 0), ding.get("refused", 0)
        duplicates = max(0, ding.get("callbacks", 0) - approved - refused)
        inbox = self.decided.get("approve", 0) + self.decided.get("reject", 0)
        submitted = self.submitted
        figures = {
            "en": [
                f"Reimbursements submitted to DingTalk: {submitted.get('reimbursements', 0)}; decided there:"
                f" {approved} approved, {refused} refused",
                f"Payments recorded by finance from DingTalk approvals: {payments} (¥{paid:,.2f});"
                f" repeated DingTalk callbacks taken as one: {duplicates}",
                f"Requesters told of a refusal (DingTalk work notification): {ding.get('work_notifications', 0)}",
                f"Purchase requests: {submitted.get('purchases', 0)}; inbox decisions: {inbox}"
                f" ({self.decided.get('reject', 0)} rejected); ERP purchase orders: {orders};"
                f" buyer messages: {ding.get('group_messages', 0)}",
            ],
            "zh": [
                f"提交钉钉审批的报销单：{submitted.get('reimbursements', 0)}；"
                f"钉钉中已审批：通过 {approved}，驳回 {refused}",
                f"财务系统据钉钉审批记录的付款：{payments} 笔（¥{paid:,.2f}）；重复的钉钉回调按一次处理：{duplicates}",
                f"驳回后通知申请人（钉钉工作通知）：{ding.get('work_notifications', 0)}",
                f"采购申请：{submitted.get('purchases', 0)}；"
                f"审批待办已处理：{inbox}（驳回 {self.decided.get('reject', 0)}）；"
                f"ERP 采购订单：{orders}；通知采购员：{ding.get('group_messages', 0)}",
            ],
        }
        titles = {"en": "Approvals (reimbursement, procure to pay):", "zh": "审批（报销、采购到付款）："}
        for language in languages:
            click.echo(f"\n{titles[language]}")
            for line in figures[language]:
                click.echo(f"  {line}")

    def describe(self) -> list[str]:
        """The lines of the "where things are" block."""
        return [
            f"DingTalk:    {self.dingtalk.url}  (simulated: approvals, work notifications, the purchasing group)",
            f"Finance:     http://127.0.0.1:{self.finance_port}/docs   token: {self.finance_token}",
        ]
