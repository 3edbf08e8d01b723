"""The dead letters of `seamflow demo` in plain words: what went wrong, and who acts on it.

The demo makes mistakes on purpose, as a sales team and a back office do: a contract for a
product the ERP does not carry (the seeded contract 南山工厂存储扩容, and about one signed contract
in 25), and ERP customers with a landline where the shared customer record wants a mobile number
(three seeded ones, and about one new ERP customer in 50). Each becomes a dead letter that waits
for a person; this module says so in English and Chinese. A dead letter it cannot explain is
marked as such: it is not one of the demo's mistakes, and an engineer should look at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from seamflow import store
from seamflow.ids import Json

__all__ = ["DELIBERATE", "WHAT", "WHO", "Explained", "explain"]

DELIBERATE = frozenset({"unknown_product", "landline"})
"""The kinds of mistakes the demo makes on purpose."""

WHAT = {
    "unknown_product": {
        "en": "a signed contract lists a product the ERP does not carry, so no order was created",
        "zh": "已签合同中的产品在 ERP 中不存在，未生成销售订单",
    },
    "landline": {
        "en": "an ERP customer has a landline where the shared customer record needs a mobile number,"
        " so it was not copied to the CRM",
        "zh": "ERP 客户的电话是座机号码，客户主数据要求手机号，因此未同步到 CRM",
    },
    "tax_id_taken": {
        "en": "the CRM already had this customer before the sync read it (not one of the demo's mistakes)",
        "zh": "同步读取前 CRM 中已有该客户（并非演示中的故意错误）",
    },
    "record_invalid": {
        "en": "a customer does not fit the shared customer record (not one of the demo's mistakes)",
        "zh": "客户资料不符合客户主数据要求（并非演示中的故意错误）",
    },
    "other": {
        "en": "something the demo did not plan (not one of its mistakes)",
        "zh": "演示未预料的问题（并非演示中的故意错误）",
    },
}
"""By kind and language: what went wrong, for a business reader."""

WHO = {
    "unknown_product": {
        "en": "sales: correct the product in the contract, then replay the run",
        "zh": "销售：更正合同中的产品后重放该运行",
    },
    "landline": {
        "en": "whoever keeps customer data in the ERP: enter a mobile number; the edit syncs by itself",
        "zh": "ERP 客户资料维护人：改为手机号，修改后自动同步",
    },
    "tax_id_taken": {"en": "an engineer: seamflow runs show <run>", "zh": "工程师：seamflow runs show <运行>"},
    "record_invalid": {"en": "an engineer: seamflow runs show <run>", "zh": "工程师：seamflow runs show <运行>"},
    "other": {"en": "an engineer: seamflow runs show <run>", "zh": "工程师：seamflow runs show <运行>"},
}
"""By kind and language: who acts, and how."""


@dataclass(frozen=True, slots=True)
class Explained:
    """A dead letter in plain words: its kind (a key of `WHAT` and `WHO`) and the record it is about."""

    run_id: str
    kind: str
    detail: str
    """The contract, customer or message it is about, e.g. `HT-2026-000002 深圳华光电子有限公司: SF-NAS-4B`."""
    record: str | None = None
    """`<side>:<key>` of the sync record it is about, if any."""

    @property
    def is_deliberate(self) -> bool:
        """One of the mistakes the demo makes on purpose."""
        return self.kind in DELIBERATE


_SKU = re.compile(r"no active product with sku\W*([A-Z0-9][A-Z0-9_-]*)")
_LANDLINE = re.compile(r"(\w+) record (\S+): phone\W+([0-9][0-9-]*)\W+is not a mainland China mobile number")
_INVALID = re.compile(r"sync \S+, (\w+) record (\S+): (.+)")
_TAX_ID = re.compile(r"already the tax id of customer (\d+)")


def explain(run: store.RunSummary, event_body: Json = None) -> Explained:
    """Say what the dead letter `run` (whose event carried `event_body`) is about."""
    message = _message(run.error)
    run_id = str(run.run_id)
    if found := _SKU.search(message):
        return Explained(run_id, "unknown_product", f"{_contract(event_body)}: {found.group(1)}")
    if found := _LANDLINE.search(message):
        side, key, phone = found.groups()
        return Explained(run_id, "landline", f"{side.upper()} {key}: {phone}", f"{side}:{key}")
    if found := _TAX_ID.search(message):
        return Explained(run_id, "tax_id_taken", f"CRM customer {found.group(1)}")
    if found := _INVALID.search(message):
        side, key, problem = found.groups()
        return Explained(run_id, "record_invalid", f"{side.upper()} {key}: {problem}", f"{side}:{key}")
    return Explained(run_id, "other", f"{run.flow_id}: {message.replace(chr(10), ' ')[:160]}")


def _contract(body: Json) -> str:
    """`HT-… customer name` of a CRM contract event, or `a contract` if the event is not at hand."""
    if isinstance(body, dict) and isinstance(body.get("body"), dict):
        body = body["body"]  # the event as accepted: the webhook's body beside its headers
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return "a contract"
    customer = data.get("customer")
    name = customer.get("name") if isinstance(customer, dict) else None
    return " ".join(str(part) for part in (data.get("number"), name) if part)


def _message(error: object) -> str:
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error or "")
