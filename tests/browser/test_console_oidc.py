"""Signing in to the console through the company's identity provider, and a grant shaping the console.

A local OpenID Connect provider (`tests/support/oidc_provider.py`) runs beside a real `seamflow
serve` whose project has `oidc.yaml`. 赵磊 (zhao.lei) has no global role, only an operator grant on
`folder:finance/`: after signing in with "Sign in with 恒达 SSO" he sees Flows and Runs, only the
finance flow, and its Start button; the sales flow is refused by the API. Screenshots go to
`artifacts/screenshots/` (oidc-*.png).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import LoopThread
from tests.support.oidc_provider import CLIENT_SECRET, OidcProvider
from tests.support.server import TOKEN, Server, make_project

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

FLOW = "id: {id}\nname: {name}\ntrigger: {{manual: {{}}}}\nsteps:\n  - id: a\n    transform: {{n: 1}}\n"
OIDC_YAML = """\
name: 恒达 SSO
issuer: {issuer}
client_id: seamflow-console
client_secret: "{{{{ secrets.oidc_client_secret }}}}"
"""


@dataclass
class Site:
    server: Server
    provider: OidcProvider

    @property
    def console(self) -> str:
        return self.server.url + "/console/"


@pytest.fixture(scope="module")
def site(browser: Any, loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    project = tmp_path_factory.mktemp("oidc") / "project"
    make_project(project, {})
    for folder, flow_id, name in (("finance", "pay-invoice", "应付发票付款"), ("sales", "sync-orders", "销售订单同步")):
        (project / "flows" / folder).mkdir()
        (project / "flows" / folder / f"{flow_id}.yaml").write_text(FLOW.format(id=flow_id, name=name), "utf-8")
    provider_context = OidcProvider.start()
    provider = loop_thread.run(provider_context.__aenter__())
    (project / "oidc.yaml").write_text(OIDC_YAML.format(issuer=provider.base_url), encoding="utf-8")
    server = Server(project, env={"SEAMFLOW_SECRET_OIDC_CLIENT_SECRET": CLIENT_SECRET})
    server.env.pop("SEAMFLOW_DATABASE_URL", None)
    try:
        loop_thread.run(server.start(timeout_s=180), timeout_s=200)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
            user = {"name": "赵磊", "email": "zhao.lei@hengda-trading.com.cn", "roles": []}
            assert api.put("/api/v1/directory/users/zhaolei", json=user).status_code == 200
            grant = {"subject": "zhaolei", "role": "operator", "target": "folder:finance/"}
            assert api.post("/api/v1/directory/grants", json=grant).status_code == 201
        yield Site(server, provider)
    finally:
        server.kill()
        with contextlib.suppress(Exception):
            loop_thread.run(provider_context.__aexit__(None, None, None))


def test_signing_in_with_the_provider_shows_only_what_the_grant_allows(
    site: Site, browser: Any, screenshots: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720}, locale="zh-CN")
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(site.console)
        sso = page.locator("a[data-sso]")
        expect(sso).to_have_text("使用 恒达 SSO 登录")
        page.screenshot(path=str(screenshots / "oidc-signin.zh-CN.png"))
        sso.click()
        page.wait_for_url(f"{site.provider.base_url}/authorize?**")
        page.select_option("select[name=login]", "zhao.lei")
        page.screenshot(path=str(screenshots / "oidc-provider.png"))
        page.click("#consent")
        page.wait_for_selector("#who:not(:empty)")
        assert page.url.startswith(site.console), page.url
        expect(page.locator("#nav a")).to_have_text(["流程", "运行"])  # no global role: only what the grant reaches
        page.goto(site.console + "#/flows")
        expect(page.locator("table.grid tbody tr")).to_have_count(1)
        expect(page.locator("table.grid tbody")).to_contain_text("pay-invoice")
        page.screenshot(path=str(screenshots / "oidc-flows-granted.zh-CN.png"))
        page.goto(site.console + "#/flows/pay-invoice")
        expect(page.get_by_role("button", name="手动启动")).to_be_visible()
        page.screenshot(path=str(screenshots / "oidc-flow-granted.zh-CN.png"), full_page=True)
        refused = page.request.post(
            f"{site.server.url}/api/v1/flows/sync-orders/runs", data={"input": {}}, headers={"X-Seamflow-CSRF": "1"}
        )
        assert refused.status == 403 and refused.json()["code"] == "auth.forbidden"
    finally:
        context.close()
    assert not errors, f"the console threw in the browser: {errors}"
