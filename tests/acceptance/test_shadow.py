"""Shadow runs: a candidate that changes one mapping, rehearsed on the live runs' events, shows exactly the
changed fields per event — and the real target (a running sink) receives nothing from it."""

from __future__ import annotations

from pathlib import Path

from tests.support.server import make_project, serve
from tests.support.sink import Sink
from tests.support.wait import eventually

LIVE = """
id: order-to-erp
trigger: {webhook: {path: shop/orders}}
steps:
  - id: customer
    action: erp.post
    with:
      path: /erp/customers
      json: {mobile: "{{ event.body.mobile }}", name: "{{ event.body.name }}"}
  - id: order
    action: erp.post
    with:
      path: /erp/orders
      json:
        customer: "{{ steps.customer.body.effect }}"
        amount_cents: "{{ event.body.amount | cents }}"
        channel: web
"""
CANDIDATE = LIVE.replace('mobile: "{{ event.body.mobile }}"', 'mobile: "{{ event.body.mobile | phone_cn }}"')
ORDERS = [
    {"order_no": "SO-1001", "mobile": "+86 138 0013 8000", "name": "张伟", "amount": "199.00"},
    {"order_no": "SO-1002", "mobile": "13900139000", "name": "李娜", "amount": "88.50"},
    {"order_no": "SO-1003", "mobile": "0086-186-2000-1234", "name": "王芳", "amount": "1024.00"},
]


async def test_a_changed_mapping_shows_exactly_the_changed_fields_and_sends_nothing(
    project_dir: Path, sink: Sink
) -> None:
    make_project(project_dir, {"orders": LIVE}, f"erp:\n  connector: http\n  base_url: {sink.url}\n")
    async with serve(project_dir) as server, server.client() as client:
        runs = [(await client.post("/hooks/shop/orders", json=order)).json()["run_id"] for order in ORDERS]

        async def all_completed() -> None:
            statuses = [(await client.get(f"/api/v1/runs/{r}")).json()["status"] for r in runs]
            assert statuses == ["completed"] * 3

        await eventually(all_completed)
        live_requests = len(sink.requests)
        assert live_requests == 6
        started = await client.post("/api/v1/flows/order-to-erp/shadows", json={"source": CANDIDATE, "runs": 10})
        assert started.status_code == 200, started.text
        listed = await client.get("/api/v1/flows/order-to-erp/shadows", params={"shadow": started.json()["shadow_id"]})
        other_flow = await client.post(
            "/api/v1/flows/order-to-erp/shadows", json={"source": CANDIDATE.replace("order-to-erp", "x"), "runs": 1}
        )
    assert len(sink.requests) == live_requests  # the candidate reached no target
    results = started.json()["results"]
    assert listed.json() == results
    by_run = {r["run_id"]: r["report"] for r in results}
    assert set(by_run) == set(runs)
    expected_mobiles = {runs[0]: ("+86 138 0013 8000", "13800138000"), runs[2]: ("0086-186-2000-1234", "18620001234")}
    for run_id, report in by_run.items():
        assert report["outcome"] == {"live": "completed", "candidate": "completed"}
        customer, order = report["calls"]
        assert (customer["step"], order["step"], order["change"]) == ("customer", "order", "same")
        assert order["fields"] == []
        if run_id in expected_mobiles:
            live, candidate = expected_mobiles[run_id]
            assert customer["change"] == "changed"
            assert customer["fields"] == [{"field": "json.mobile", "live": live, "candidate": candidate}]
            assert report["is_same"] is False
        else:  # 13900139000 was already in the normal form
            assert customer["change"] == "same" and report["is_same"] is True
    assert other_flow.status_code == 400 and other_flow.json()["code"] == "shadow.other_flow"
