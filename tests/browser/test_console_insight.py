"""The console's Syncs and Insight pages in a real headless Chromium against a real `seamflow serve`.

A CRM and an ERP (two SQLite databases) sync customers; both change one address while Seamflow is
stopped, so a conflict waits in the queue. An order-to-cash flow emits the events of twelve orders
of 2026 (华东, 华南, 华北; rework at the credit check, hand-offs between 王芳, 李娜 and 张伟), faster after
a go-live on 2026-03-15. 王芳 (operator) resolves the conflict; 刘洋 (viewer) may only look.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.test_sync import _erp_names, _now, _project, _q, _quiet
from tests.browser.conftest import LoopThread
from tests.support.server import TOKEN, Server

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

PASSWORD = "Hengda-2026-finance"
TAX = "91310000MA1FL1234X"
CRM_ADDRESS = "上海市黄浦区南京东路1号"
ERP_ADDRESS = "上海市静安区南京西路2号"
O2C = """
id: o2c
name: 订单到收款
trigger: {manual: {}}
steps:
  - id: events
    foreach: "{{ event.body.events }}"
    as: e
    steps:
      - id: happened
        emit:
          activity: "{{ e.activity }}"
          time: "{{ e.at }}"
          objects:
            order: {id: "{{ event.body.order_no }}", attributes: {region: "{{ event.body.region }}"}}
          attributes: {resource: "{{ e.who }}"}
"""
KPIS = """
timezone: "+08:00"
kpis:
  - {id: order_to_cash, name: 订单到回款周期, kind: cycle_time, object_type: order, from: 订单创建, to: 回款, sla: 5d,
     period: month}
  - {id: approval_wait, name: 财务审批等待, kind: waiting_time, object_type: order, activity: 财务审批, per: resource}
  - {id: paid_per_month, name: 每月回款订单, kind: throughput, object_type: order, activity: 回款, period: month}
  - {id: credit_rework, name: 信用审核返工, kind: rework, object_type: order, activity: 信用审核}
  - {id: contracts_signed, name: 签约合同, kind: throughput, object_type: contract, activity: 合同签约}
"""
GO_LIVE = "2026-03-15"
PEOPLE = {
    "wang.fang": {"name": "王芳", "mobile": "139-0211-3344", "roles": ["operator"]},
    "liu.yang": {"name": "刘洋", "mobile": "13700001234", "roles": ["viewer"]},
}
DESKTOP = {"width": 1280, "height": 720}


def _orders() -> list[dict[str, Any]]:
    """Twelve orders from February to April 2026; from the go-live on, approval and shipping are quicker."""
    regions = ["华东", "华南", "华北"]
    orders = []
    for n in range(12):
        start = datetime(2026, 2, 2, 9, 0, tzinfo=UTC) + timedelta(days=6 * n, hours=n)
        fast = start >= datetime(2026, 3, 15, tzinfo=UTC)
        steps = [("订单创建", "王芳", 0.0), ("信用审核", "李娜", 4.0)]
        if n % 4 == 1:  # the credit check is done twice: rework
            steps.append(("信用审核", "李娜", 20.0))
        steps += [
            ("财务审批", "张伟", 10.0 if fast else 40.0),
            ("发货", "王芳", 12.0 if fast else 30.0),
            ("开票", "李娜", 6.0),
            ("回款", "李娜", 30.0 if fast else 48.0),
        ]
        at, events = start, []
        for activity, who, hours in steps:
            at += timedelta(hours=hours)
            events.append({"activity": activity, "who": who, "at": at.isoformat()})
        orders.append({"order_no": f"SO-2026-{n + 101:04d}", "region": regions[n % 3], "events": events})
    return orders


@dataclass
class Site:
    server: Server
    api: httpx.Client
    crm: Path
    pages: dict[str, Any]

    @property
    def console(self) -> str:
        return self.server.url + "/console/"


def _eventually(check: Any, timeout_s: float = 45) -> Any:
    """Call `check` until it stops raising AssertionError (bounded); returns its result."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def _one_conflict(api: httpx.Client) -> dict[str, Any]:
    answer = api.get("/api/v1/syncs/customers/conflicts")
    assert answer.status_code == 200, answer.text
    assert len(answer.json()) == 1, answer.json()
    return dict(answer.json()[0])


@pytest.fixture(scope="module")
def site(browser: Any, loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    project = tmp_path_factory.mktemp("insight") / "project"
    crm, erp = _project(project)
    spec = project / "syncs" / "customers.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("conflicts: latest", "conflicts: queue"), encoding="utf-8")
    (project / "flows" / "o2c.yaml").write_text(O2C, encoding="utf-8")
    (project / "kpis.yaml").write_text(KPIS, encoding="utf-8")
    server = Server(project)
    try:
        loop_thread.run(server.start())
        _eventually(lambda: _assert_len(_erp_names(erp), 3))
        loop_thread.run(_quiet(crm, erp))
        loop_thread.run(server.stop())  # both systems change the address while Seamflow is away: a conflict
        _q(crm, "UPDATE customers SET address = ?, updated_at = ? WHERE tax_no = ?", (CRM_ADDRESS, _now(), TAX))
        _q(erp, "UPDATE customers SET address = ?, updated_at = ? WHERE tax_id = ?", (ERP_ADDRESS, _now(), TAX))
        loop_thread.run(server.start())
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
            for login, user in PEOPLE.items():
                assert api.put(f"/api/v1/directory/users/{login}", json=user).status_code == 200
                answer = api.put(f"/api/v1/directory/users/{login}/password", json={"password": PASSWORD})
                assert answer.status_code == 204, answer.text
            runs = []
            for order in _orders():
                answer = api.post("/api/v1/flows/o2c/runs", json={"input": order})
                assert answer.status_code == 202, answer.text
                runs.append(answer.json()["run_id"])
            for run_id in runs:
                _eventually(lambda run_id=run_id: _assert_completed(api, run_id))
            _eventually(lambda: _one_conflict(api))
            contexts = {login: browser.new_context(viewport=DESKTOP, locale="en-US") for login in PEOPLE}
            pages = {login: context.new_page() for login, context in contexts.items()}
            errors: list[str] = []
            for page in pages.values():
                page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield Site(server, api, crm, pages)
            for context in contexts.values():
                context.close()
            assert not errors, f"the console threw in the browser: {errors}"
    finally:
        server.kill()


def _assert_len(found: dict[str, Any], n: int) -> None:
    assert len(found) == n, found


def _assert_completed(api: httpx.Client, run_id: str) -> None:
    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["status"] == "completed", run


def sign_in(site: Site, login: str) -> Any:
    page = site.pages[login]
    page.goto(site.console)
    page.wait_for_selector("body[data-ready]")
    if page.locator("#who:not(:empty)").count():
        return page
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#who:not(:empty)")
    return page


def test_a_sync_conflict_shows_both_values_side_by_side_and_is_resolved_with_one_click(site: Site) -> None:
    page = sign_in(site, "wang.fang")
    page.click("nav a[data-page=syncs]")
    card = page.locator("article[data-sync=customers]")
    expect(card.locator("tr[data-side=crm]")).to_be_visible()
    expect(card.locator("tr[data-side=erp]")).to_be_visible()
    expect(card.locator("[data-failed=crm]")).to_have_text("0")
    row = card.locator("tr[data-conflict]")
    expect(row).to_have_count(1)
    expect(row.locator("[data-candidate=crm] .value")).to_have_text(CRM_ADDRESS)
    expect(row.locator("[data-candidate=erp] .value")).to_have_text(ERP_ADDRESS)
    row.locator("button[data-keep=erp]").click()
    expect(row.locator("td.resolution")).to_contain_text(ERP_ADDRESS)
    resolved = site.api.get("/api/v1/syncs/customers/conflicts", params={"status": "resolved"}).json()
    assert [(c["status"], c["resolution"]) for c in resolved] == [("resolved", {"value": ERP_ADDRESS})]
    _eventually(lambda: _assert_crm_address(site.crm, ERP_ADDRESS))  # written to the CRM too
    page.reload()  # the queue as the server has it now
    expect(page.locator("article[data-sync=customers] h2").first).to_be_visible()
    expect(page.locator("tr[data-conflict]")).to_have_count(0)
    page.click(".tabs a:nth-child(2)")
    expect(page.locator("tr[data-conflict] td.resolution")).to_contain_text(ERP_ADDRESS)


def _assert_crm_address(crm: Path, address: str) -> None:
    assert _q(crm, "SELECT address FROM customers WHERE tax_no = ?", (TAX,)) == [(address,)]


def test_a_viewer_sees_the_syncs_but_no_resolve_action(site: Site) -> None:
    page = sign_in(site, "liu.yang")
    page.goto(site.console + "#/syncs?conflicts=resolved")
    expect(page.locator("article[data-sync=customers]")).to_be_visible()
    expect(page.locator("button[data-keep]")).to_have_count(0)
    refused = page.evaluate(
        """async () => (await fetch('/api/v1/syncs/conflicts/nope/resolve', {method: 'POST',
             headers: {'X-Seamflow-CSRF': '1', 'Content-Type': 'application/json'}, body: '{"value": "x"}'})).status"""
    )
    assert refused == 403


def test_insight_shows_kpis_with_trend_and_before_after_the_map_variants_and_diagnosis(site: Site) -> None:
    page = sign_in(site, "wang.fang")
    page.click("nav a[data-page=insight]")
    paid = next(k for k in site.api.get("/api/v1/insight/kpis").json()["kpis"] if k["id"] == "paid_per_month")
    assert sum(r["cases"] for r in paid["rows"]) == 12, paid
    latest = max(paid["rows"], key=lambda r: str(r["period"]))
    expect(page.locator("[data-kpi=paid_per_month]")).to_have_text(str(latest["cases"]))  # the latest month
    expect(page.locator("[data-kpi=credit_rework]")).to_have_text("25%")  # 3 of 12 orders
    expect(page.locator("[data-kpi-card=order_to_cash] svg.trend")).to_be_visible()  # February to April
    expect(page.locator("[data-problem=contracts_signed]")).to_contain_text("contract")  # no contract yet
    expect(page.locator("[data-as-of=kpis]")).to_have_text(re.compile(r"^as of \d\d:\d\d:\d\d$"))
    for activity in ("订单创建", "信用审核", "财务审批", "发货", "开票", "回款"):
        expect(page.locator(f'g.activity[data-activity="{activity}"]')).to_be_visible()
    edge = page.locator('g.map-edge[data-edge="财务审批 → 发货"] text')
    expect(edge).to_have_text("12")  # frequency
    page.click("a[data-view=performance]")
    expect(page.locator('g.map-edge[data-edge="财务审批 → 发货"] text')).to_have_text(re.compile(r"^\d+(\.\d)? h$"))
    expect(page.locator("[data-card=variants] tbody tr")).to_have_count(2)
    expect(page.locator("[data-card=bottlenecks] tbody tr").first).to_be_visible()
    findings = page.locator("[data-card=diagnosis] li.finding")
    expect(findings.first).to_be_visible()
    expect(page.locator("[data-as-of=diagnosis]")).to_have_text(re.compile(r"^as of \d\d:\d\d:\d\d"))
    expect(page.locator("[data-finding=rework]").first).to_contain_text("信用审核")
    expect(page.locator("[data-finding=rework] code.case").first).to_have_text(re.compile(r"^SO-2026-01\d\d$"))
    page.fill("input[name=from]", GO_LIVE)  # the map of the cases started after the go-live only
    page.dispatch_event("input[name=from]", "change")
    expect(page.locator('g.map-edge[data-edge="财务审批 → 发货"] text')).to_have_text("12 h")
    expect(page.locator('g.map-edge[data-edge="信用审核 → 信用审核"]')).to_have_count(1)
    page.fill("input[name=from]", "")
    page.dispatch_event("input[name=from]", "change")
    page.fill("input[name=golive]", GO_LIVE)
    page.dispatch_event("input[name=golive]", "change")
    before_after = page.locator("[data-before-after=order_to_cash]")
    expect(before_after).to_contain_text("before")
    answer = site.api.get("/api/v1/insight/kpis", params={"before_after": GO_LIVE}).json()
    [o2c] = [k for k in answer["kpis"] if k["id"] == "order_to_cash"]
    assert o2c["before"] and o2c["after"]
    assert max(r["median_ms"] for r in o2c["after"]) < min(r["median_ms"] for r in o2c["before"])
    expect(before_after.locator(".ok")).to_have_text(re.compile(r"^ \(-\d"))  # faster after the go-live


def test_the_insight_api_lists_object_types_and_says_clearly_when_there_are_no_kpis(site: Site) -> None:
    types = site.api.get("/api/v1/insight/object-types").json()
    assert "order" in types and "run" in types
    refused = site.api.get("/api/v1/insight/kpis", params={"before_after": "soon"})
    assert refused.status_code == 400 and "before_after" in refused.text, refused.text
    kpis = site.server.project / "kpis.yaml"
    kept = kpis.rename(kpis.with_suffix(".kept"))
    try:
        answer = site.api.get("/api/v1/insight/kpis")
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "insight.no_kpi_file"
        assert str(site.server.project) not in answer.text
    finally:
        kept.rename(kpis)


def test_screenshots_of_the_syncs_and_insight_pages_in_both_languages(site: Site, screenshots: Path) -> None:
    page = sign_in(site, "wang.fang")
    taken = []
    for language in ("en", "zh-CN"):
        page.goto(site.console + "#/overview")
        page.wait_for_selector("#lang")
        page.select_option("#lang", language)
        expect(page.locator("html")).to_have_attribute("lang", language)
        shots = {
            "syncs": ("#/syncs?conflicts=resolved", "tr[data-conflict]"),
            "insight": (f"#/insight?type=order&golive={GO_LIVE}", "g.activity"),
            "insight-performance": ("#/insight?type=order&view=performance", "g.activity"),
        }
        for name, (hash_, ready) in shots.items():
            page.goto(site.console + hash_)
            page.wait_for_selector(ready)
            path = screenshots / f"{name}.{language}.png"
            if name == "insight":  # a KPI without cases says so in the chosen language
                no_cases = {"en": "no event has touched an object of type contract", "zh-CN": "类型为 contract 的对象"}
                expect(page.locator("[data-problem=contracts_signed]")).to_contain_text(no_cases[language])
            page.screenshot(path=str(path), full_page=name == "insight")
            taken.append(path)
    page.select_option("#lang", "en")
    assert all(p.stat().st_size > 5_000 for p in taken), "every screenshot shows a page"
