"""Per-step policies: timeout, on_error continue, a custom idempotency key, waits for a duration or until an instant."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from seamflow import codec
from tests.acceptance.flows import sink_connection
from tests.support.server import make_project, serve
from tests.support.sink import Behaviour, Sink
from tests.support.wait import eventually

POLICIES = """
id: policies
trigger: {webhook: {path: p}}
steps:
  - id: slow
    action: sink.post
    with: {path: /slow, json: {}}
    timeout: 300ms
    retry: {attempts: 2, initial_delay: 100ms, jitter: false}
    on_error: continue
  - id: keyed
    action: sink.post
    with: {path: /keyed, json: {slow_failed: "{{ steps.slow.error.code }}"}}
    idempotency_key: "invoice-{{ event.body.invoice_no }}"
  - id: nap
    wait: {duration: 1s}
  - id: until
    wait: {until: "{{ event.body.not_before }}"}
  - id: after
    action: sink.post
    with: {path: /after, json: {}}
"""


async def test_timeout_retry_continue_custom_key_and_waits(project_dir: Path, sink: Sink) -> None:
    sink.behaviour = Behaviour(delay_ms=1000)
    make_project(project_dir, {"policies": POLICIES}, sink_connection(sink.url))
    async with serve(project_dir) as server, server.client() as client:
        body = {"invoice_no": "FP-88", "not_before": "2020-01-01T08:00:00+08:00"}
        run_id = (await client.post("/hooks/p", json=body)).json()["run_id"]

        async def slow_gave_up() -> None:
            run = (await client.get(f"/api/v1/runs/{run_id}")).json()
            assert any(s["step"] == "slow" and s["status"] == "completed" for s in run["steps"]), run

        await eventually(slow_gave_up)
        sink.behaviour = Behaviour()

        async def completed() -> dict:
            run = (await client.get(f"/api/v1/runs/{run_id}")).json()
            assert run["status"] == "completed", run
            return run

        run = await eventually(completed, timeout=20)
    slow = [s for s in run["steps"] if s["step"] == "slow"]
    assert [s["status"] for s in slow] == ["retrying", "completed"]
    assert "no answer within 0.3 s" in slow[0]["error"]["message"]
    assert slow[1]["output"]["error"]["code"] == "connector.transient", "on_error: continue keeps the error as output"
    keyed = [r for r in sink.requests if r.path == "/keyed"]
    assert [r.idempotency_key for r in keyed] == ["invoice-FP-88"]
    assert codec.loads(keyed[0].body) == {"slow_failed": "connector.transient"}
    nap = next(s for s in run["steps"] if s["step"] == "nap" and s["status"] == "completed")
    parked = next(s for s in run["steps"] if s["step"] == "nap" and s["status"] == "waiting")
    slept = datetime.fromisoformat(nap["finished"]) - datetime.fromisoformat(parked["finished"])
    assert slept.total_seconds() >= 0.95, "the duration wait parked the run for its second"
    assert [s["status"] for s in run["steps"] if s["step"] == "until"] == ["waiting", "completed"]
    assert len([r for r in sink.requests if r.path == "/after"]) == 1
