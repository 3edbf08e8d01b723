"""`seamflow demo`: lead to cash between a real CRM and a real ERP, with Seamflow in the middle.

In a temporary folder it starts the example CRM and ERP (`examples/crm`, `examples/erp`) as their
own processes with their own seeded SQLite files, the ERP's simulated back office, a local SMTP
server that writes each mail it receives into a folder, and Seamflow serving a copy of
`examples/lead-to-cash` on SQLite. Then it plays a sales team: new customers, contracts signed,
edits on both sides, a few cancellations and a few bad records, printing a live summary.
Ctrl-C, or the end of `--duration`, stops every process it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import aiohttp
import click
import uvicorn

from seamflow import api, engine, store
from seamflow.cli.project import ProjectPaths, build_engine, open_store

__all__ = ["run_demo"]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_TRADES = ["科技", "贸易", "电子", "物流", "建材", "医疗器械", "文化传媒", "餐饮管理", "信息技术", "机械设备"]
_CITIES = [("上海", "310115"), ("北京", "110108"), ("深圳", "440300"), ("杭州", "330106"), ("成都", "510107")]
_ENGLISH = ["Greenfield", "Bluewave", "Silverline", "Northstar", "Evergreen", "Brightpath", "Harbor", "Summit"]
_PREFIXES = ["138", "139", "150", "151", "186", "187", "135", "177", "199", "166"]
_ERP_PRODUCTS = [
    ("CHAIR-ERG-01", "人体工学办公椅", "899.00"),
    ("DESK-1400", "办公桌 1400×700", "1280.00"),
    ("PRN-LJ-M404", "激光打印机 M404dn", "2399.00"),
    ("TONER-CF276A", "硒鼓 CF276A", "689.50"),
    ("PAPER-A4-70", "A4 复印纸 70g（5包/箱）", "129.90"),
    ("CAB-FILE-4", "四门文件柜", "1150.00"),
    ("PEN-GEL-05", "中性笔 0.5mm（12支/盒）", "18.80"),
]
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc(rng: random.Random, division: str) -> str:
    """A valid unified social credit code (统一社会信用代码) of a company registered in `division`."""
    body = "91" + division + "".join(rng.choice(_USCC_ALPHABET) for _ in range(9))
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
    return body + _USCC_ALPHABET[(31 - total % 31) % 31]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the mail server ---------------------------------------------------------------------------
@dataclass
class _Mailbox:
    """An aiosmtpd handler: each mail received becomes `<folder>/<n>.eml`."""

    folder: Path
    count: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        (self.folder / f"{self.count:05d}.eml").write_bytes(envelope.original_content or envelope.content)
        return "250 OK"


def read_mail(path: Path) -> tuple[str, str, str]:
    """(To, Subject, text body) of a received mail, headers decoded."""
    message = message_from_bytes(path.read_bytes())
    subject = str(make_header(decode_header(message["Subject"] or "")))
    to = str(make_header(decode_header(message["To"] or "")))
    part = next((p for p in message.walk() if p.get_content_type() == "text/plain"), message)
    payload = part.get_payload(decode=True)
    text = payload.decode(part.get_content_charset() or "utf-8") if isinstance(payload, bytes) else ""
    return to, subject, text


async def _serve_smtp(mailbox: _Mailbox, port: int) -> asyncio.Server:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(mailbox, enable_SMTPUTF8=True, hostname="mail.demo.local"), "127.0.0.1", port
    )


# -- the example systems -------------------------------------------------------------------------
@dataclass
class _System:
    """A CRM or ERP process with its URL and API token."""

    name: str
    url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path


async def _start_system(name: str, args: list[str], env: dict[str, str], folder: Path, port: int) -> _System:
    log = folder / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603, ASYNC220 - our own interpreter and module; waited for in _stop_system
            [sys.executable, "-m", f"seamflow_{name}", *args, "--port", str(port), "--log-level", "warning"],
            stdout=out,
            stderr=out,
            env={**os.environ, **env, "PYTHONPATH": str(EXAMPLES / name)},
            cwd=folder,
        )
    system = _System(name, f"http://127.0.0.1:{port}", "", process, log)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as client:
        while True:
            if process.poll() is not None:
                raise click.ClickException(f"the {name} exited at start:\n{log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with client.get(system.url + "/healthz") as answer:
                    if answer.status == 200:
                        return system
            if loop.time() > deadline:
                raise click.ClickException(f"the {name} did not start in 30 s; see {log}")
            await asyncio.sleep(0.1)


async def _stop_system(system: _System) -> None:
    if system.process.poll() is None:
        system.process.terminate()
        try:
            await asyncio.to_thread(system.process.wait, 10)
        except subprocess.TimeoutExpired:
            system.process.kill()
            await asyncio.to_thread(system.process.wait)


# -- the project ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Setup:
    root: Path
    project: Path
    mail: Path
    port: int
    crm_port: int
    erp_port: int
    smtp_port: int
    crm_token: str = field(default_factory=lambda: "crm-" + secrets.token_hex(12))
    erp_token: str = field(default_factory=lambda: "erp-" + secrets.token_hex(12))
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(24))
    api_token: str = field(default_factory=lambda: "sf_demo_" + secrets.token_hex(20))


def _write_project(setup: _Setup) -> None:
    shutil.copytree(EXAMPLES / "lead-to-cash", setup.project, ignore=shutil.ignore_patterns("README.md"))
    env = {
        "SEAMFLOW_VAR_CRM_URL": f"http://127.0.0.1:{setup.crm_port}",
        "SEAMFLOW_VAR_ERP_URL": f"http://127.0.0.1:{setup.erp_port}",
        "SEAMFLOW_VAR_SMTP_HOST": "127.0.0.1",
        "SEAMFLOW_VAR_SMTP_PORT": str(setup.smtp_port),
        "SEAMFLOW_VAR_SALES_OPS_EMAIL": "销售运营 <sales-ops@example.cn>",
        "SEAMFLOW_SECRET_CRM_TOKEN": setup.crm_token,
        "SEAMFLOW_SECRET_ERP_TOKEN": setup.erp_token,
        "SEAMFLOW_SECRET_CRM_WEBHOOK": setup.webhook_secret,
    }
    (setup.project / ".env").write_text("".join(f"{k}='{v}'\n" for k, v in env.items()), encoding="utf-8")
    os.environ.update(env)


async def _serve(app: Any, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, loop="none")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise click.ClickException(f"Seamflow could not listen on port {port}")
        await asyncio.sleep(0.02)
    return server, task


@contextlib.asynccontextmanager
async def _systems(setup: _Setup, operator_delay: str) -> AsyncIterator[tuple[_System, _System]]:
    started: list[_System] = []
    try:
        erp = await _start_system(
            "erp",
            ["--db", str(setup.root / "erp.db"), "--seed", "--operator", "--operator-delay-s", operator_delay],
            {"ERP_API_TOKEN": setup.erp_token},
            setup.root,
            setup.erp_port,
        )
        started.append(erp)
        hooks = f"http://127.0.0.1:{setup.port}/hooks/crm"
        crm = await _start_system(
            "crm",
            ["--db", str(setup.root / "crm.db"), "--seed", "--retry-initial-s", "0.5", "--retry-max-s", "3"],
            {
                "CRM_API_TOKEN": setup.crm_token,
                "CRM_WEBHOOK_SECRET": setup.webhook_secret,
                "CRM_WEBHOOK_URL": f"{hooks}/contract-signed,{hooks}/contract-cancelled",
            },
            setup.root,
            setup.crm_port,
        )
        started.append(crm)
        erp.token, crm.token = setup.erp_token, setup.crm_token
        yield crm, erp
    finally:
        await asyncio.gather(*(_stop_system(s) for s in reversed(started)))


async def run_demo(rate: float, duration_s: float, port: int, keep: bool, operator_delay: str = "1:4") -> None:
    """Run the demo; see the module docstring."""
    missing = [m for m in ("aiosmtpd", "httpx") if not _importable(m)]
    if missing:
        raise click.ClickException(
            f"the demo needs {', '.join(missing)} (the mail server and the example CRM use them): "
            "pip install -e '.[dev]'"
        )
    root = Path(tempfile.mkdtemp(prefix="seamflow-demo-"))
    ports = {_free_port() for _ in range(3)}
    while len(ports) < 3 or port in ports:
        ports = {_free_port() for _ in range(3)}
    crm_port, erp_port, smtp_port = sorted(ports)
    setup = _Setup(root, root / "lead-to-cash", root / "mail", port, crm_port, erp_port, smtp_port)
    setup.mail.mkdir()
    _write_project(setup)
    mailbox = _Mailbox(setup.mail)
    smtp = await _serve_smtp(mailbox, smtp_port)
    try:
        async with _systems(setup, operator_delay) as (crm, erp):
            await _run_seamflow(setup, crm, erp, mailbox, rate, duration_s)
    finally:
        smtp.close()
        await smtp.wait_closed()
        if keep:
            click.echo(f"\nKept {root} (the project, crm.db, erp.db, the logs and the mails).")
        else:
            shutil.rmtree(root, ignore_errors=True)
            click.echo(f"\nRemoved {root} (use --keep to leave it).")


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


async def _run_seamflow(
    setup: _Setup, crm: _System, erp: _System, mailbox: _Mailbox, rate: float, duration_s: float
) -> None:
    paths = ProjectPaths(setup.project)
    db = open_store(paths)
    await db.open()
    try:
        await db.add_api_token("demo", api.hash_token(setup.api_token))
        eng, context = build_engine(paths, db, engine.EngineOptions())
        await eng.start()
        try:
            app_server, app_task = await _serve(api.create_app(eng, context=context, manage_engine=False), setup.port)
            try:
                _where(setup, crm, erp)
                watch = _Watch(eng, setup, mailbox)
                driver = _Traffic(crm, erp, random.Random())
                click.echo(f"Playing the sales team at ~{rate:g} actions/s for {duration_s:g} s (Ctrl-C stops) …")
                await driver.run(rate, duration_s, watch)
                click.echo("Letting the last runs finish …")
                await watch.settle(timeout_s=8)
                await watch.final(driver)
            finally:
                app_server.should_exit = True
                await app_task
        finally:
            await eng.stop()
    finally:
        await db.close()


def _where(setup: _Setup, crm: _System, erp: _System) -> None:
    base = f"http://127.0.0.1:{setup.port}"
    click.echo(f"Folder:      {setup.root}")
    click.echo(f"Project:     {setup.project}  (flows/, syncs/, models/, connections.yaml, .env)")
    click.echo(f"Seamflow:    {base}/docs   token: {setup.api_token}")
    click.echo(f"             curl -H 'Authorization: Bearer {setup.api_token}' {base}/api/v1/runs")
    click.echo(f"CRM:         {crm.url}/docs   token: {crm.token}")
    click.echo(f"ERP:         {erp.url}/docs   token: {erp.token}")
    click.echo(f"Mails:       {setup.mail}/*.eml  (SMTP 127.0.0.1:{setup.smtp_port})")
    click.echo(f"Logs:        {setup.root}/crm.log, erp.log")


# -- the sales team ------------------------------------------------------------------------------
@dataclass
class _Traffic:
    """Realistic traffic at the CRM and the ERP; remembers what it made so edits have targets."""

    crm: _System
    erp: _System
    rng: random.Random
    customers: list[dict[str, Any]] = field(default_factory=list)
    signed: list[dict[str, Any]] = field(default_factory=list)
    done: dict[str, int] = field(default_factory=dict)
    refused: int = 0

    async def run(self, rate: float, duration_s: float, watch: _Watch) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        next_report = start + 2
        actions = 0
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout, headers=self._auth(self.crm)) as crm,
            aiohttp.ClientSession(timeout=timeout, headers=self._auth(self.erp)) as erp,
        ):
            while loop.time() - start < duration_s:
                actions += 1
                try:
                    await self._act(crm, erp)
                except (aiohttp.ClientError, TimeoutError):
                    self.refused += 1
                if loop.time() >= next_report:
                    await watch.report(loop.time() - start)
                    next_report += 2
                await asyncio.sleep(max(0.0, start + actions / rate - loop.time()))

    @staticmethod
    def _auth(system: _System) -> dict[str, str]:
        return {"Authorization": f"Bearer {system.token}", "X-Origin": "demo"}

    async def _act(self, crm: aiohttp.ClientSession, erp: aiohttp.ClientSession) -> None:
        roll = self.rng.random()
        if len(self.customers) < 3 or roll < 0.25:
            await self._new_customer(crm)
        elif roll < 0.65:
            await self._sign_contract(crm, bad=self.rng.random() < 0.04)
        elif roll < 0.75:
            await self._edit_crm_customer(crm)
        elif roll < 0.85:
            await self._edit_erp_customer(erp)
        elif roll < 0.92 and self.signed:
            await self._cancel_contract(crm)
        elif roll < 0.96:
            await self._new_erp_customer(erp, bad=self.rng.random() < 0.5)
        else:
            await self._sign_contract(crm, bad=False)

    def _count(self, what: str) -> None:
        self.done[what] = self.done.get(what, 0) + 1

    def _company(self) -> tuple[str, str, str]:
        city, division = self.rng.choice(_CITIES)
        if self.rng.random() < 0.25:
            name = f"{self.rng.choice(_ENGLISH)} {self.rng.choice(['Trading', 'Technology', 'Logistics'])} Co., Ltd."
        else:
            boss = self.rng.choice(_SURNAMES) + self.rng.choice(_SURNAMES)
            name = f"{city}{boss}{self.rng.choice(_TRADES)}有限公司"
        street = self.rng.choice(["人民路", "中山路", "科技园路", "解放大道"])
        address = f"{city}市{street}{self.rng.randrange(1, 999)}号"
        return name, address, division

    def _phone(self) -> str:
        return self.rng.choice(_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    async def _new_customer(self, crm: aiohttp.ClientSession) -> None:
        name, address, division = self._company()
        body = {
            "name": name,
            "phone": self._phone(),
            "email": f"purchase{self.rng.randrange(10**6)}@example.cn",
            "tax_id": uscc(self.rng, division),
            "address": address,
            "credit_limit": f"{self.rng.randrange(50, 500) * 10000}.00",
        }
        async with crm.post(self.crm.url + "/customers", json=body) as answer:
            if answer.status == 201:
                self.customers.append(await answer.json())
                self._count("crm customers created")

    async def _sign_contract(self, crm: aiohttp.ClientSession, *, bad: bool) -> None:
        customer = self.rng.choice(self.customers)
        lines = [
            {"sku": sku, "name": name, "qty": self.rng.randrange(1, 20), "unit_price": price}
            for sku, name, price in self.rng.sample(_ERP_PRODUCTS, self.rng.randrange(1, 4))
        ]
        if bad:  # a product the ERP does not carry: the order is refused, the run is a dead letter
            lines.append({"sku": "SF-NAS-4B", "name": "4盘位网络存储", "qty": 1, "unit_price": "3999.00"})
        body = {"customer_id": customer["id"], "title": f"{customer['name']} 办公设备采购", "lines": lines}
        async with crm.post(self.crm.url + "/contracts", json=body) as answer:
            if answer.status != 201:
                return
            contract = await answer.json()
        async with crm.post(f"{self.crm.url}/contracts/{contract['id']}/sign") as answer:
            if answer.status == 200:
                self.signed.append(contract)
                self._count("contracts signed (bad sku)" if bad else "contracts signed")

    async def _edit_crm_customer(self, crm: aiohttp.ClientSession) -> None:
        customer = self.rng.choice(self.customers)
        change = self.rng.choice([{"phone": self._phone()}, {"address": self._company()[1]}])
        async with crm.patch(f"{self.crm.url}/customers/{customer['id']}", json=change) as answer:
            if answer.status == 200:
                self._count("crm customer edits")

    async def _edit_erp_customer(self, erp: aiohttp.ClientSession) -> None:
        customer = self.rng.choice(self.customers)
        async with erp.get(self.erp.url + "/customers", params={"tax_id": customer["tax_id"]}) as answer:
            items = (await answer.json()).get("items", []) if answer.status == 200 else []
        if not items:
            return
        change = self.rng.choice(
            [{"credit_limit": f"{self.rng.randrange(50, 800) * 10000}.00"}, {"address": self._company()[1]}]
        )
        async with erp.patch(f"{self.erp.url}/customers/{items[0]['id']}", json=change) as answer:
            if answer.status == 200:
                self._count("erp customer edits")

    async def _new_erp_customer(self, erp: aiohttp.ClientSession, *, bad: bool) -> None:
        name, address, division = self._company()
        # a landline is fine for the ERP, but the canonical customer (and the CRM) want a mobile number
        phone = f"021-{self.rng.randrange(10**7, 10**8)}" if bad else self._phone()
        body = {"name": name, "phone": phone, "tax_id": uscc(self.rng, division), "address": address}
        async with erp.post(self.erp.url + "/customers", json=body) as answer:
            if answer.status == 201:
                self._count("erp customers created (landline)" if bad else "erp customers created")

    async def _cancel_contract(self, crm: aiohttp.ClientSession) -> None:
        contract = self.signed.pop(self.rng.randrange(len(self.signed)))
        async with crm.post(f"{self.crm.url}/contracts/{contract['id']}/cancel") as answer:
            if answer.status == 200:
                self._count("contracts cancelled")


# -- what happened -------------------------------------------------------------------------------
@dataclass
class _Watch:
    """Reads Seamflow's store, the ERP's database and the mail folder for the live summary."""

    eng: engine.Engine
    setup: _Setup
    mailbox: _Mailbox

    async def _runs(self) -> tuple[dict[str, int], int, int]:
        by_flow = await self.eng.db.count_runs_by_flow_status()
        totals: dict[str, int] = {}
        for counts in by_flow.values():
            for status, n in counts.items():
                totals[status] = totals.get(status, 0) + n
        sync_runs = sum(sum(c.values()) for f, c in by_flow.items() if f.startswith("sync."))
        return totals, sum(totals.values()), sync_runs

    def _erp(self) -> dict[str, int]:
        import sqlite3

        path = self.setup.root / "erp.db"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)) as conn:
            rows = conn.execute(
                "SELECT status, COUNT(*) FROM sales_orders WHERE external_ref LIKE 'HT-%' GROUP BY status"
            ).fetchall()
            paid = conn.execute(
                "SELECT COUNT(DISTINCT p.order_id) FROM payments p JOIN sales_orders o ON o.id = p.order_id"
                " WHERE o.external_ref LIKE 'HT-%'"
            ).fetchone()[0]
        counts = {str(s): int(n) for s, n in rows}
        counts["orders"] = sum(counts.values())
        counts["paid"] = int(paid)
        return counts

    async def report(self, elapsed: float | None) -> None:
        totals, runs, sync_runs = await self._runs()
        sync = await self._sync()
        try:
            erp = await asyncio.to_thread(self._erp)
        except Exception:  # the ERP may be writing; the next report reads again
            erp = {}
        click.echo(
            ("  final  " if elapsed is None else f"  t={elapsed:4.0f}s")
            + f"  runs {runs:5d} (completed {totals.get('completed', 0)}, "
            f"failed {totals.get('failed', 0)}, dead letters {totals.get('dead_letter', 0)}, "
            f"in flight {totals.get('queued', 0) + totals.get('running', 0) + totals.get('waiting', 0)})"
            f"  sync: {sync_runs} changes, {sync.get('records', 0)} records, "
            f"{sync.get('open_conflicts', 0)} conflicts"
            f"  ERP orders {erp.get('orders', 0)} (pending {erp.get('pending_review', 0)}, "
            f"cancelled {erp.get('cancelled', 0)}) paid {erp.get('paid', 0)} shipped {erp.get('shipped', 0)}"
            f"  mails {self.mailbox.count}"
        )

    async def _sync(self) -> dict[str, Any]:
        service = self.eng.services.get("sync")
        return await service.status("customers") if service is not None else {}

    async def settle(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            totals, _, _ = await self._runs()
            if not (totals.get("queued") or totals.get("running")):
                return
            await asyncio.sleep(0.2)

    async def final(self, driver: _Traffic) -> None:
        await self.report(None)
        click.echo("\nThe sales team did: " + ", ".join(f"{k} {v}" for k, v in sorted(driver.done.items())))
        dead = await self.eng.db.list_runs(store.RunFilter(statuses=(store.RunStatus.DEAD_LETTER,), limit=5))
        for run in dead:
            click.echo(f"Dead letter: {run.flow_id} {run.run_id}: {_short(run.error)}")
        mails = sorted(self.setup.mail.glob("*.eml"))
        if mails:
            to, subject, _ = read_mail(mails[-1])
            click.echo(f"Last mail:   to {to}: {subject}")
        root = self.setup.project
        click.echo("\nLook closer (with --keep):")
        click.echo(f"  seamflow runs list --project {root}")
        click.echo(f"  seamflow dead-letters --project {root}")
        click.echo(f"  seamflow sync list --project {root}")


def _short(error: Any) -> str:
    text = error.get("message", error) if isinstance(error, dict) else error
    return str(text).replace("\n", " ")[:200]
