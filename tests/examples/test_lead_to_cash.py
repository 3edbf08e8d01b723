"""Lead to cash end to end: the example CRM and ERP as real processes, `seamflow serve` on examples/lead-to-cash.

Contracts signed in the CRM become exactly one pending sales order each in the ERP; the ERP's
simulated back office approves, collects payment and ships; payment and shipping come back to
the CRM and the customer gets a mail; a customer edited on both sides converges by ownership.
Here (not under acceptance/) so it runs once, on SQLite: the CRM is SQLite-only anyway.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from seamflow.cli.demo import read_mail, uscc
from tests.support.server import Server, free_port
from tests.support.wait import eventually

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CRM_TOKEN, ERP_TOKEN, SECRET = "crm-l2c-token", "erp-l2c-token", "l2c-webhook-secret-5d1e8a"
PRODUCTS = [("CHAIR-ERG-01", "人体工学办公椅", "899.00"), ("PAPER-A4-70", "A4 复印纸", "129.90")]
NAMES = ["上海明德科技有限公司", "北京远航贸易有限公司", "Evergreen Trading Co. Ltd.", "深圳华光电子有限公司"]

pytestmark = pytest.mark.timeout(240)


@dataclass
class _Mailbox:
    folder: Path
    count: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        (self.folder / f"{self.count:05d}.eml").write_bytes(envelope.original_content or envelope.content)
        return "250 OK"


def _start(name: str, args: list[str], env: dict[str, str], folder: Path, port: int) -> subprocess.Popen[bytes]:
    with (folder / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", f"seamflow_{name}", *args, "--port", str(port), "--log-level", "warning"],
            stdout=log,
            stderr=log,
            env={**os.environ, **env, "PYTHONPATH": str(EXAMPLES / name)},
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, (folder / f"{name}.log").read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{name} did not start")


@dataclass
class _World:
    crm: httpx.AsyncClient
    erp: httpx.AsyncClient
    mail: Path
    server: Server
    crm_process: subprocess.Popen[bytes]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[_World]:
    from aiosmtpd.smtp import SMTP

    mail = tmp_path / "mail"
    mail.mkdir()
    mailbox = _Mailbox(mail)
    smtp_port, crm_port, erp_port, port = free_port(), free_port(), free_port(), free_port()
    smtp = await asyncio.get_running_loop().create_server(
        lambda: SMTP(mailbox, enable_SMTPUTF8=True), "127.0.0.1", smtp_port
    )
    erp = _start(
        "erp",
        ["--db", str(tmp_path / "erp.db"), "--seed", "--operator", "--operator-delay-s", "0.2:0.8"],
        {"ERP_API_TOKEN": ERP_TOKEN},
        tmp_path,
        erp_port,
    )
    hooks = f"http://127.0.0.1:{port}/hooks/crm"
    crm = _start(
        "crm",
        ["--db", str(tmp_path / "crm.db"), "--retry-initial-s", "0.3", "--retry-max-s", "2"],
        {
            "CRM_API_TOKEN": CRM_TOKEN,
            "CRM_WEBHOOK_SECRET": SECRET,
            "CRM_WEBHOOK_URL": f"{hooks}/contract-signed,{hooks}/contract-cancelled",
        },
        tmp_path,
        crm_port,
    )
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "lead-to-cash", project)
    env = {
        "SEAMFLOW_VAR_CRM_URL": f"http://127.0.0.1:{crm_port}",
        "SEAMFLOW_VAR_ERP_URL": f"http://127.0.0.1:{erp_port}",
        "SEAMFLOW_VAR_SMTP_HOST": "127.0.0.1",
        "SEAMFLOW_VAR_SMTP_PORT": str(smtp_port),
        "SEAMFLOW_VAR_SALES_OPS_EMAIL": "sales-ops@example.cn",
        "SEAMFLOW_SECRET_CRM_TOKEN": CRM_TOKEN,
        "SEAMFLOW_SECRET_ERP_TOKEN": ERP_TOKEN,
        "SEAMFLOW_SECRET_CRM_WEBHOOK": SECRET,
    }
    server = Server(project, env=env, port=port)
    server.env.pop("SEAMFLOW_DATABASE_URL", None)
    try:
        await server.start()
        async with (
            httpx.AsyncClient(base_url=env["SEAMFLOW_VAR_CRM_URL"], headers=_bearer(CRM_TOKEN), timeout=10) as c,
            httpx.AsyncClient(base_url=env["SEAMFLOW_VAR_ERP_URL"], headers=_bearer(ERP_TOKEN), timeout=10) as e,
        ):
            yield _World(c, e, mail, server, crm)
    finally:
        server.kill()
        for process in (crm, erp):
            process.send_signal(signal.SIGTERM)
            process.wait(10)
        smtp.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _customer(crm: httpx.AsyncClient, rng: random.Random, name: str) -> dict[str, Any]:
    body = {
        "name": name,
        "phone": f"13{rng.randrange(3, 10)}{rng.randrange(10**8):08d}",
        "email": f"buyer{rng.randrange(10**6)}@example.cn",
        "tax_id": uscc(rng, "310115"),
        "address": "上海市浦东新区世纪大道100号",
        "credit_limit": "900000.00",
    }
    answer = await crm.post("/customers", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def _sign(crm: httpx.AsyncClient, customer: dict[str, Any], qty: int) -> dict[str, Any]:
    lines = [{"sku": s, "name": n, "qty": qty + i, "unit_price": p} for i, (s, n, p) in enumerate(PRODUCTS)]
    draft = await crm.post("/contracts", json={"customer_id": customer["id"], "title": "办公家具", "lines": lines})
    assert draft.status_code == 201, draft.text
    signed = await crm.post(f"/contracts/{draft.json()['id']}/sign")
    assert signed.status_code == 200, signed.text
    return dict(signed.json())


async def _orders(erp: httpx.AsyncClient, ref: str) -> list[dict[str, Any]]:
    answer = await erp.get("/sales-orders", params={"external_ref": ref})
    return list(answer.json()["items"])


async def _dead_letters(world: _World) -> list[dict[str, Any]]:
    async with world.server.client() as client:
        runs = (await client.get("/api/v1/runs", params={"status": "dead_letter"})).json()
    items = runs["items"] if isinstance(runs, dict) else runs
    return [r for r in items if not str(r.get("flow", "")).startswith("sync.")]


async def test_signed_contracts_become_one_order_each_and_payment_and_shipping_come_back(world: _World) -> None:
    rng = random.Random(7)
    customers = [await _customer(world.crm, rng, name) for name in NAMES]
    contracts = [await _sign(world.crm, customers[i % len(customers)], i + 1) for i in range(6)]
    # the CRM delivers the first signature again (at least once): still one order
    deliveries = (await world.crm.get("/webhooks/deliveries", params={"event_id": ""})).json()["items"]
    for delivery in deliveries:
        if delivery["event"] == "contract.signed":
            await world.crm.post(f"/webhooks/deliveries/{delivery['id']}/redeliver")
            break

    async def ordered() -> None:
        for contract in contracts:
            orders = await _orders(world.erp, contract["number"])
            assert len(orders) == 1, (contract["number"], orders)
            order = orders[0]
            assert Decimal(order["total"]) == Decimal(contract["amount"])
            assert [(x["sku"], x["qty"], Decimal(x["unit_price"])) for x in order["lines"]] == [
                (x["sku"], x["qty"], Decimal(x["unit_price"])) for x in contract["lines"]
            ]
            erp_customer = (await world.erp.get(f"/customers/{order['customer_id']}")).json()
            assert erp_customer["tax_id"] == contract["customer"]["tax_id"]
            assert erp_customer["name"] == contract["customer"]["name"]
            crm_contract = (await world.crm.get(f"/contracts/{contract['id']}")).json()
            assert crm_contract["erp_order_no"] == order["order_no"]

    await eventually(ordered, timeout=60, interval=0.5)

    async def paid_and_shipped() -> None:
        for contract in contracts:
            crm_contract = (await world.crm.get(f"/contracts/{contract['id']}")).json()
            assert crm_contract["payment_status"] == "paid", crm_contract
            assert crm_contract["amount_received"] == contract["amount"]
            assert crm_contract["shipping_status"] == "shipped" and crm_contract["tracking_no"]
        mails = [read_mail(p) for p in sorted(world.mail.glob("*.eml"))]
        shipped = [m for m in mails if "发货通知" in m[1]]
        assert len(shipped) == len(contracts), [m[1] for m in mails]
        for contract in contracts:
            assert any(contract["customer"]["name"] in s and contract["customer"]["email"] in t for t, s, _ in shipped)

    await eventually(paid_and_shipped, timeout=90, interval=1)
    assert await _dead_letters(world) == []
    # Process insight over the business events the flows emitted: the example's KPI file and the map.
    kpis = yaml.safe_load((EXAMPLES / "lead-to-cash" / "kpis.yaml").read_text(encoding="utf-8"))
    async with world.server.client() as client:
        measured = {k["id"]: k["rows"] for k in (await client.post("/api/v1/insight/kpis", json=kpis)).json()}
        found = (await client.get("/api/v1/insight/map", params={"object_type": "order"})).json()
    assert sum(row["cases"] for row in measured["order_to_cash"]) == len(contracts)  # one row per region
    # the customers are registered in Shanghai (division 310115 in their credit code): region 华东
    assert [row["region"] for row in measured["order_to_cash"]] == ["华东"]
    assert measured["order_to_shipment"][0]["cases"] == len(contracts)
    assert found["cases"] == len(contracts) and found["start_activities"] == {"Contract signed": len(contracts)}


async def test_a_customer_edited_on_both_sides_converges_by_ownership(world: _World) -> None:
    customer = await _customer(world.crm, random.Random(11), "杭州西湖文化传媒有限公司")

    async def in_erp() -> dict[str, Any]:
        items = (await world.erp.get("/customers", params={"tax_id": customer["tax_id"]})).json()["items"]
        assert len(items) == 1 and items[0]["phone"] == customer["phone"], items
        return dict(items[0])

    erp_customer = await eventually(in_erp, timeout=30, interval=0.5)
    crm_url, erp_url = f"/customers/{customer['id']}", f"/customers/{erp_customer['id']}"
    # the CRM owns the phone: its edit reaches the ERP
    assert (await world.crm.patch(crm_url, json={"phone": "13911112222"})).status_code == 200
    await eventually(lambda: _field_is(world.erp, erp_url, "phone", "13911112222"), timeout=30, interval=0.5)
    # the ERP owns the credit limit: its credit edit reaches the CRM, its phone edit loses and is written back
    patch = {"phone": "13700001111", "credit_limit": "120000.00"}
    assert (await world.erp.patch(erp_url, json=patch)).status_code == 200
    await eventually(lambda: _field_is(world.crm, crm_url, "credit_limit", "120000.00"), timeout=30, interval=0.5)
    await eventually(lambda: _field_is(world.erp, erp_url, "phone", "13911112222"), timeout=30, interval=0.5)
    erp_now = (await world.erp.get(erp_url)).json()
    assert Decimal(erp_now["credit_limit"]) == Decimal("120000.00") and erp_now["phone"] == "13911112222"


async def test_a_losing_edit_of_an_owned_field_is_written_back(world: _World) -> None:
    customer = await _customer(world.crm, random.Random(13), "苏州工业园区恒信物流有限公司")
    crm_url = f"/customers/{customer['id']}"
    erp_id = await eventually(lambda: _erp_has(world.erp, customer["tax_id"]), timeout=30, interval=0.5)
    assert (await world.erp.patch(f"/customers/{erp_id}", json={"credit_limit": "80000.00"})).status_code == 200
    await eventually(lambda: _field_is(world.crm, crm_url, "credit_limit", "80000.00"), timeout=30, interval=0.5)
    assert (await world.crm.patch(crm_url, json={"credit_limit": "1.00"})).status_code == 200
    await eventually(lambda: _field_is(world.crm, crm_url, "credit_limit", "80000.00"), timeout=15, interval=0.5)


async def _erp_has(erp: httpx.AsyncClient, tax_id: str) -> int:
    items = (await erp.get("/customers", params={"tax_id": tax_id})).json()["items"]
    assert items
    return int(items[0]["id"])


async def _field_is(client: httpx.AsyncClient, url: str, name: str, value: str) -> None:
    record = (await client.get(url)).json()
    assert record[name] is not None and str(record[name]) in (value, str(Decimal(value))), record


async def test_a_customer_the_crm_has_but_the_sync_has_not_read_is_linked_not_dead_lettered(world: _World) -> None:
    # A contract signed for a new CRM customer makes the contract flow create it in the ERP at once;
    # under load the ERP's feed can bring that record before the CRM's feed brings the CRM's. The
    # CRM is paused (SIGSTOP) right after the customer is created, so its feed cannot read it, and
    # resumed once the sync works on the ERP's record: the sync must link the CRM's customer by tax
    # id. Before create_customer took if_tax_id_exists=return this was a 409 dead letter ("already
    # the tax id of customer N") although both systems held the same customer.
    # every serve process has opened its connections (a process still starting would wait for the
    # paused CRM's OpenAPI document, fail and be restarted, resetting the requests queued for it)
    await eventually(lambda: _all_processes_serve(world), timeout=30, interval=0.2)
    customer = await _customer(world.crm, random.Random(17), "无锡锡山精密机械有限公司")
    before = await _sync_runs(world, "sync.customers.erp")
    world.crm_process.send_signal(signal.SIGSTOP)
    try:
        body = {key: customer[key] for key in ("name", "phone", "email", "address")}
        answer = await world.erp.put(f"/customers/by-tax-id/{customer['tax_id']}", json=body)
        assert answer.status_code in (200, 201), answer.text
        erp_id = str(answer.json()["id"])

        async def erp_record_taken() -> None:
            assert len(await _sync_runs(world, "sync.customers.erp")) > len(before)

        await eventually(erp_record_taken, timeout=15, interval=0.1)
    finally:
        world.crm_process.send_signal(signal.SIGCONT)

    async def linked() -> None:
        async with world.server.client() as client:
            report = (await client.post("/api/v1/syncs/customers/check")).json()
        assert {"side": "erp", "key": erp_id} not in report["unlinked"], report
        assert {"side": "crm", "key": str(customer["id"])} not in report["unlinked"], report
        crm = (await world.crm.get("/customers", params={"per_page": 500})).json()["items"]
        assert [c["tax_id"] for c in crm].count(customer["tax_id"]) == 1, "linked, not doubled"
        runs = await _sync_runs(world, "sync.customers.erp")
        assert all(r["status"] in ("completed", "dead_letter") for r in runs), runs

    await eventually(linked, timeout=30, interval=0.5)
    async with world.server.client() as client:
        runs = (await client.get("/api/v1/runs", params={"status": "dead_letter"})).json()
    items = runs["items"] if isinstance(runs, dict) else runs
    # the seeded ERP customers with a landline are the only dead letters (the CRM needs a mobile number)
    assert all("mainland China mobile number" in str(r.get("error")) for r in items), items


async def _sync_runs(world: _World, flow: str) -> list[dict[str, Any]]:
    async with world.server.client() as client:
        runs = (await client.get("/api/v1/runs", params={"flow": flow, "limit": 1000})).json()
    return list(runs["items"] if isinstance(runs, dict) else runs)


async def _all_processes_serve(world: _World) -> None:
    from seamflow.cli import supervisor

    wanted = os.environ.get("SEAMFLOW_PROCESSES", "auto")
    expected = supervisor.default_processes() if wanted == "auto" else int(wanted)
    async with world.server.client() as client:
        workers = (await client.get("/api/v1/workers")).json()
    assert len({w["pid"] for w in workers}) >= expected, workers
