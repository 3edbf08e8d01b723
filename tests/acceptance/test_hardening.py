"""A hardened `seamflow serve`: metrics behind a token or their own address, liveness open, timestamped
webhook signatures refused when stale or replayed, per-hook rate limits, security headers, the
OpenAPI security schemes. Slow clients are in test_hardening_slowloris.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import TOKEN, Server, free_port, make_project

SECRET = "whsec-hardening-8d2e"  # passed to the server as SEAMFLOW_SECRET_HOOK
FLOWS = {
    "orders": """id: shop-orders
trigger:
  webhook:
    path: shop/orders
    rate_limit: {requests: 3, per: 1m}
steps:
  - id: total
    transform: "{{ event.body.amount }}"
""",
    "payments": """id: bank-payments
trigger:
  webhook:
    path: bank/payments
    signature: {secret: "{{ secrets.hook }}", header: X-Signature, prefix: "sha256=", timestamp_header: X-Timestamp}
steps:
  - id: total
    transform: "{{ event.body.amount }}"
""",
}
BODY = json.dumps({"order_no": "SO-20261207-0042", "amount": "1299.00", "customer": "杭州恒达贸易有限公司"}).encode()
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def server(project_dir: Path) -> AsyncIterator[Server]:
    make_project(project_dir, FLOWS)
    metrics_port = free_port()
    running = Server(
        project_dir,
        env={
            "SEAMFLOW_SECRET_HOOK": SECRET,
            "SEAMFLOW_PROCESSES": "1",
            "SEAMFLOW_METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
        },
    )
    running.metrics_url = f"http://127.0.0.1:{metrics_port}"  # type: ignore[attr-defined]
    await running.start()
    try:
        yield running
    finally:
        running.kill()


def _signed(body: bytes, at: int, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return {**JSON, "X-Timestamp": str(at), "X-Signature": f"sha256={digest}"}


async def test_metrics_need_a_token_or_their_own_address_and_liveness_tells_nothing(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        assert (await anonymous.post("/hooks/shop/orders", content=BODY, headers=JSON)).status_code == 202
        refused = await anonymous.get("/metrics")
        live = await anonymous.get("/health/live")
        ready = await anonymous.get("/health")
    assert refused.status_code == 401 and "seamflow_" not in refused.text
    assert live.status_code == 200 and live.json() == {"live": True}
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert not {"runs", "worker", "queue_depth", "schema"} & set(ready.json()), ready.json()
    assert "shop-orders" not in live.text + ready.text

    async with server.client() as admin:
        metrics = await admin.get("/metrics")
        detailed = await admin.get("/health")
    assert metrics.status_code == 200 and 'flow="shop-orders"' in metrics.text
    assert "worker" in detailed.json() and "runs" in detailed.json()

    async with httpx.AsyncClient(base_url=server.metrics_url) as monitoring:  # type: ignore[attr-defined]
        scraped = await monitoring.get("/metrics")
        health = await monitoring.get("/health")
        api = await monitoring.get("/api/v1/runs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200 and 'flow="shop-orders"' in scraped.text
    assert "worker" in health.json()
    assert api.status_code == 404, "the metrics address serves metrics and health only"


async def test_a_hook_over_its_rate_limit_gets_429_with_retry_after(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as sender:
        answers = [await sender.post("/hooks/shop/orders", content=BODY, headers=JSON) for _ in range(4)]
        other = await sender.post("/hooks/bank/payments", content=BODY, headers=_signed(BODY, int(time.time())))
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    limited = answers[-1]
    assert limited.json()["code"] == "webhook.rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert "3 requests per 60 s" in limited.json()["detail"]
    assert other.status_code == 202, "another flow's hook has its own limit"


async def test_stale_replayed_and_unsigned_timestamps_are_refused(server: Server) -> None:
    now = int(time.time())
    async with httpx.AsyncClient(base_url=server.url) as sender:
        first = await sender.post("/hooks/bank/payments", content=BODY, headers=_signed(BODY, now))
        replayed = await sender.post("/hooks/bank/payments", content=BODY, headers=_signed(BODY, now))
        stale = await sender.post("/hooks/bank/payments", content=BODY, headers=_signed(BODY, now - 600))
        future = await sender.post("/hooks/bank/payments", content=BODY, headers=_signed(BODY, now + 600))
        wrong = await sender.post("/hooks/bank/payments", content=BODY, headers=_signed(BODY, now, "not-the-secret"))
        no_time = await sender.post(
            "/hooks/bank/payments", content=BODY, headers={**_signed(BODY, now + 1), "X-Timestamp": ""}
        )
        moved = {**_signed(BODY, now + 2), "X-Timestamp": str(now + 3)}  # a timestamp the signature does not cover
        shifted = await sender.post("/hooks/bank/payments", content=BODY, headers=moved)
        fresh = await sender.post("/hooks/bank/payments", content=BODY, headers=_signed(BODY, now + 4))
    assert first.status_code == 202, first.text
    codes = [r.json()["code"] for r in (replayed, stale, future, wrong, no_time, shifted)]
    assert codes == [
        "webhook.signature_replayed",
        "webhook.signature_stale",
        "webhook.signature_stale",
        "webhook.signature_invalid",
        "webhook.signature_missing",
        "webhook.signature_invalid",
    ]
    assert all(r.status_code == 401 for r in (replayed, stale, future, wrong, no_time, shifted))
    assert fresh.status_code == 202, "the same body signed again with a new timestamp is accepted"
    assert SECRET not in server.log_path.read_text()


async def test_html_pages_carry_security_headers_and_openapi_declares_its_schemes(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as browser:
        page = await browser.get("/docs")
        document = (await browser.get("/openapi.json")).json()
        api = await browser.get("/api/v1/runs")
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    assert api.headers["x-content-type-options"] == "nosniff"
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]}
    assert schemes["session"]["in"] == "cookie" and schemes["session"]["name"] == "seamflow_session"
    assert document["security"] == [{"bearer": []}, {"session": []}]
    assert document["paths"]["/health/live"]["get"]["security"] == []
    assert "security" not in document["paths"]["/api/v1/runs"]["get"], "protected routes use the global schemes"
