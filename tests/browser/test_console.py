"""The web console in a real headless Chromium against a real `seamflow serve`.

Three people sign in, each in their own browser context: 王芳 (wang.fang, operator and builder)
replays a dead-lettered order, 张伟 (zhang.wei, approver) decides a purchase request on a
phone-sized screen, 刘洋 (liu.yang, viewer) sees no replay button and the API refuses him.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from seamflow.api import access
from tests.browser.conftest import LoopThread
from tests.support.server import TOKEN, Server, make_project
from tests.support.sink import Behaviour, Sink

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

PASSWORD = "Hengda-2026-finance"
ERP_TOKEN = "erp-tok-7f3a9c0d2e5b41d8"
ORDER = """
id: order-to-erp
name: 销售订单 → ERP
trigger: {manual: {}}
steps:
  - id: order
    transform:
      number: "{{ event.body.order_no }}"
      amount_cents: "{{ event.body.amount | cents }}"
      customer: "{{ event.body.customer }}"
  - id: post
    action: sink.post
    with: {path: /orders, json: "{{ steps.order }}"}
on_error: dead_letter
"""
PROCURE = """
id: procure-to-pay
name: 采购申请审批
trigger: {manual: {}}
steps:
  - id: approve
    approval:
      requester: "{{ event.body.requester }}"
      subject: "采购申请 {{ event.body.no }}"
      form:
        type: object
        properties: {budget_code: {type: string, title: 预算编号, pattern: "^[A-Z]{2}-[0-9]{2}$"}}
      levels:
        - name: 部门负责人
          assignees: [{user: zhang.wei}]
  - id: result
    transform: {decision: "{{ steps.approve.decision }}"}
"""
CONTRACT = """
id: contract-signed-to-erp
name: 合同签约 → ERP 待审核销售订单
trigger:
  webhook: {path: crm/contracts, dedupe_key: "{{ event.body.contract_id }}"}
steps:
  - id: contract
    transform: {id: "{{ event.body.contract_id }}", amount: "{{ event.body.amount }}"}
  - id: large
    if: "{{ event.body.amount > 100000 }}"
    then:
      - id: review
        approval:
          requester: "{{ event.body.owner }}"
          levels: [{name: 销售总监, assignees: [{user: zhang.wei}]}]
    else:
      - id: note
        emit: {activity: Small contract, objects: {contract: "{{ event.body.contract_id }}"}}
  - id: lines
    foreach: "{{ event.body.lines }}"
    steps:
      - id: line
        action: sink.post
        with: {path: /lines, json: "{{ item }}"}
  - id: paid
    wait: {signal: payment.received, key: "{{ event.body.contract_id }}", timeout: 7d}
  - id: signed
    emit: {activity: Sales order created, objects: {contract: "{{ event.body.contract_id }}"}}
"""
NOTIFY = """
id: notify-erp
trigger: {manual: {}}
steps:
  - id: notify
    action: sink.post
    with: {path: /notify, json: {order_no: "{{ event.body.order_no }}", token: "{{ secrets.erp_token }}"}}
"""
PEOPLE = {
    "wang.fang": {"name": "王芳", "mobile": "139-0211-3344", "roles": ["operator", "builder"]},
    "zhang.wei": {"name": "张伟", "mobile": "138-1234-5678", "roles": ["approver"]},
    "liu.yang": {"name": "刘洋", "mobile": "13700001234", "roles": ["viewer"]},
}
DESKTOP = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}


@dataclass
class Site:
    server: Server
    sink: Sink
    api: httpx.Client
    """The bootstrap admin token's client, to set things up and check what the browser did."""
    pages: dict[str, Any]
    """login -> its signed-in page (one browser context each)."""

    @property
    def console(self) -> str:
        return self.server.url + "/console/"

    def start(self, flow: str, body: dict[str, Any], key: str | None = None) -> str:
        answer = self.api.post(f"/api/v1/flows/{flow}/runs", json={"input": body, "idempotency_key": key})
        assert answer.status_code == 202, answer.text
        return str(answer.json()["run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        return dict(self.api.get(f"/api/v1/runs/{run_id}").json())

    def run_in_status(self, run_id: str, status: str) -> dict[str, Any]:
        return _eventually(lambda: _assert_status(self.run(run_id), status))


def _assert_status(run: dict[str, Any], status: str) -> dict[str, Any]:
    assert run["status"] == status, run
    return run


def _eventually(check: Any, timeout_s: float = 30) -> Any:
    """Call `check` until it stops raising AssertionError (bounded); returns its result."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


@pytest.fixture(scope="module")
def site(browser: Any, loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    project = tmp_path_factory.mktemp("console") / "project"
    sink_context = Sink.start()
    sink = loop_thread.run(sink_context.__aenter__())
    connections = (
        f"sink:\n  connector: http\n  base_url: {sink.url}\n  timeout: 5s\n"
        f'erp:\n  connector: http\n  base_url: {sink.url}/erp\n  auth: {{bearer: "{{{{ secrets.erp_token }}}}"}}\n'
    )
    make_project(
        project, {"order-to-erp": ORDER, "procure-to-pay": PROCURE, "contract": CONTRACT, "notify": NOTIFY}, connections
    )
    env = {"SEAMFLOW_DATABASE_URL": "", "SEAMFLOW_SECRET_ERP_TOKEN": ERP_TOKEN}
    server = Server(project, env=env)
    server.env.pop("SEAMFLOW_DATABASE_URL")
    try:
        loop_thread.run(server.start())
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
            for login, user in PEOPLE.items():
                assert api.put(f"/api/v1/directory/users/{login}", json=user).status_code == 200
                answer = api.put(f"/api/v1/directory/users/{login}/password", json={"password": PASSWORD})
                assert answer.status_code == 204, answer.text
            contexts = {
                "wang.fang": browser.new_context(viewport=DESKTOP, locale="en-US"),
                "zhang.wei": browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True),
                "liu.yang": browser.new_context(viewport=DESKTOP, locale="en-US"),
            }
            pages = {login: context.new_page() for login, context in contexts.items()}
            errors: list[str] = []
            for page in pages.values():
                page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield Site(server, sink, api, pages)
            for context in contexts.values():
                context.close()
            assert not errors, f"the console threw in the browser: {errors}"
    finally:
        server.kill()
        with contextlib.suppress(Exception):
            loop_thread.run(sink_context.__aexit__(None, None, None))


def sign_in(site: Site, login: str) -> Any:
    page = site.pages[login]
    page.goto(site.console)
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#who:not(:empty)")
    return page


def test_a_wrong_password_is_refused_then_the_right_one_signs_in_with_role_aware_navigation(site: Site) -> None:
    page = site.pages["wang.fang"]
    page.goto(site.console)
    page.fill("input[name=login]", "wang.fang")
    page.fill("input[name=password]", "Hengda-2025-finance")
    page.click("form.signin button[type=submit]")
    expect(page.locator("form.signin .error")).to_have_text("The login or the password is wrong.")
    sign_in(site, "wang.fang")
    expect(page.locator("#who")).to_have_text("Signed in as wang.fang")
    expect(page.locator("#nav a")).to_have_text(["Overview", "Flows", "Runs", "Connections", "Syncs", "Insight"])
    cookie = next(c for c in page.context.cookies() if c["name"] == access.SESSION_COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == "", "the session cookie is out of reach of scripts"


def test_a_dead_letter_is_found_by_its_business_key_replayed_and_seen_to_complete(site: Site) -> None:
    site.sink.behaviour = Behaviour(fail_next=-1, fail_status=400, fail_body={"error": "客户编号不存在 C-0086"})
    run_id = site.start(
        "order-to-erp", {"order_no": "SO-2026-0815", "amount": "12800.00", "customer": "C-0086"}, "SO-2026-0815"
    )
    site.start("order-to-erp", {"order_no": "SO-2026-0816", "amount": "99.00", "customer": "C-0087"}, "SO-2026-0816")
    site.run_in_status(run_id, "dead_letter")
    page = site.pages["wang.fang"]
    page.goto(site.console + "#/overview")
    expect(page.locator("[data-figure=dead_letter]")).to_have_text(re.compile("^[1-9]"), timeout=20_000)  # polled
    page.goto(site.console + "#/runs")
    page.fill("input[name=key]", "SO-2026-0815")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"key=SO-2026-0815"))
    expect(page.locator("table.runs tbody tr")).to_have_count(1)  # the business key finds this run only
    expect(page.locator(f"tr[data-run='{run_id}']")).to_be_visible()
    page.click(f"tr[data-run='{run_id}'] a")
    page.wait_for_selector("section.run[data-status=dead_letter]")
    assert "C-0086" in page.locator(".error-box").first.inner_text()
    site.sink.behaviour = Behaviour()  # the ERP is fixed
    page.click("[data-action=replay]")
    page.wait_for_selector("section.run[data-status=completed]", timeout=30_000)
    steps = page.locator("ol.timeline li[data-step=post] .badge").all_inner_texts()
    assert steps == ["failed", "completed"], "the failed attempt and the replayed one are both on the timeline"
    assert site.run(run_id)["status"] == "completed"


def test_an_approver_decides_on_a_phone_and_the_run_continues(site: Site) -> None:
    run_id = site.start("procure-to-pay", {"no": "PR-2026-0042", "requester": "li.na", "amount": 8600})
    site.run_in_status(run_id, "waiting")
    page = sign_in(site, "zhang.wei")  # zh-CN from the browser's language
    expect(page.locator("#nav a")).to_have_text(["概览", "流程", "运行", "审批", "连接", "数据同步", "流程洞察"])
    page.goto(site.console + "#/inbox")
    task = page.locator("a.task").first
    assert "采购申请 PR-2026-0042" in task.inner_text()
    task.click()
    page.wait_for_selector("form.decision")
    expect(page.locator("table.kv")).to_contain_text("8,600")  # the amount, formatted for zh-CN as CNY
    page.fill("input[name=budget_code]", "it-7")
    page.fill("textarea[name=comment]", "预算内，同意采购")
    page.click("[data-decision=approve]")
    refusal = page.locator("form.decision .error")  # the API checks the form against its schema
    expect(refusal).to_contain_text("表单内容不符合审批要求")
    expect(refusal).to_contain_text("approval.form_invalid")
    page.fill("input[name=budget_code]", "IT-07")
    page.click("[data-decision=approve]")
    expect(page.locator("form.decision .ok")).to_contain_text("流程继续运行")
    run = site.run_in_status(run_id, "completed")
    assert next(s["output"] for s in run["steps"] if s["step"] == "result") == {"decision": "approved"}
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.eval_on_selector_all(
        "body *",
        f"els => els.filter(e => e.getBoundingClientRect().right > {PHONE['width']})"
        " .map(e => e.tagName + '.' + e.className)",
    )
    assert width <= PHONE["width"], f"the task page scrolls sideways on a phone: {width}px, {wide}"


def test_the_language_switch_shows_chinese_labels_and_sticks(site: Site) -> None:
    page = site.pages["wang.fang"]
    page.goto(site.console + "#/runs")
    page.wait_for_selector("form.filters")
    page.select_option("#lang", "zh-CN")
    expect(page.locator("#nav a[data-page=runs]")).to_have_text("运行")
    expect(page.locator("h1")).to_have_text("运行")
    page.reload()
    page.wait_for_selector("form.filters")
    expect(page.locator("#signout")).to_have_text("退出")
    page.select_option("#lang", "en")
    expect(page.locator("#nav a[data-page=runs]")).to_have_text("Runs")


def test_a_flow_is_drawn_with_its_branches_loop_wait_and_approval_beside_its_yaml(site: Site) -> None:
    page = site.pages["wang.fang"]
    page.goto(site.console + "#/flows")
    page.click("text=contract-signed-to-erp")
    page.wait_for_selector("svg.flow-diagram")
    kinds = page.eval_on_selector_all(
        "svg.flow-diagram g.node", "nodes => nodes.map(n => [n.dataset.step, n.getAttribute('class')])"
    )
    assert dict(kinds) == {
        "contract": "node k-transform",
        "large": "node k-if",
        "review": "node k-approval",
        "note": "node k-emit",
        "lines": "node k-foreach",
        "line": "node k-action",
        "paid": "node k-wait",
        "signed": "node k-emit",
    } | {"Webhook": "node k-trigger"}
    assert "dedupe_key" in page.locator("pre.yaml").inner_text()


def test_a_viewer_sees_no_replay_button_and_the_api_refuses_him(site: Site) -> None:
    site.sink.behaviour = Behaviour(fail_next=-1, fail_status=400)
    run_id = site.start(
        "order-to-erp", {"order_no": "SO-2026-0901", "amount": "1.00", "customer": "C-1"}, "SO-2026-0901"
    )
    site.run_in_status(run_id, "dead_letter")
    page = sign_in(site, "liu.yang")
    expect(page.locator("#nav a")).to_have_text(["Overview", "Flows", "Runs", "Connections", "Syncs", "Insight"])
    page.goto(site.console + f"#/runs/{run_id}")
    page.wait_for_selector("section.run[data-status=dead_letter]")
    assert page.locator("[data-action=replay]").count() == 0
    page.goto(site.console + "#/runs?status=dead_letter")
    page.wait_for_selector(f"tr[data-run='{run_id}']")
    assert not page.locator(".toolbar button.danger").is_visible()
    refused = page.request.post(f"{site.server.url}/api/v1/runs/{run_id}/replay", headers={access.CSRF_HEADER: "1"})
    assert (refused.status, refused.json()["code"]) == (403, "auth.forbidden")
    operator = site.pages["wang.fang"]
    no_header = operator.request.post(f"{site.server.url}/api/v1/runs/{run_id}/replay")
    assert (no_header.status, no_header.json()["code"]) == (403, "auth.csrf"), "a cookie alone cannot change anything"
    assert site.run(run_id)["status"] == "dead_letter"
    page.click("nav a[data-page=syncs]")  # a project without syncs and without kpis.yaml says so
    expect(page.locator("main section p.muted").first).to_have_text("This project defines no syncs (syncs/*.yaml).")
    page.click("nav a[data-page=insight]")
    expect(page.locator("[data-kpis=none]")).to_be_visible()
    page.click("#signout")
    page.wait_for_selector("form.signin")
    assert page.request.get(f"{site.server.url}/api/v1/session").status == 401, "signed out on the server too"


def test_the_dead_letters_of_a_filter_are_replayed_together(site: Site) -> None:
    site.sink.behaviour = Behaviour(fail_next=-1, fail_status=400)
    orders = [f"SO-2026-095{i}" for i in range(3)]
    body = {"amount": "10.00", "customer": "C-2"}
    run_ids = [site.start("order-to-erp", {**body, "order_no": no}, no) for no in orders]
    for run_id in run_ids:
        site.run_in_status(run_id, "dead_letter")
    site.sink.behaviour = Behaviour()
    page = site.pages["wang.fang"]
    page.goto(site.console + "#/runs?flow=order-to-erp&status=dead_letter")
    expect(page.locator(f"tr[data-run='{run_ids[0]}']")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(".toolbar button.danger")
    expect(page.locator(".toolbar [role=status]")).to_contain_text(re.compile(r"Replayed (\d+) of \1"))
    for run_id in run_ids:
        site.run_in_status(run_id, "completed")


def test_connections_show_where_secrets_come_from_and_never_a_value(site: Site) -> None:
    page = site.pages["wang.fang"]
    page.goto(site.console + "#/connections")
    expect(page.locator("tr[data-connection=erp]")).to_contain_text("erp_token (environment)")
    page.click("tr[data-connection=sink] button")
    expect(page.locator("tr[data-connection=sink]")).to_contain_text("passed")
    assert ERP_TOKEN not in page.content()
    page.goto(site.console + "#/connections")  # the last test is kept in this browser
    expect(page.locator("tr[data-connection=sink]")).to_contain_text("passed")


def test_a_run_shows_its_steps_input_and_output_but_never_a_secret(site: Site) -> None:
    site.sink.behaviour = Behaviour()
    run_id = site.start("notify-erp", {"order_no": "SO-2026-0960"})
    site.run_in_status(run_id, "completed")
    assert any(ERP_TOKEN in r.body.decode() for r in site.sink.requests), "the secret went to the target"
    page = site.pages["wang.fang"]
    page.goto(site.console + f"#/runs/{run_id}")
    page.wait_for_selector("section.run[data-status=completed]")
    page.click("li[data-step=notify] summary >> nth=0")  # the step's input
    expect(page.locator("li[data-step=notify] pre").first).to_contain_text('"token": "***"')
    expect(page.locator("li[data-step=notify] pre").first).to_contain_text("SO-2026-0960")
    assert ERP_TOKEN not in page.content()


def test_screenshots_of_every_main_page_in_both_languages(site: Site, browser: Any, screenshots: Path) -> None:
    site.sink.behaviour = Behaviour()
    site.start("procure-to-pay", {"no": "PR-2026-0057", "requester": "li.na", "amount": 23500.5})
    run_id = site.start(
        "order-to-erp", {"order_no": "SO-2026-0817", "amount": "560.00", "customer": "C-0090"}, "SO-2026-0817"
    )
    site.run_in_status(run_id, "completed")
    operator, approver = site.pages["wang.fang"], site.pages["zhang.wei"]
    taken = []
    for language in ("en", "zh-CN"):
        for page in (operator, approver):
            page.goto(site.console + "#/overview")
            page.wait_for_selector("#lang")
            page.select_option("#lang", language)
            expect(page.locator("html")).to_have_attribute("lang", language)
        shots = {
            "overview": (operator, "#/overview", "[data-figure=queue_depth]"),
            "flows": (operator, "#/flows", "table.grid tbody tr"),
            "flow": (operator, "#/flows/contract-signed-to-erp", "svg.flow-diagram"),
            "runs": (operator, "#/runs", "table.runs tbody tr"),
            "run": (operator, f"#/runs/{run_id}", "ol.timeline li"),
            "connections": (operator, "#/connections", "tr[data-connection=sink]"),
            "inbox": (approver, "#/inbox", "a.task"),
        }
        for name, (page, hash_, ready) in shots.items():
            page.goto(site.console + hash_)
            page.wait_for_selector(ready)
            path = screenshots / f"{name}.{language}.png"
            page.screenshot(path=str(path), full_page=name in ("flow", "run"))
            taken.append(path)
        stranger = browser.new_context(viewport=DESKTOP, locale="zh-CN" if language == "zh-CN" else "en-US")
        signin = stranger.new_page()
        signin.goto(site.console)
        signin.wait_for_selector("form.signin")
        signin.screenshot(path=str(screenshots / f"signin.{language}.png"))
        taken.append(screenshots / f"signin.{language}.png")
        stranger.close()
        approver.click("a.task")
        approver.wait_for_selector("form.decision")
        approver.screenshot(path=str(screenshots / f"task.{language}.png"), full_page=True)
        taken.append(screenshots / f"task.{language}.png")
    assert all(p.stat().st_size > 5_000 for p in taken), "every screenshot shows a page"
