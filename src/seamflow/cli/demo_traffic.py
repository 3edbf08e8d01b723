"""The sales team of `seamflow demo`: realistic traffic at the example CRM and ERP.

New customers, contracts signed, edits on both sides, a few cancellations and a few bad records
(a product the ERP does not carry, a landline where a mobile number is wanted).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seamflow.cli.demo_systems import System

if TYPE_CHECKING:
    import aiohttp

    from seamflow.cli.demo_watch import Watch

__all__ = ["Traffic", "uscc"]

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


@dataclass
class Traffic:
    """Realistic traffic at the CRM and the ERP; remembers what it made so edits have targets."""

    crm: System
    erp: System
    rng: random.Random
    customers: list[dict[str, Any]] = field(default_factory=list)
    signed: list[dict[str, Any]] = field(default_factory=list)
    done: dict[str, int] = field(default_factory=dict)
    refused: int = 0

    async def run(self, rate: float, duration_s: float, watch: Watch) -> None:
        """Act about `rate` times a second for `duration_s`, reporting through `watch` every 2 s."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        next_report = start + 2
        actions = 0
        import aiohttp  # only the demo needs it; `seamflow --help` should not pay for it

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
    def _auth(system: System) -> dict[str, str]:
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
