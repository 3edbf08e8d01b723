"""The final summary of `seamflow demo` for a business reader, in English and Chinese.

Beside the engineer's figures (runs, sync changes) it says what lead to cash achieved (see
`demo_facts`), which problems wait for a person and why (see `demo_problems`), and whether the CRM
and the ERP agree on every customer the sync links (`Agreement`, from the sync's reconciliation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from seamflow.cli.demo_facts import Facts, percentile
from seamflow.cli.demo_problems import WHAT, WHO, Explained

if TYPE_CHECKING:
    from seamflow import engine, store

__all__ = ["LANGUAGES", "Agreement", "agreement_lines", "check_agreement", "print_summary"]

LANGUAGES = ("en", "zh")
"""The languages of the summary, in the order printed."""

_SIDE_NAMES = {"crm": "CRM", "erp": "ERP"}
_LISTED = 8
"""Dead letters listed per kind; `seamflow runs dead-letters` lists them all."""
_SAME = {"credit_limit": frozenset({"0.00", "None"})}
"""Values the sync's own mapping treats as the same fact: the CRM has no "no limit", so the ERP's
none (no credit limit) is written to the CRM as 0.00 (see syncs/customers.yaml). `sync check`
compares the values as they are and lists these; a business reader would call them equal."""
_FIELDS = {
    "en": {
        "name": "name",
        "phone": "phone",
        "email": "e-mail",
        "tax_id": "tax id",
        "address": "address",
        "credit_limit": "credit limit",
    },
    "zh": {
        "name": "名称",
        "phone": "电话",
        "email": "邮箱",
        "tax_id": "税号",
        "address": "地址",
        "credit_limit": "信用额度",
    },
}
_TEXT = {
    "en": {
        "title": "Lead to cash, for the business:",
        "orders": "Orders created in the ERP from signed contracts, typed by nobody: {orders} of {signed}",
        "wait": "Time from contract signed to ERP order: median {median}, p95 {p95}",
        "payments": "Payments synced back to the CRM: {payments} contracts;"
        " shipments with tracking numbers: {shipments}",
        "mails": "Mails sent: {customers} shipping notices to customers, {operations} to sales operations",
        "retyping": "Manual re-typing avoided: {fields} fields (customer and contract number per order; product,"
        " quantity and price per line; amount received; shipping status and tracking number)",
        "problems": "Problems caught, waiting for a person: {count} dead letters",
        "no_problems": "Problems caught, waiting for a person: none",
        "more": "… and {count} more (seamflow runs dead-letters lists them all)",
        "mailbox": "and {count} in sales operations' mailbox: {cancelled} cancelled contracts whose order had"
        " shipped or never existed, {amounts} orders whose total differs from the contract",
        "seconds": "{value} s",
        "not_compared": "CRM and ERP customers not compared: the demo stopped before every feed had caught up",
    },
    "zh": {
        "title": "线索到回款 · 业务摘要：",
        "orders": "已签合同自动生成 ERP 销售订单（无人工录入）：{orders} 张，共 {signed} 份已签合同",
        "wait": "合同签约到 ERP 订单生成：中位数 {median}，95 分位 {p95}",
        "payments": "回款同步回 CRM：{payments} 份合同；发货及运单号回写：{shipments} 份",
        "mails": "已发送邮件：发货通知 {customers} 封（客户），待处理提醒 {operations} 封（销售运营）",
        "retyping": "免去人工重复录入：{fields} 个字段"
        "（每张订单的客户与合同号；每行的产品、数量、单价；回款金额；发货状态与运单号）",
        "problems": "发现的问题（待人工处理）：{count} 个死信（dead letter）",
        "no_problems": "发现的问题（待人工处理）：无",
        "more": "……另有 {count} 个（seamflow runs dead-letters 列出全部）",
        "mailbox": "另有 {count} 个在销售运营邮箱中：{cancelled} 份已取消合同的订单已发货或不存在，"
        "{amounts} 张订单金额与合同不一致",
        "seconds": "{value} 秒",
        "not_compared": "未比对 CRM 与 ERP 客户：演示在各数据源同步完成前已停止",
    },
}


_ONE_SIDED = {
    "en": {
        "parked": "{count} customers only in the {system} ({customers}): each waits as a problem above",
        "unwritten": "{count} customers only in the {system} ({customers}): writing them to the other system failed",
        "unlinked": "{count} customers only in the {system} ({customers}): not linked by the sync",
    },
    "zh": {
        "parked": "{count} 家客户仅在 {system} 中（{customers}）：均为上方待人工处理的问题",
        "unwritten": "{count} 家客户仅在 {system} 中（{customers}）：写入另一系统失败",
        "unlinked": "{count} 家客户仅在 {system} 中（{customers}）：尚未被同步关联",
    },
}


@dataclass(frozen=True, slots=True)
class Agreement:
    """Whether the CRM and the ERP hold the same customers, from the sync's reconciliation."""

    linked: int
    """Customers linked in both systems, compared field by field."""
    differing: tuple[tuple[str, str, str, str], ...]
    """(customer, field, the CRM's value, the ERP's value) for each field that differs."""
    one_sided: tuple[tuple[str, str, str], ...]
    """(side holding it, customer, why) for each customer only one system has; why is `parked` (its
    dead letter waits for a person), `unwritten` (writing it to the other system failed) or `unlinked`."""

    @property
    def agrees(self) -> bool:
        """Every linked customer is the same in both systems."""
        return not self.differing


async def check_agreement(eng: engine.Engine, sync_id: str, explained: Sequence[Explained]) -> Agreement:
    """Compare the CRM's and the ERP's customers through the sync `sync_id` (both systems must be up)."""
    from seamflow import sync

    service = eng.services.get(sync.SyncService)
    assert service is not None, "the demo's project defines the customers sync"
    report = await service.check(sync_id)
    states = {state.canonical_id: state for state in await service.db.list_sync_records(sync_id)}
    parked = {e.record for e in explained if e.record}
    one_sided = []
    for item in report.missing:
        if isinstance(item, dict) and (state := states.get(str(item["canonical_id"]))) is not None:
            holder = next((side for side in state.links if side != item["side"]), str(item["side"]))
            one_sided.append((holder, _customer(state), "unwritten"))
    for item in report.unlinked:
        if isinstance(item, dict):
            is_parked = f"{item['side']}:{item['key']}" in parked
            one_sided.append((str(item["side"]), str(item["key"]), "parked" if is_parked else "unlinked"))
    differing = []
    for item in report.differing:
        if not isinstance(item, dict):
            continue
        field, crm, erp = str(item["field"]), str(item.get("crm")), str(item.get("erp"))
        if {crm, erp} <= _SAME.get(field, frozenset()):
            continue
        state = states.get(str(item["canonical_id"]))
        differing.append((_customer(state) if state else str(item["canonical_id"]), field, crm, erp))
    linked = report.compared - len({str(i["canonical_id"]) for i in report.missing if isinstance(i, dict)})
    return Agreement(linked, tuple(differing), tuple(one_sided))


def _customer(state: store.SyncState) -> str:
    """A customer as a business reader knows it: its name, and its tax id if it has one."""
    name, tax_id = state.data.get("name"), state.data.get("tax_id")
    return f"{name} ({tax_id})" if tax_id else str(name)


def print_summary(
    facts: Facts, problems: Sequence[Explained], agreement: Agreement | None, languages: Sequence[str]
) -> None:
    """Print the business summary in each of `languages` (`agreement` None: the systems were not compared)."""
    for lang in languages:
        text = _TEXT[lang]
        click.echo("\n" + text["title"])
        seconds = text["seconds"]
        median, p95 = (_seconds(percentile(facts.waits_s, q), seconds) for q in (0.5, 0.95))
        click.echo("  " + text["orders"].format(orders=facts.orders, signed=facts.contracts_signed))
        click.echo("  " + text["wait"].format(median=median, p95=p95))
        click.echo("  " + text["payments"].format(payments=facts.payments, shipments=facts.shipments))
        click.echo(
            "  " + text["mails"].format(customers=facts.mails_to_customers, operations=facts.mails_to_operations)
        )
        click.echo("  " + text["retyping"].format(fields=facts.fields_not_retyped))
        _print_problems(problems, lang)
        if facts.mails_to_operations:
            click.echo(
                "    "
                + text["mailbox"].format(
                    count=facts.mails_to_operations,
                    cancelled=facts.cancelled_for_a_person,
                    amounts=facts.amounts_differing,
                )
            )
        for line in agreement_lines(agreement, lang):
            click.echo("  " + line)


def _print_problems(problems: Sequence[Explained], lang: str) -> None:
    text = _TEXT[lang]
    if not problems:
        click.echo("  " + text["no_problems"])
        return
    click.echo("  " + text["problems"].format(count=len(problems)))
    groups: dict[str, list[Explained]] = {}
    for problem in problems:
        groups.setdefault(problem.kind, []).append(problem)
    for kind, members in groups.items():
        click.echo(f"    {len(members)} × {WHAT[kind][lang]}")
        for problem in members[:_LISTED]:
            click.echo(f"        {problem.detail}  ({problem.run_id})")
        if len(members) > _LISTED:
            click.echo("        " + text["more"].format(count=len(members) - _LISTED))
        click.echo(f"        → {WHO[kind][lang]}")


def agreement_lines(agreement: Agreement | None, lang: str) -> list[str]:
    """The agreement in plain words (`agreement` None: the systems were not compared)."""
    if agreement is None:
        return [_TEXT[lang]["not_compared"]]
    names = _FIELDS[lang]
    compared = "、".join(names.values()) if lang == "zh" else ", ".join(names.values())
    if agreement.agrees:
        lines = [
            f"CRM and ERP agree on all {agreement.linked} linked customers ({compared} compared)"
            if lang == "en"
            else f"CRM 与 ERP 的 {agreement.linked} 家关联客户资料完全一致（已比对{compared}）"
        ]
    else:
        customers = len({who for who, *_ in agreement.differing})
        lines = [
            f"CRM and ERP differ on {customers} of {agreement.linked} linked customers:"
            if lang == "en"
            else f"CRM 与 ERP 的 {agreement.linked} 家关联客户中有 {customers} 家不一致："
        ]
        lines += [f"  {who}: {names.get(f, f)} — CRM {crm!r}, ERP {erp!r}" for who, f, crm, erp in agreement.differing]
    grouped: dict[tuple[str, str], list[str]] = {}
    for side, customer, why in agreement.one_sided:
        grouped.setdefault((side, why), []).append(customer)
    for (side, why), keys in sorted(grouped.items()):
        keys.sort(key=lambda key: (len(key), key))  # ERP ids in number order
        listed = ", ".join(keys[:_LISTED]) + (" …" if len(keys) > _LISTED else "")
        system = _SIDE_NAMES.get(side, side)
        lines.append("  " + _ONE_SIDED[lang][why].format(system=system, count=len(keys), customers=listed))
    return lines


def _seconds(value: float, template: str) -> str:
    return template.format(value=f"{value:.2f}" if value < 10 else f"{value:.1f}")
