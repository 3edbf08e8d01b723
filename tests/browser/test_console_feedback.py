"""Feedback in a real headless Chromium against a real `seamflow serve`: 刘洋 (liu.yang, viewer) reports
a problem on a waiting approval step; 王芳 (wang.fang, operator) sees it on the Insight page beside
the KPIs and closes it with a note; both are rows of the event log. Screenshots in both languages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_console import Site, sign_in, site

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

__all__ = ["site"]  # the module's server, browser contexts and users (tests/browser/test_console.py)

TEXT = "这个审批总是在等财务总监 — the finance director is the only approver"


def test_a_viewer_reports_a_problem_on_a_step_and_an_operator_closes_it_on_the_insight_page(
    site: Site, screenshots: Path
) -> None:
    run_id = site.start("procure-to-pay", {"no": "PR-2026-0412", "requester": "li.na", "amount": 23500.5})
    site.run_in_status(run_id, "waiting")
    viewer = sign_in(site, "liu.yang")
    viewer.goto(site.console + f"#/runs/{run_id}")
    step = viewer.locator("li[data-step=approve]")
    step.locator("button[data-action=feedback]").click()
    step.locator("select[name=kind]").select_option("problem")
    step.locator("textarea[name=text]").fill(TEXT)
    viewer.screenshot(path=str(screenshots / "feedback-form.en.png"), full_page=True)
    step.locator("form.feedback-form button[type=submit]").click()
    expect(step.locator("[role=status]")).to_contain_text("Thank you")
    [left] = site.api.get("/api/v1/feedback").json()
    assert (left["author"], left["run"], left["step"], left["text"]) == ("liu.yang", run_id, "approve", TEXT)

    viewer.goto(site.console + "#/insight")
    card = viewer.locator("[data-card=feedback]")
    expect(card).to_contain_text(TEXT)
    expect(card.locator("input[name=note]")).to_have_count(0)  # a viewer may not close it

    operator = sign_in(site, "wang.fang")
    for language, note in (("zh-CN", None), ("en", "Added the deputy director as a second approver")):
        operator.goto(site.console + "#/insight")
        operator.select_option("#lang", language)
        expect(operator.locator("html")).to_have_attribute("lang", language)
        item = operator.locator(f"li[data-feedback={left['id']}]")
        expect(item).to_contain_text(TEXT)
        operator.screenshot(path=str(screenshots / f"insight-feedback.{language}.png"), full_page=True)
        if language == "zh-CN":  # closing without a note: the API's refusal in the page's language
            item.locator("button[type=submit]").click()
            expect(item.locator("[role=alert]")).to_contain_text("请求不完整或无效")
        if note:
            item.locator("input[name=note]").fill(note)
            item.locator("button[type=submit]").click()
            expect(item).to_contain_text("Closed")
    [closed] = site.api.get("/api/v1/feedback?status=closed").json()
    assert (closed["closed_by"], closed["note"]) == ("wang.fang", "Added the deputy director as a second approver")
    log = site.api.get("/api/v1/events", params={"run": run_id}).json()
    kinds = [(r["kind"], r["attributes"]["who"]) for r in log if r["kind"].startswith("feedback.")]
    assert kinds == [("feedback.created", "liu.yang"), ("feedback.closed", "wang.fang")]


def test_the_flow_page_has_a_feedback_button_for_any_signed_in_user(site: Site, screenshots: Path) -> None:
    page: Any = sign_in(site, "zhang.wei")
    page.goto(site.console + "#/flows/order-to-erp")
    page.locator("button[data-action=feedback]").click()
    page.locator("select[name=kind]").select_option("suggestion")
    page.locator("textarea[name=text]").fill("金额超过五万才需要财务总监审批")
    page.screenshot(path=str(screenshots / "flow-feedback.zh-CN.png"), full_page=True)
    page.locator("form.feedback-form button[type=submit]").click()
    expect(page.locator(".feedback [role=status]")).to_contain_text("谢谢")
    found = site.api.get("/api/v1/feedback", params={"flow": "order-to-erp"}).json()
    assert [(f["kind"], f["author"], f["run"]) for f in found] == [("suggestion", "zhang.wei", None)]
