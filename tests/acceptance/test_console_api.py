"""What the console needs from a real `seamflow serve`, on both backends and without a browser:
its files (compressed, under a strict content policy), runs found by business key, a flow's
outline, and cookie-signed changes refused without the CSRF header."""

from __future__ import annotations

from pathlib import Path

import httpx

from seamflow.api import access
from tests.support.runs import run_in_status
from tests.support.server import make_project, serve

PASSWORD = "Hengda-2026-finance"
FLOW = """
id: order-to-erp
trigger: {manual: {}}
steps:
  - id: order
    transform: {number: "{{ event.body.order_no }}"}
  - id: check
    if: "{{ event.body.amount > 5000 }}"
    then:
      - id: review
        wait: {signal: order.reviewed, key: "{{ event.body.order_no }}", timeout: 1d}
"""


async def test_the_console_is_served_compressed_under_a_strict_content_policy(project_dir: Path) -> None:
    make_project(project_dir, {"order": FLOW})
    async with serve(project_dir) as server, httpx.AsyncClient(base_url=server.url) as client:
        home = await client.get("/")
        assert (home.status_code, home.headers["location"]) == (307, "/console/")
        page = await client.get("/console/")
        assert page.status_code == 200 and '<script type="module" src="js/main.js">' in page.text
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        script = await client.get("/console/js/main.js", headers={"Accept-Encoding": "gzip"})
        assert script.headers["content-encoding"] == "gzip" and "javascript" in script.headers["content-type"]
        for language in ("en", "zh-CN"):
            assert (await client.get(f"/console/i18n/{language}.json")).json()["nav.runs"] in ("Runs", "运行")
        assert (await client.get("/console/../pyproject.toml")).status_code == 404


async def test_runs_are_found_by_business_key_and_counted_at_a_glance(project_dir: Path) -> None:
    make_project(project_dir, {"order": FLOW})
    async with serve(project_dir) as server, server.client() as client:
        started = {}
        for order_no in ("SO-2026-0815", "SO-2026-0816"):
            body = {"input": {"order_no": order_no, "amount": 120}, "idempotency_key": order_no}
            answer = await client.post("/api/v1/flows/order-to-erp/runs", json=body)
            started[order_no] = answer.json()["run_id"]
            await run_in_status(client, started[order_no], "completed")
        for query in ("key=SO-2026-0815", "key=SO-2026-0815&flow=order-to-erp"):
            found = (await client.get(f"/api/v1/runs?{query}")).json()
            assert [r["run_id"] for r in found] == [started["SO-2026-0815"]], query
        assert (await client.get("/api/v1/runs?key=SO-2026-0815&flow=other")).json() == []
        assert (await client.get("/api/v1/runs?key=SO-2026-9999")).json() == []
        waiting = {"input": {"order_no": "SO-2026-0817", "amount": 8000}}
        run_id = (await client.post("/api/v1/flows/order-to-erp/runs", json=waiting)).json()["run_id"]
        await run_in_status(client, run_id, "waiting")
        glance = (await client.get("/api/v1/overview")).json()
    assert glance["runs"] == {"queued": 0, "running": 0, "waiting": 1, "failed": 0, "dead_letter": 0}
    assert glance["finished_last_minute"] == 2 and glance["queue_depth"] == 0


async def test_a_flow_has_its_outline_for_the_diagram(project_dir: Path) -> None:
    make_project(project_dir, {"order": FLOW})
    async with serve(project_dir) as server, server.client() as client:
        flow = (await client.get("/api/v1/flows/order-to-erp")).json()
    assert flow["outline"] == {
        "trigger": {"kind": "manual", "label": ""},
        "steps": [
            {"id": "order", "kind": "transform", "label": ""},
            {
                "id": "check",
                "kind": "if",
                "label": "{{ event.body.amount > 5000 }}",
                "then": [{"id": "review", "kind": "wait", "label": "signal order.reviewed"}],
                "else": [],
            },
        ],
    }


async def test_a_cookie_signed_change_needs_the_csrf_header(project_dir: Path) -> None:
    make_project(project_dir, {"order": FLOW})
    async with serve(project_dir) as server, server.client() as admin:
        user = {"name": "王芳", "mobile": "139-0211-3344", "roles": ["operator"]}
        assert (await admin.put("/api/v1/directory/users/wang.fang", json=user)).status_code == 200
        password = {"password": PASSWORD}
        assert (await admin.put("/api/v1/directory/users/wang.fang/password", json=password)).status_code == 204
        async with httpx.AsyncClient(base_url=server.url) as browser:
            signed_in = await browser.post("/api/v1/session", json={"login": "wang.fang", "password": PASSWORD})
            assert signed_in.status_code == 200, signed_in.text
            body = {"input": {"order_no": "SO-2026-0901", "amount": 1}}
            refused = await browser.post("/api/v1/flows/order-to-erp/runs", json=body)
            assert (refused.status_code, refused.json()["code"]) == (403, "auth.csrf")
            assert "X-Seamflow-CSRF" in refused.json()["detail"]
            assert (await admin.get("/api/v1/runs")).json() == [], "nothing was started"
            answer = await browser.post("/api/v1/flows/order-to-erp/runs", json=body, headers={access.CSRF_HEADER: "1"})
            assert answer.status_code == 202, answer.text
            assert (await browser.get("/api/v1/runs")).status_code == 200, "reading needs no header"
