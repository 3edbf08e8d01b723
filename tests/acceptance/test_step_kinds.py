"""Every step kind through a real server: foreach with a bound, call of another flow, respond, emit, when."""

from __future__ import annotations

import asyncio
from pathlib import Path

from seamflow import codec
from tests.acceptance.flows import sink_connection
from tests.support.runs import run_in_status
from tests.support.server import make_project, serve
from tests.support.sink import Behaviour, Sink

ORDER_LINES = """
id: order-lines
trigger: {webhook: {path: lines}}
when: "{{ event.body.status == 'signed' }}"
steps:
  - id: post_lines
    foreach: "{{ event.body.lines }}"
    as: line
    concurrency: 2
    steps:
      - id: post
        action: sink.post
        with:
          path: /lines
          json: {sku: "{{ line.sku }}", qty: "{{ line.qty }}", index: "{{ loop_index }}"}
  - id: customer
    call: upsert-customer
    input: {name: "{{ event.body.customer }}"}
  - id: done
    emit:
      activity: Order lines posted
      objects: {contract: "{{ event.body.contract_id }}", customer: "{{ steps.customer.customer_no }}"}
      attributes: {lines: "{{ event.body.lines | length }}"}
"""

UPSERT_CUSTOMER = """
id: upsert-customer
trigger: {manual: {}}
steps:
  - id: create
    action: sink.post
    with: {path: /customers, json: {name: "{{ event.body.name }}"}}
  - id: result
    transform: {customer_no: "CUS-{{ steps.create.body.effect }}", name: "{{ event.body.name }}"}
"""

QUOTE = """
id: quote
trigger: {webhook: {path: quote, mode: sync, response_timeout: 5s}}
steps:
  - id: price
    transform: {total_cents: "{{ (event.body.qty * event.body.unit_cents) }}", currency: CNY}
  - id: answer
    respond:
      status: 200
      body: {quote: "{{ steps.price }}", for: "{{ event.body.customer }}"}
"""


async def test_foreach_call_and_emit(project_dir: Path, sink: Sink) -> None:
    sink.behaviour = Behaviour(delay_ms=150)
    make_project(project_dir, {"lines": ORDER_LINES, "customer": UPSERT_CUSTOMER}, sink_connection(sink.url))
    body = {
        "status": "signed",
        "contract_id": "HT-2026-118",
        "customer": "上海华联贸易有限公司",
        "lines": [{"sku": f"SKU-{i}", "qty": i + 1} for i in range(5)],
    }
    async with serve(project_dir) as server, server.client() as client:
        run_id = (await client.post("/hooks/lines", json=body)).json()["run_id"]
        run = await run_in_status(client, run_id, "completed")
        events = (await client.get("/api/v1/events", params={"run": run_id})).json()
    lines = sorted((codec.loads(r.body) for r in sink.requests if r.path == "/lines"), key=lambda b: b["index"])
    assert lines == [{"sku": f"SKU-{i}", "qty": i + 1, "index": i} for i in range(5)]
    assert sink.stats()["max_in_flight"] <= 2, "foreach concurrency: 2 bounds the calls in flight"
    keys = {r.idempotency_key for r in sink.requests if r.path == "/lines"}
    assert keys == {f"{run_id}:post_lines[{i}].post" for i in range(5)}, "the key carries the iteration"
    customers = [codec.loads(r.body) for r in sink.requests if r.path == "/customers"]
    assert customers == [{"name": "上海华联贸易有限公司"}]
    business = [e for e in events if e["kind"] == "business"]
    assert len(business) == 1
    assert business[0]["activity"] == "Order lines posted"
    # the sink numbers effects: five lines first, then the customer of the child run
    assert business[0]["objects"] == {"contract": "HT-2026-118", "customer": "CUS-6"}
    assert business[0]["attributes"] == {"lines": 5}
    assert run["steps"][-1]["output"]["objects"]["customer"] == "CUS-6"


async def test_when_false_starts_no_run(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"lines": ORDER_LINES, "customer": UPSERT_CUSTOMER}, sink_connection(sink.url))
    async with serve(project_dir) as server, server.client() as client:
        answer = await client.post("/hooks/lines", json={"status": "draft", "lines": []})
        runs = (await client.get("/api/v1/runs")).json()
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    assert runs == []


async def test_sync_webhook_answers_with_the_respond_step(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"quote": QUOTE}, sink_connection(sink.url))
    async with serve(project_dir) as server, server.client() as client:
        answer = await client.post("/hooks/quote", json={"qty": 3, "unit_cents": 1990, "customer": "李雷"})
    assert answer.status_code == 200
    assert answer.json() == {"quote": {"total_cents": 5970, "currency": "CNY"}, "for": "李雷"}
    assert answer.headers["x-seamflow-run-id"].startswith("run_")


async def test_connection_concurrency_limit_bounds_calls_in_flight(project_dir: Path, sink: Sink) -> None:
    flow = """
id: slow-erp
trigger: {webhook: {path: slow}}
steps:
  - id: post
    action: sink.post
    with: {path: /slow, json: "{{ event.body }}"}
"""
    sink.behaviour = Behaviour(delay_ms=100)
    make_project(project_dir, {"slow": flow}, sink_connection(sink.url, concurrency=3))
    async with serve(project_dir) as server, server.client() as client:
        answers = await asyncio.gather(*[client.post("/hooks/slow", json={"n": i}) for i in range(30)])
        for a in answers:
            await run_in_status(client, a.json()["run_id"], "completed")
    stats = sink.stats()
    assert stats["effects"] == 30
    assert stats["max_in_flight"] == 3


async def test_large_bodies_are_stored_once_by_reference(project_dir: Path, sink: Sink) -> None:
    flow = """
id: big
trigger: {webhook: {path: big}}
steps:
  - id: copy
    transform: {doc: "{{ event.body.doc }}"}
  - id: size
    transform: {length: "{{ steps.copy.doc | length }}"}
"""
    make_project(project_dir, {"big": flow}, sink_connection(sink.url))
    doc = "发票明细" * 100_000  # 1.2 MB of UTF-8
    async with serve(project_dir) as server, server.client() as client:
        run_id = (await client.post("/hooks/big", json={"doc": doc})).json()["run_id"]
        run = await run_in_status(client, run_id, "completed")
    assert run["steps"][1]["output"] == {"length": len(doc)}
    [blobs] = server.database.query("SELECT COUNT(*), SUM(LENGTH(data)) FROM blobs")
    assert blobs[0] == 2, "the event body and the copied step output are stored as blobs"
    assert blobs[1] < 3 * len(doc.encode()) + 1000
