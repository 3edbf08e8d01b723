"""The process-insight part of the demo's summary: what `seamflow kpi` and `seamflow insight map` show
on the demo's event log — order-to-cash cycle time (by region), approval waiting time per approver,
and the process maps written as HTML (for a person) and JSON (for a program)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from seamflow import errors

if TYPE_CHECKING:
    from seamflow import insight, store

__all__ = ["MAP_OBJECT_TYPES", "InsightFacts", "print_insight", "read_insight"]

MAP_OBJECT_TYPES = ("order", "purchase_request", "reimbursement")
"""The object types whose process maps the demo writes: lead to cash, procure to pay, reimbursement."""

_ORDER_TO_CASH = "order_to_cash"
_APPROVAL_WAIT = "approval_wait"


@dataclass(frozen=True, slots=True)
class Measure:
    """One row of a duration KPI: who or what it is for, how many cases or events, median and p90."""

    label: str
    count: int
    median_ms: float
    p90_ms: float


@dataclass(frozen=True, slots=True)
class InsightFacts:
    """What the demo's event log says, through the project's KPI file and the process maps."""

    order_to_cash: Measure | None
    """Contract signed → payment received, over every order that was paid (None: no order was paid)."""
    by_region: tuple[Measure, ...]
    """The same per sales region."""
    approvers: tuple[Measure, ...]
    """Approval waiting time per approver (the name they have in the directory), over their decisions."""
    maps: tuple[Path, ...]
    """The process maps written, an HTML and a JSON file per object type that has cases."""


async def read_insight(log: store.EventLogReads, names: dict[str, str], project: Path, out: Path) -> InsightFacts:
    """Compute the demo's KPIs over the event log and write its process maps into `out`.

    Args:
        log: the store's event log.
        names: login -> display name, for the approvers.
        project: the demo's project folder (its `kpis.yaml`).
        out: the folder the maps are written to (made if need be).

    Raises:
        errors.SeamflowError: the KPI file cannot be read, or the log cannot.
    """
    from seamflow import insight

    spec = insight.load_kpis(project / "kpis.yaml")
    kpis = {k.id: k for k in spec.kpis}
    found = insight.Insight(log)
    try:
        o2c = kpis[_ORDER_TO_CASH]
        overall = await _rows(found, o2c.model_copy(update={"by": []}), spec)
        regions = await _rows(found, o2c, spec)
        waits = await _rows(found, kpis[_APPROVAL_WAIT], spec)
        maps = await _write_maps(found, out)
    finally:
        found.close()
    return InsightFacts(
        order_to_cash=_measure(overall[0], "", "cases") if overall else None,
        by_region=tuple(_measure(row, str(row.get("region") or "—"), "cases") for row in regions),
        approvers=tuple(
            _measure(row, names.get(str(row["resource"]), str(row["resource"])), "events")
            for row in waits
            if row.get("resource")
        ),
        maps=tuple(maps),
    )


async def _rows(found: insight.Insight, kpi: insight.Kpi, spec: insight.KpiFile) -> list[dict[str, object]]:
    try:
        result = await found.kpi(kpi, spec.offset())
    except errors.NotFound:  # no event of the object type yet (Ctrl-C early): nothing to measure
        return []
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def _measure(row: dict[str, object], label: str, count: str) -> Measure:
    def number(name: str) -> float:
        value = row.get(name)
        return float(value) if isinstance(value, int | float) else 0.0

    return Measure(label, int(number(count)), number("median_ms"), number("p90_ms"))


async def _write_maps(found: insight.Insight, out: Path) -> list[Path]:
    from seamflow import insight

    written: list[Path] = []
    for object_type in MAP_OBJECT_TYPES:
        try:
            drawn = await found.process_map(insight.CaseFilter(object_type))
        except errors.NotFound:
            continue
        written += await asyncio.to_thread(_save_map, drawn, object_type, out)
    return written


def _save_map(drawn: insight.ProcessMap, object_type: str, out: Path) -> list[Path]:
    from seamflow import insight

    out.mkdir(parents=True, exist_ok=True)
    html, as_json = out / f"process-map-{object_type}.html", out / f"process-map-{object_type}.json"
    html.write_text(insight.map_html(drawn, f"Process map: {object_type}"), encoding="utf-8")
    as_json.write_text(json.dumps(drawn.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
    return [html, as_json]


_TEXT = {
    "en": {
        "title": "Process insight (seamflow kpi, from the events the flows emitted):",
        "o2c": "Order to cash (contract signed → payment received): median {median}, p90 {p90}, {count} orders",
        "no_o2c": "Order to cash: no order was paid yet",
        "region": "{label}: median {median}, {count} orders",
        "approvers": "Approval waiting time per approver (Seamflow inbox):",
        "approver": "{label}: median {median}, p90 {p90}, {count} decisions",
        "no_approvers": "Approval waiting time per approver: no decision yet",
        "maps": "Process maps (open the .html in a browser; the .json is the same map for programs):",
        "units": (" s", " min", " h", " d"),
    },
    "zh": {
        "title": "流程洞察（seamflow kpi，基于各流程发出的业务事件）：",
        "o2c": "订单处理周期（合同签约 → 回款）：中位数 {median}，90 分位 {p90}，共 {count} 张订单",
        "no_o2c": "订单处理周期：尚无订单回款",
        "region": "{label}：中位数 {median}，{count} 张订单",
        "approvers": "各审批人审批时长（Seamflow 审批待办）：",
        "approver": "{label}：中位数 {median}，90 分位 {p90}，{count} 次审批",
        "no_approvers": "各审批人审批时长：尚无审批",
        "maps": "流程图（.html 用浏览器打开；.json 为同一流程图的数据）：",
        "units": (" 秒", " 分钟", " 小时", " 天"),
    },
}


def print_insight(facts: InsightFacts, languages: tuple[str, ...]) -> None:
    """Print the insight part of the summary in each of `languages`."""
    for lang in languages:
        text = _TEXT[lang]
        units = text["units"]
        assert isinstance(units, tuple)
        click.echo("\n" + str(text["title"]))
        if facts.order_to_cash is None:
            click.echo("  " + str(text["no_o2c"]))
        else:
            click.echo("  " + _line(str(text["o2c"]), facts.order_to_cash, units))
            for region in facts.by_region:
                click.echo("    " + _line(str(text["region"]), region, units))
        if not facts.approvers:
            click.echo("  " + str(text["no_approvers"]))
        else:
            click.echo("  " + str(text["approvers"]))
            for approver in facts.approvers:
                click.echo("    " + _line(str(text["approver"]), approver, units))
        if facts.maps:
            click.echo("  " + str(text["maps"]))
            for path in facts.maps:
                click.echo(f"    {path}")


def _line(template: str, measure: Measure, units: tuple[str, ...]) -> str:
    return template.format(
        label=measure.label,
        count=measure.count,
        median=_duration(measure.median_ms, units),
        p90=_duration(measure.p90_ms, units),
    )


def _duration(ms: float, units: tuple[str, ...]) -> str:
    seconds = ms / 1000
    for limit, divisor, unit in ((60, 1, units[0]), (3600, 60, units[1]), (172_800, 3600, units[2])):
        if seconds < limit:
            return f"{seconds / divisor:.1f}{unit}"
    return f"{seconds / 86400:.1f}{units[3]}"
