"""Authorizing an OAuth2 connection from the console's connections page, in a real Chromium.

王芳 (operator) opens Connections: `crm` needs authorization and has an Authorize button. She
presses it, the test provider (`tests/support/oauth_server.py`, asking for consent) shows its
page, she denies: the connections page says the system refused (access_denied). She presses it
again and allows: the page says crm is connected, and a flow step calling crm succeeds with the
stored token. In Chinese, "重新授权" then denying shows the same refusal in Chinese. Screenshots
go to `artifacts/screenshots/` (connections-oauth-*.png).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.test_console_authorize import FLOW
from tests.acceptance.test_oauth2 import crm_yaml
from tests.browser.conftest import LoopThread
from tests.support.oauth_server import CLIENT_SECRET, AuthServer
from tests.support.server import TOKEN, Server, make_project

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

PASSWORD = "Hengda-2026-finance"


@dataclass
class Site:
    server: Server
    provider: AuthServer
    api: httpx.Client

    @property
    def console(self) -> str:
        return self.server.url + "/console/"


@pytest.fixture(scope="module")
def site(browser: Any, loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    project = tmp_path_factory.mktemp("oauth") / "project"
    provider_context = AuthServer.start()
    provider = loop_thread.run(provider_context.__aenter__())
    provider.is_asking_consent = True
    make_project(project, {"crm-profile": FLOW}, crm_yaml(provider.base_url))
    stored = subprocess.run(  # also makes the project's key, which seals the tokens the console obtains
        [sys.executable, "-m", "seamflow", "secrets", "set", "crm_client_secret", "-p", str(project)],
        input=CLIENT_SECRET, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    server = Server(project)
    server.env.pop("SEAMFLOW_DATABASE_URL", None)
    try:
        loop_thread.run(server.start(timeout_s=180), timeout_s=200)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
            user = {"name": "王芳", "mobile": "139-0211-3344", "roles": ["operator"]}
            assert api.put("/api/v1/directory/users/wang.fang", json=user).status_code == 200
            answer = api.put("/api/v1/directory/users/wang.fang/password", json={"password": PASSWORD})
            assert answer.status_code == 204, answer.text
            yield Site(server, provider, api)
    finally:
        server.kill()
        with contextlib.suppress(Exception):
            loop_thread.run(provider_context.__aexit__(None, None, None))


def signed_in(site: Site, browser: Any, locale: str) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 720}, locale=locale)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(site.console)
    page.fill("input[name=login]", "wang.fang")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#who:not(:empty)")
    return context, page, errors


def consent(site: Site, page: Any, button: str, decision: str, shot: Path | None = None) -> None:
    """Press the Authorize button, decide on the provider's consent page, wait until back on the console."""
    page.click(f"tr[data-connection=crm] button[data-authorize=crm] >> text={button}")
    page.wait_for_url(f"{site.provider.base_url}/authorize?**")
    if shot is not None:
        page.screenshot(path=str(shot))
    page.click(f"button[value={decision}]")
    page.wait_for_url(f"{site.console}#/connections?**")
    page.wait_for_selector("[data-outcome]")


def test_authorize_deny_then_allow_connects_crm_and_a_flow_step_uses_it(
    site: Site, browser: Any, screenshots: Path
) -> None:
    context, page, errors = signed_in(site, browser, "en-US")
    try:
        page.goto(site.console + "#/connections")
        row = page.locator("tr[data-connection=crm]")
        expect(row).to_contain_text("needs authorization")
        expect(row.locator("button[data-authorize=crm]")).to_have_text("Authorize")
        page.screenshot(path=str(screenshots / "connections-oauth-needs.en.png"))

        consent(site, page, "Authorize", "deny", screenshots / "connections-oauth-provider.png")
        refused = page.locator("[data-outcome='connection.authorization_failed']")
        expect(refused).to_contain_text("Authorizing crm did not succeed.")
        expect(refused).to_contain_text("The system answered: access_denied")
        page.screenshot(path=str(screenshots / "connections-oauth-denied.en.png"))

        consent(site, page, "Authorize", "allow")
        expect(page.locator("[data-outcome=authorized]")).to_have_text(
            "crm is connected: the system's tokens are stored encrypted."
        )
        expect(row).to_contain_text("ok")
        expect(row.locator("button[data-authorize=crm]")).to_have_text("Authorize again")
        page.screenshot(path=str(screenshots / "connections-oauth-connected.en.png"))
        text = page.content()
    finally:
        context.close()
    assert not errors, f"the console threw in the browser: {errors}"
    assert not any(token in text for token in site.provider.issued) and CLIENT_SECRET not in text

    started = site.api.post("/api/v1/flows/crm-profile/runs", json={"input": {}})
    assert started.status_code == 202, started.text
    run = completed(site, started.json()["run_id"])
    assert run["status"] == "completed"
    assert site.provider.refreshes == 0, "the step used the access token the console stored"


def completed(site: Site, run_id: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        run = dict(site.api.get(f"/api/v1/runs/{run_id}").json())
        if run["status"] == "completed" or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def test_in_chinese_authorize_again_and_deny_says_so_in_chinese(site: Site, browser: Any, screenshots: Path) -> None:
    context, page, errors = signed_in(site, browser, "zh-CN")
    try:
        page.goto(site.console + "#/connections")
        row = page.locator("tr[data-connection=crm]")
        expect(row.locator("button[data-authorize=crm]")).to_have_text("重新授权")
        page.screenshot(path=str(screenshots / "connections-oauth-connected.zh-CN.png"))
        consent(site, page, "重新授权", "deny")
        refused = page.locator("[data-outcome='connection.authorization_failed']")
        expect(refused).to_contain_text("crm 授权未成功。")
        expect(refused).to_contain_text("该系统返回：access_denied")
        expect(row).to_contain_text("正常")  # a refused new consent keeps the tokens stored before
        page.screenshot(path=str(screenshots / "connections-oauth-denied.zh-CN.png"))
        page.goto(site.console + "#/connections?authorize_error=connection.authorization_state")
        expect(page.locator("[data-outcome='connection.authorization_state']")).to_contain_text("已超过 10 分钟")
    finally:
        context.close()
    assert not errors, f"the console threw in the browser: {errors}"
