"""Feedback through a real `seamflow serve`: any signed-in user leaves it on a flow, a step or a run;
a process owner (operate) closes it with a note; bad references are refused; the CLI lists and closes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from click.testing import CliRunner, Result

from seamflow.api import access
from seamflow.cli import main
from tests.support.runs import run_in_status
from tests.support.server import make_project, serve

PASSWORD = "Hengda-2026-finance"
FLOW = """
id: purchase-request
trigger: {manual: {}}
steps:
  - id: request
    transform: {amount: "{{ event.body.amount }}"}
  - id: finance
    wait: {signal: finance.decided, key: "{{ event.body.request_no }}", timeout: 1d}
"""
CSRF = {access.CSRF_HEADER: "1"}


async def _cli(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, main, list(args))  # the CLI runs its own event loop


async def _signed_in(server_url: str, admin: httpx.AsyncClient, login: str, role: str) -> httpx.AsyncClient:
    user = {"name": "赵敏", "mobile": "139-0211-3344", "roles": [role]}
    assert (await admin.put(f"/api/v1/directory/users/{login}", json=user)).status_code == 200
    password = {"password": PASSWORD}
    assert (await admin.put(f"/api/v1/directory/users/{login}/password", json=password)).status_code == 204
    browser = httpx.AsyncClient(base_url=server_url, headers=CSRF)
    assert (await browser.post("/api/v1/session", json={"login": login, "password": PASSWORD})).status_code == 200
    return browser


async def test_a_viewer_leaves_feedback_on_a_step_of_a_run_and_an_operator_closes_it(project_dir: Path) -> None:
    make_project(project_dir, {"purchase": FLOW})
    async with serve(project_dir) as server, server.client() as admin:
        body = {"input": {"request_no": "PR-2026-0412", "amount": "23500.50"}}
        run_id = (await admin.post("/api/v1/flows/purchase-request/runs", json=body)).json()["run_id"]
        await run_in_status(admin, run_id, "waiting")
        viewer = await _signed_in(server.url, admin, "zhao.min", "viewer")
        owner = await _signed_in(server.url, admin, "li.na", "operator")
        try:
            text = "这个审批总是在等财务总监"
            about = {"kind": "problem", "flow": "purchase-request", "run": run_id, "step": "finance", "text": text}
            left = await viewer.post("/api/v1/feedback", json=about)
            assert left.status_code == 201, left.text
            feedback = left.json()
            assert (feedback["author"], feedback["status"], feedback["step"]) == ("zhao.min", "open", "finance")
            refused = await viewer.post(f"/api/v1/feedback/{feedback['id']}/close", json={"note": "ok"})
            assert refused.status_code == 403, "closing needs the operate scope"
            note = {"note": "已加副总监为备选审批人"}
            closed = await owner.post(f"/api/v1/feedback/{feedback['id']}/close", json=note)
            assert (closed.json()["status"], closed.json()["closed_by"]) == ("closed", "li.na")
            again = await owner.post(f"/api/v1/feedback/{feedback['id']}/close", json=note)
            assert (again.status_code, again.json()["code"]) == (409, "feedback.closed")
            listed = (await viewer.get("/api/v1/feedback?status=closed")).json()
            assert [f["note"] for f in listed] == ["已加副总监为备选审批人"]
        finally:
            await viewer.aclose()
            await owner.aclose()
        log = (await admin.get("/api/v1/events", params={"run": run_id})).json()
        kinds = [(r["kind"], r["step"], r["attributes"]["who"]) for r in log if r["kind"].startswith("feedback.")]
        assert kinds == [("feedback.created", "finance", "zhao.min"), ("feedback.closed", "finance", "li.na")]


async def test_feedback_on_a_step_or_run_the_flow_does_not_have_is_refused(project_dir: Path) -> None:
    make_project(project_dir, {"purchase": FLOW})
    async with serve(project_dir) as server, server.client() as admin:
        bad_step = {"kind": "suggestion", "flow": "purchase-request", "step": "cashier", "text": "加一个出纳步骤"}
        answer = await admin.post("/api/v1/feedback", json=bad_step)
        assert answer.status_code == 400 and "no step 'cashier'" in answer.json()["detail"], answer.text
        assert "finance, request" in answer.json()["detail"]
        bad_flow = {"kind": "suggestion", "flow": "nope", "text": "?"}
        assert (await admin.post("/api/v1/feedback", json=bad_flow)).status_code == 404
        bad_run = {"kind": "problem", "flow": "purchase-request", "run": "run_nope", "text": "?"}
        assert (await admin.post("/api/v1/feedback", json=bad_run)).status_code == 404
        assert (await admin.get("/api/v1/feedback")).json() == [], "nothing was kept"


async def test_the_cli_lists_and_closes_feedback(project_dir: Path) -> None:
    make_project(project_dir, {"purchase": FLOW})
    async with serve(project_dir) as server, server.client() as admin:
        about = {"kind": "suggestion", "flow": "purchase-request", "text": "金额超过五万才需要财务总监"}
        feedback_id = (await admin.post("/api/v1/feedback", json=about)).json()["id"]
    listed = await _cli("feedback", "list", "--project", str(project_dir))
    assert listed.exit_code == 0 and feedback_id in listed.output and "金额超过五万" in listed.output, listed.output
    args = ["feedback", "close", feedback_id, "--note", "已改为五万以上", "--project", str(project_dir)]
    closed = await _cli(*args)
    assert closed.exit_code == 0, closed.output
    assert (await _cli("feedback", "list", "--project", str(project_dir))).output.strip() == "no open feedback"
    again = await _cli(*args)
    assert again.exit_code == 2 and "feedback.closed" in again.output
