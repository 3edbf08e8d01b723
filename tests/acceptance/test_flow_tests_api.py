"""`POST /api/v1/flows/test`: the editor's contract — a flow's text run once with its calls captured."""

from __future__ import annotations

from pathlib import Path

from seamflow import codec
from tests.acceptance.flows import sink_connection
from tests.support.server import make_project, serve
from tests.support.sink import Sink

ORDER_FLOW = """
id: contract-to-erp
trigger: {webhook: {path: crm/contracts}}
steps:
  - id: customer
    action: sink.post
    with:
      path: /erp/customers
      json: {external_id: "{{ event.body.customer.id }}", name: "{{ event.body.customer.name }}"}
      headers: {X-Erp-Token: "{{ secrets.erp_token }}"}
  - id: order
    action: sink.post
    with:
      path: /erp/orders
      json: {customer: "{{ steps.customer.body.id }}", amount_cents: "{{ event.body.amount | cents }}"}
  - id: done
    transform: {order_no: "{{ steps.order.body.number }}"}
"""

SECRET = "erp-token-5f3c9a71d2"
EVENT = {"body": {"contract_id": "HT-2026-0042", "amount": "12800.50", "customer": {"id": "C-77", "name": "张伟"}}}


async def test_a_flow_text_runs_once_with_calls_answered_by_fixtures_and_nothing_sent(
    project_dir: Path, sink: Sink
) -> None:
    make_project(project_dir, {}, sink_connection(sink.url))
    fixtures = {
        "customer": {"answer": {"status": 200, "body": {"id": "ERP-C-9"}}},  # by step id
        "sink.post": {"answer": {"status": 201, "body": {"number": "SO-20260042"}}},  # any other sink.post
    }
    async with serve(project_dir, env={"SEAMFLOW_SECRET_ERP_TOKEN": SECRET}) as server, server.client() as client:
        answer = await client.post(
            "/api/v1/flows/test", json={"source": ORDER_FLOW, "event": EVENT, "fixtures": fixtures}
        )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["flow_id"] == "contract-to-erp"
    assert result["outcome"] == "completed", result
    assert [s["id"] for s in result["steps"]] == ["customer", "order", "done"]
    assert all(s["attempts"] == 1 and s["error"] is None and s["duration_ms"] >= 0 for s in result["steps"])
    assert result["steps"][2]["output"] == {"order_no": "SO-20260042"}
    effects = result["effects"]
    assert [(e["step"], e["connection"], e["action"], e["answered_from"]) for e in effects] == [
        ("customer", "sink", "post", "fixture"),
        ("order", "sink", "post", "fixture"),
    ]
    assert effects[0]["request"]["json"] == {"external_id": "C-77", "name": "张伟"}
    assert effects[1]["request"]["json"] == {"customer": "ERP-C-9", "amount_cents": 1280050}
    assert SECRET not in answer.text and effects[0]["request"]["headers"]["X-Erp-Token"] == "***"
    assert sink.requests == []


async def test_invalid_flow_text_answers_422_with_the_problems_flow_validate_prints(
    project_dir: Path, sink: Sink
) -> None:
    make_project(project_dir, {}, sink_connection(sink.url))
    broken = ORDER_FLOW.replace(
        "action: sink.post\n    with:\n      path: /erp/orders", "action: erp.post\n    with:\n      path: /erp/orders"
    )
    async with serve(project_dir, env={"SEAMFLOW_SECRET_ERP_TOKEN": SECRET}) as server, server.client() as client:
        bad_yaml = await client.post("/api/v1/flows/test", json={"source": "id: x\nsteps: [\n", "event": EVENT})
        unknown = await client.post("/api/v1/flows/test", json={"source": broken, "event": EVENT})
    assert bad_yaml.status_code == 422
    assert bad_yaml.json()["code"] == "flow.invalid"
    assert all(e["message"].startswith("<source>:") for e in bad_yaml.json()["errors"])
    assert unknown.status_code == 422
    messages = [e["message"] for e in unknown.json()["errors"]]
    assert any(m.startswith("<source>:12:") and "erp" in m for m in messages), messages


async def test_a_fixture_error_fails_the_run_at_its_step(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {}, sink_connection(sink.url))
    fixtures = {"sink.post": {"error": "ERP refused: customer C-77 is frozen"}}
    async with serve(project_dir, env={"SEAMFLOW_SECRET_ERP_TOKEN": SECRET}) as server, server.client() as client:
        answer = await client.post(
            "/api/v1/flows/test", json={"source": ORDER_FLOW, "event": EVENT, "fixtures": fixtures}
        )
        unanswered = await client.post("/api/v1/flows/test", json={"source": ORDER_FLOW, "event": EVENT})
        no_body = await client.post("/api/v1/flows/test", json={"source": ORDER_FLOW, "event": {"amount": 1}})
    result = answer.json()
    assert result["outcome"] == "failed"
    assert [s["id"] for s in result["steps"]] == ["customer"]
    assert "customer C-77 is frozen" in result["steps"][0]["error"]
    plain = unanswered.json()  # without fixtures a call gets {}: `steps.customer.body` is undefined
    assert [e["answered_from"] for e in plain["effects"]] == ["default"]
    assert plain["outcome"] == "failed" and [s["id"] for s in plain["steps"]] == ["customer", "order"]
    assert "'body' is undefined" in plain["steps"][-1]["error"]
    assert no_body.status_code == 400 and no_body.json()["code"] == "flow_test.event_invalid"
    assert codec.loads(no_body.content)["detail"].startswith("event: got")
    assert sink.requests == []
