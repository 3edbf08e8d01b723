"""The low-code flow editor in a real headless Chromium against a real `seamflow serve`.

The project is examples/lead-to-cash without its contract-signed flow, beside the example CRM
and ERP (their OpenAPI documents give the palette its actions). 王芳 (wang.fang, builder, in
English) builds the contract-signed flow from scratch; 李强 (li.qiang, builder, in Chinese) edits
a commented flow file; both save the same flow and the second gets the conflict and merges.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from seamflow.flows import load, roundtrip
from tests.browser.conftest import SCREENSHOTS, LoopThread
from tests.support.example_system import start_example_system
from tests.support.server import TOKEN, Server, free_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "lead-to-cash"
PASSWORD = "Hengda-2026-builder"
COMMENTED = """\
# 销售订单进 ERP：金额超过 5000 元的先等复核
id: order-to-erp
name: 订单 → ERP
trigger: {manual: {}}
steps:
  - id: order                     # the order as the ERP wants it
    transform: {number: "{{ event.body.order_no }}", amount: "{{ event.body.amount | cents }}"}
  - id: check
    if: "{{ event.body.amount > 5000 }}"
    then:
      # a person looks at big orders
      - id: review
        wait: {signal: order.reviewed, key: "{{ event.body.order_no }}", timeout: 1d}
on_error: dead_letter
"""
REFUND = """\
id: refund-to-erp
name: 退款 → ERP
trigger: {manual: {}}
steps:
  - id: refund
    transform: {order_no: "{{ event.body.order_no }}", amount: "{{ event.body.amount | cents }}"}
"""
PEOPLE = {
    "wang.fang": {"name": "王芳", "mobile": "139-0211-3344", "roles": ["builder"]},
    "li.qiang": {"name": "李强", "mobile": "138-2233-4455", "roles": ["builder"]},
}
DESKTOP = {"width": 1280, "height": 720}
TEXT_KINDS = {dict: "mapping", list: "list", bool: "boolean", int: "number", float: "number"}


@dataclass
class Site:
    server: Server
    project: Path
    api: httpx.Client
    pages: dict[str, Any]

    def editor(self, login: str, flow_id: str = "") -> Any:
        page = self.pages[login]
        page.goto(f"{self.server.url}/console/#/editor/{flow_id}")
        page.wait_for_selector(f'[data-editor="{flow_id}"]')  # not the editor of the flow shown before
        page.wait_for_selector("[data-pickers] button, [data-event-from]:not(:empty)")
        return page


@pytest.fixture(scope="module")
def site(browser: Any, loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("editor")
    project = folder / "project"
    shutil.copytree(EXAMPLE, project)
    (project / "flows" / "contract-signed.yaml").unlink()
    (project / "flows" / "order-to-erp.yaml").write_text(COMMENTED, encoding="utf-8")
    (project / "flows" / "refund-to-erp.yaml").write_text(REFUND, encoding="utf-8")
    crm_port, erp_port = free_port(), free_port()
    erp = loop_thread.run(start_example_system("erp", folder, erp_port, {"ERP_API_TOKEN": "erp-tok"}))
    crm = loop_thread.run(
        start_example_system("crm", folder, crm_port, {"CRM_API_TOKEN": "crm-tok", "CRM_WEBHOOK_SECRET": "s3cret"})
    )
    env = {
        "SEAMFLOW_VAR_CRM_URL": f"http://127.0.0.1:{crm_port}",
        "SEAMFLOW_VAR_ERP_URL": f"http://127.0.0.1:{erp_port}",
        "SEAMFLOW_VAR_SMTP_HOST": "127.0.0.1",
        "SEAMFLOW_VAR_SMTP_PORT": str(free_port()),
        "SEAMFLOW_VAR_SALES_OPS_EMAIL": "ops@example.cn",
        "SEAMFLOW_SECRET_CRM_TOKEN": "crm-tok",
        "SEAMFLOW_SECRET_ERP_TOKEN": "erp-tok",
        "SEAMFLOW_SECRET_CRM_WEBHOOK": "s3cret",
    }
    server = Server(project, env=env)
    server.env.pop("SEAMFLOW_DATABASE_URL", None)
    try:
        loop_thread.run(server.start())
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
            for login, user in PEOPLE.items():
                assert api.put(f"/api/v1/directory/users/{login}", json=user).status_code == 200
                answer = api.put(f"/api/v1/directory/users/{login}/password", json={"password": PASSWORD})
                assert answer.status_code == 204, answer.text
            contexts = {
                "wang.fang": browser.new_context(viewport=DESKTOP, locale="en-US"),
                "li.qiang": browser.new_context(viewport=DESKTOP, locale="zh-CN"),
            }
            pages = {login: context.new_page() for login, context in contexts.items()}
            errors: list[str] = []
            for login, page in pages.items():
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(server.url + "/console/")
                page.fill("input[name=login]", login)
                page.fill("input[name=password]", PASSWORD)
                page.click("form.signin button[type=submit]")
                page.wait_for_selector("#who:not(:empty)")
            yield Site(server, project, api, pages)
            for context in contexts.values():
                context.close()
            assert not errors, f"the console threw in the browser: {errors}"
    finally:
        server.kill()
        for process in (crm, erp):
            with contextlib.suppress(Exception):
                process.send_signal(signal.SIGTERM)
                process.wait(10)


# Driving the editor the way a person does: one field, one "Add" at a time.


def _dotted(path: list[Any]) -> str:
    return ".".join(str(p) for p in path)


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "longtext" if "\n" in value.rstrip("\n") or value.endswith("\n") else "text"
    return TEXT_KINDS[type(value)]


def _add(page: Any, path: list[Any], key: str | None, value: Any) -> None:
    where = _dotted(path)
    target = _dotted([*path, key]) if key is not None else None
    if target is not None:
        present = f'[data-path="{target}"], [data-mapping="{target}"], [data-list="{target}"]'
        if page.locator(present).count():
            return
        page.fill(f'[data-add-key="{where}"]', key)
    page.select_option(f'[data-add-kind="{where}"]', _kind(value))
    page.click(f'[data-add="{where}"]')


def fill(page: Any, path: list[Any], value: Any) -> None:
    where = _dotted(path)
    if isinstance(value, dict):
        for key, item in value.items():
            _add(page, path, key, item)
            fill(page, [*path, key], item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _add(page, path, None, item)
            fill(page, [*path, index], item)
    elif isinstance(value, bool):
        page.select_option(f'[data-path="{where}"]', "true" if value else "false")
    else:
        page.fill(f'[data-path="{where}"]', str(value))


STEP_KINDS = ("action", "transform", "if", "foreach", "emit", "approval", "wait", "call")
BODY_KEYS = {"id", "with", "then", "else", "steps", *STEP_KINDS}


def add_step(page: Any, path: list[Any], index: int, step: dict[str, Any]) -> None:
    where, here = _dotted(path), [*path, index]
    kind = next(k for k in STEP_KINDS if k in step)
    page.fill(f'[data-add-step-id="{where}"]', step["id"])
    page.select_option(f'[data-add-step-kind="{where}"]', kind)
    page.click(f'[data-add-step="{where}"]')
    if kind == "action":
        page.select_option(f'[data-path="{_dotted([*here, "action"])}"]', step["action"])
        fill(page, [*here, "with"], step.get("with", {}))
    elif kind in ("if", "foreach"):
        fill(page, [*here, kind], step[kind])
        for arm in ("then", "else", "steps"):
            if arm == "else" and arm in step:
                page.click(f'[data-add-else="{_dotted(here)}"]')
            for i, inner in enumerate(step.get(arm, [])):
                add_step(page, [*here, arm], i, inner)
    else:
        fill(page, [*here, kind], step[kind])
    more = {k: v for k, v in step.items() if k not in BODY_KEYS}
    if more:
        page.locator(f'[data-step="{_dotted(here)}"] > details.more').evaluate("d => d.open = true")
        fill(page, here, more)


def _saved(page: Any) -> None:
    expect(page.locator('[data-status="saved"]')).to_be_visible(timeout=20_000)


def _shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=False)


def test_the_contract_signed_flow_built_from_scratch_means_what_the_hand_written_one_means(
    site: Site, screenshots: Path
) -> None:
    written = (EXAMPLE / "flows" / "contract-signed.yaml").read_text(encoding="utf-8")
    example, _ = load.parse_yaml(written, "contract-signed.yaml")
    assert isinstance(example, dict)
    page = site.editor("wang.fang")
    page.fill('[data-path="id"]', example["id"])
    page.fill('[data-path="name"]', example["name"])
    page.fill('[data-path="description"]', example["description"])
    page.select_option("[data-trigger-kind]", "webhook")
    fill(page, ["trigger", "webhook"], example["trigger"]["webhook"])
    page.fill('[data-path="when"]', example["when"])
    for index, step in enumerate(example["steps"]):
        add_step(page, ["steps"], index, step)
    page.select_option('[data-path="on_error"]', example["on_error"])
    expect(page.locator("[data-problems]")).to_be_empty(timeout=20_000)
    _shoot(page, "editor-new-flow-steps.en.png")
    page.evaluate("window.scrollTo(0, 0)")
    _shoot(page, "editor-new-flow.en.png")
    page.click("[data-save]")
    page.wait_for_url("**/#/editor/contract-signed-to-erp", timeout=20_000)
    # the save answers once every process of the serve group serves the new flow: no reload needed
    page.wait_for_selector("[data-flow-id]", timeout=60_000)  # saved, reloaded, opened again: slow on a loaded machine
    saved = (site.project / "flows" / "contract-signed-to-erp.yaml").read_text(encoding="utf-8")
    built, built_map = load.parse_yaml(saved, "contract-signed-to-erp.yaml")
    assert built == example
    hand_spec, problems = load.flow_from_data(example, load.parse_yaml(written, "contract-signed.yaml")[1])
    built_spec, more_problems = load.flow_from_data(built, built_map)
    assert hand_spec is not None and hand_spec == built_spec, problems + more_problems
    diff = roundtrip.diff_sources(written, saved, saved_name="hand-written", their_name="built in the editor")
    (SCREENSHOTS / "editor-lead-to-cash.diff").write_text(diff, encoding="utf-8")
    # a clean diff: written the same way, the two files are the same text (keys in the same order,
    # nothing added); what remains is the hand-written file's comments and wrapping
    assert roundtrip.new_source(built) == roundtrip.new_source(example)
    served = site.api.get("/api/v1/flows/contract-signed-to-erp").json()
    assert served["outline"]["trigger"] == {"kind": "webhook", "label": "/hooks/crm/contract-signed"}


def test_a_commented_file_keeps_its_comments_and_order_and_ime_input_works(site: Site, screenshots: Path) -> None:
    run = site.api.post(
        "/api/v1/flows/order-to-erp/runs", json={"input": {"order_no": "SO-2026-0815", "amount": 1999}}
    ).json()
    assert "run_id" in run, run
    page = site.editor("li.qiang", "order-to-erp")
    number = '[data-preview="steps.0.transform.number"]'
    expect(page.locator(number)).to_have_text('→ "SO-2026-0815"', timeout=20_000)
    field = page.locator('[data-path="steps.0.transform.amount"]')
    field.fill("{{ event.body.amount | cen")
    suggestions = page.locator("ul.suggest:visible li")
    expect(suggestions).to_have_text(["center", "cents"])
    field.press("ArrowDown")
    field.press("Enter")
    field.type(" }}")
    expect(field).to_have_value("{{ event.body.amount | cents }}")
    expect(page.locator('[data-preview="steps.0.transform.amount"]')).to_have_text("→ 199900", timeout=20_000)
    name = page.locator('[data-path="name"]')
    name.fill("")
    name.focus()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.imeSetComposition", {"text": "订单", "selectionStart": 2, "selectionEnd": 2})
    cdp.send("Input.imeSetComposition", {"text": "订单同步", "selectionStart": 4, "selectionEnd": 4})
    cdp.send("Input.insertText", {"text": "订单同步到 ERP"})
    expect(name).to_have_value("订单同步到 ERP")
    page.fill('[data-path="steps.1.then.0.wait.timeout"]', "2d")
    _shoot(page, "editor-commented.zh-CN.png")
    page.click("[data-save]")
    _saved(page)
    saved = (site.project / "flows" / "order-to-erp.yaml").read_text(encoding="utf-8")
    expected = COMMENTED.replace("name: 订单 → ERP\n", "name: 订单同步到 ERP\n").replace("timeout: 1d}", "timeout: 2d}")
    assert saved == expected


def test_two_editors_saving_the_same_flow_the_second_gets_the_conflict_and_merges(
    site: Site, screenshots: Path
) -> None:
    first = site.editor("wang.fang", "refund-to-erp")
    second = site.editor("li.qiang", "refund-to-erp")
    first.fill('[data-path="steps.0.transform.order_no"]', "{{ event.body.order_no | trim }}")
    second.fill('[data-path="name"]', "退款同步到 ERP（李强）")
    first.click("[data-save]")
    _saved(first)
    second.click("[data-save]")
    expect(second.locator("[data-conflict]")).to_be_visible(timeout=20_000)
    expect(second.locator("[data-theirs]")).to_contain_text("{{ event.body.order_no | trim }}")
    expect(second.locator("[data-diff]")).to_contain_text("+name: 退款同步到 ERP（李强）")
    _shoot(second, "editor-conflict.zh-CN.png")
    on_disk = (site.project / "flows" / "refund-to-erp.yaml").read_text(encoding="utf-8")
    assert "李强" not in on_disk and "| trim" in on_disk
    second.click("[data-merge]")
    expect(second.locator('[data-status="merged"]')).to_be_visible()
    second.click("[data-save]")
    _saved(second)
    saved = (site.project / "flows" / "refund-to-erp.yaml").read_text(encoding="utf-8")
    assert saved == REFUND.replace("name: 退款 → ERP", "name: 退款同步到 ERP（李强）").replace(
        '"{{ event.body.order_no }}"', '"{{ event.body.order_no | trim }}"'
    )


def test_testing_with_an_event_runs_the_draft_on_the_pasted_event(site: Site, screenshots: Path) -> None:
    page = site.editor("wang.fang", "refund-to-erp")
    page.fill("[data-event]", '{"order_no": "RF-2026-0031", "amount": "88.00"}')
    page.locator("[data-event]").dispatch_event("change")
    expect(page.locator('[data-preview="steps.0.transform.order_no"]')).to_have_text('→ "RF-2026-0031"', timeout=20_000)
    page.click("[data-test]")
    expect(page.locator('[data-test-outcome="completed"]')).to_be_visible(timeout=20_000)
    row = page.locator("[data-test-outcome] tbody tr").first
    expect(row).to_contain_text("refund")
    expect(row).to_contain_text("RF-2026-0031")
    expect(row).to_contain_text("8800")  # the draft's `| cents` ran on the pasted body
    _shoot(page, "editor-preview.en.png")
