"""Sample data for demos: Chinese and English company customers, contacts, opportunities and contracts.

The records are created through the CRM's own API (in process), so they are validated, numbered
and announced as events exactly like records a user creates.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from seamflow_crm import uscc

__all__ = ["create_sample_data"]

# name, mobile, e-mail, administrative division + organisation code, address, credit limit, status
_CUSTOMERS = [
    (
        "上海浦东发展有限公司",
        "13816881234",
        "purchase@pudong-dev.cn",
        "310115MA1K3YJ27",
        "上海市浦东新区世纪大道100号",
        "500000.00",
        "active",
    ),
    (
        "北京中关村科技有限公司",
        "13910102020",
        "caigou@zgc-tech.cn",
        "110108MA01B2C3D",
        "北京市海淀区中关村大街27号",
        "300000.00",
        "active",
    ),
    (
        "深圳南山智能制造有限公司",
        "15013800138",
        "it@nanshan-mfg.cn",
        "440305MA5F8G9H1",
        "深圳市南山区科技园南区高新南一道8号",
        "800000.00",
        "active",
    ),
    (
        "杭州西湖电子商务有限公司",
        "18867101234",
        "ops@xihu-ec.cn",
        "330106MA2B4C6D8",
        "杭州市西湖区文三路478号",
        "200000.00",
        "active",
    ),
    (
        "广州天河贸易有限公司",
        "13580001111",
        "finance@tianhe-trade.cn",
        "440106MA59A1B2C",
        "广州市天河区天河路385号",
        "150000.00",
        "active",
    ),
    (
        "成都高新软件有限公司",
        "17708001234",
        "admin@gaoxin-soft.cn",
        "510109MA61K2L3M",
        "成都市高新区天府大道中段1268号",
        "100000.00",
        "active",
    ),
    (
        "Suzhou Greenfield Trading Co., Ltd.",
        "13962100001",
        "orders@greenfield-sz.com",
        "320505MA1N2P3Q4",
        "No. 88 Suhong Road, Suzhou Industrial Park",
        "250000.00",
        "active",
    ),
    (
        "Nanjing Riverside Foods Co., Ltd.",
        "19951700002",
        "info@riverside-nj.com",
        "320102MA1R2T3U4",
        "No. 1 Zhongshan Road, Xuanwu District, Nanjing",
        "50000.00",
        "inactive",
    ),
]
_CONTACTS = [
    (0, "张伟", "采购经理", "13816880001", "zhangwei@pudong-dev.cn"),
    (0, "李娜", "财务主管", "13816880002", "lina@pudong-dev.cn"),
    (1, "王强", "IT 总监", "13910100003", "wangqiang@zgc-tech.cn"),
    (2, "刘洋", "设备部经理", "15013800004", "liuyang@nanshan-mfg.cn"),
    (6, "Emily Chen", "Procurement Lead", "13962100005", "emily.chen@greenfield-sz.com"),
]
_PRODUCTS = {
    "SF-ROUTER-AX3000": ("企业级无线路由器 AX3000", "899.00"),
    "SF-SWITCH-24G": ("24口千兆交换机", "1299.00"),
    "SF-CAM-4K": ("4K 网络摄像机", "459.00"),
    "SF-NAS-4B": ("4盘位网络存储", "3999.00"),
    "SF-SVC-INSTALL": ("上门安装调试服务", "199.00"),
}
# customer index, title, stage, amount, expected close, owner
_OPPORTUNITIES = [
    (0, "浦东园区网络改造", "negotiation", "86000.00", "2026-06-30", "陈静"),
    (1, "中关村办公室安防升级", "proposal", "42000.00", "2026-07-15", "赵磊"),
    (2, "南山工厂存储扩容", "won", "31990.00", "2026-05-20", "陈静"),
    (6, "Greenfield warehouse Wi-Fi", "qualified", "18000.00", "2026-08-01", "Kevin Zhou"),
]
# customer index, opportunity index or None, title, [(sku, qty)], what to do after creating it
_CONTRACTS = [
    (0, 0, "浦东园区网络改造一期", [("SF-SWITCH-24G", 20), ("SF-ROUTER-AX3000", 30), ("SF-SVC-INSTALL", 10)], "draft"),
    (2, 2, "南山工厂存储扩容", [("SF-NAS-4B", 8)], "sign"),
    (1, None, "中关村办公室摄像机", [("SF-CAM-4K", 40), ("SF-SVC-INSTALL", 4)], "cancel"),
]


def _tax_id(body: str) -> str:
    first17 = "91" + body
    return first17 + uscc.calc_check_character(first17)


async def create_sample_data(app: FastAPI) -> str:
    """Add the sample records unless the database has customers already; say what was created."""
    token = app.state.settings.api_token
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token}", "X-Origin": "seed"}
    async with httpx.AsyncClient(transport=transport, base_url="http://crm", headers=headers) as crm:
        existing = (await crm.get("/customers", params={"per_page": 1})).raise_for_status().json()
        if existing["total"]:
            return f"nothing: it has {existing['total']} customers already"
        customer_ids = []
        for name, phone, email, code, address, credit, status in _CUSTOMERS:
            body: dict[str, object] = {"name": name, "phone": phone, "email": email, "tax_id": _tax_id(code)}
            body["address"] = address
            created = await crm.post("/customers", json=body | {"credit_limit": credit, "status": status})
            customer_ids.append(created.raise_for_status().json()["id"])
        for index, name, title, phone, email in _CONTACTS:
            body = {"name": name, "title": title, "phone": phone, "email": email, "is_primary": title != "财务主管"}
            (await crm.post(f"/customers/{customer_ids[index]}/contacts", json=body)).raise_for_status()
        opportunity_ids = []
        for index, title, stage, amount, close, owner in _OPPORTUNITIES:
            body = {"customer_id": customer_ids[index], "title": title, "stage": stage, "amount": amount}
            created = await crm.post("/opportunities", json=body | {"expected_close_date": close, "owner": owner})
            opportunity_ids.append(created.raise_for_status().json()["id"])
        for index, opportunity, title, items, then in _CONTRACTS:
            lines = [
                {"sku": sku, "name": _PRODUCTS[sku][0], "qty": qty, "unit_price": _PRODUCTS[sku][1]}
                for sku, qty in items
            ]
            body = {"customer_id": customer_ids[index], "title": title, "lines": lines}
            if opportunity is not None:
                body["opportunity_id"] = opportunity_ids[opportunity]
            contract = (await crm.post("/contracts", json=body)).raise_for_status().json()
            if then != "draft":
                (await crm.post(f"/contracts/{contract['id']}/{then}")).raise_for_status()
    return (
        f"{len(_CUSTOMERS)} customers, {len(_CONTACTS)} contacts, {len(_OPPORTUNITIES)} opportunities, "
        f"{len(_CONTRACTS)} contracts"
    )
