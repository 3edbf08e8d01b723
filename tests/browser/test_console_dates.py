"""Dates in the console follow the chosen language, not the browser's: a run's times and the runs filter's.

王芳's browser is English (en-US, which would write "Dec 7, 2026, 2:05:09 PM"); the console writes
"7 Dec 2026, 14:05:09" in English and "2026年12月7日 14:05:09" once she switches to 中文. The
filter's date-time inputs are drawn by the browser in its own locale; beside each, the console
writes the value out in the chosen language. Screenshots: `artifacts/screenshots/runs-dates.*.png`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import LoopThread
from tests.support.server import TOKEN, Server, make_project

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

PASSWORD = "Hengda-2026-finance"
FLOW = "id: tally\nname: 日结\ntrigger: {manual: {}}\nsteps:\n  - id: a\n    transform: {n: 1}\n"
EN = re.compile(r"\b\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) 20\d\d, \d\d:\d\d:\d\d\b")
ZH = re.compile(r"20\d\d年\d{1,2}月\d{1,2}日 \d\d:\d\d:\d\d")


@pytest.fixture(scope="module")
def server(browser: Any, loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    project = tmp_path_factory.mktemp("dates") / "project"
    make_project(project, {"tally": FLOW})
    running = Server(project)
    running.env.pop("SEAMFLOW_DATABASE_URL", None)
    try:
        loop_thread.run(running.start(timeout_s=180), timeout_s=200)
        with httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
            user = {"name": "王芳", "mobile": "139-0211-3344", "roles": ["operator"]}
            assert api.put("/api/v1/directory/users/wang.fang", json=user).status_code == 200
            answer = api.put("/api/v1/directory/users/wang.fang/password", json={"password": PASSWORD})
            assert answer.status_code == 204, answer.text
            assert api.post("/api/v1/flows/tally/runs", json={"input": {}}).status_code == 202
        yield running
    finally:
        running.kill()


def test_a_runs_times_and_the_filters_dates_follow_the_chosen_language(
    server: Server, browser: Any, screenshots: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-US", timezone_id="Asia/Shanghai")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(server.url + "/console/")
        page.fill("input[name=login]", "wang.fang")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.signin button[type=submit]")
        page.wait_for_selector("#who:not(:empty)")
        page.goto(server.url + "/console/#/runs?since=2026-01-01T08:30")
        row = page.locator("table.runs tbody tr").first
        expect(row).to_contain_text("tally")
        text = row.inner_text()
        assert EN.search(text) and not re.search(r"\b(AM|PM)\b", text), text
        expect(page.locator("output[data-echo=since]")).to_have_text("1 Jan 2026, 08:30")
        page.screenshot(path=str(screenshots / "runs-dates.en.png"))

        page.select_option("#lang", "zh-CN")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator("output[data-echo=since]")).to_have_text("2026年1月1日 08:30")
        row = page.locator("table.runs tbody tr").first
        expect(row).to_contain_text("tally")
        text = row.inner_text()
        assert ZH.search(text) and not EN.search(text), text
        page.screenshot(path=str(screenshots / "runs-dates.zh-CN.png"))
    finally:
        context.close()
    assert not errors, f"the console threw in the browser: {errors}"
