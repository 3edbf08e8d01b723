"""Retries: transient failures are retried with the same key; permanent ones dead-letter; replay finishes them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from seamflow import codec
from tests.acceptance.flows import FORWARD, sink_connection
from tests.support.runs import run_in_status
from tests.support.server import make_project, serve
from tests.support.sink import Behaviour, Sink


async def test_503_for_a_while_then_201_finishes_with_one_effect(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection(sink.url))
    sink.behaviour = Behaviour(fail_next=3, fail_status=503)
    async with serve(project_dir) as server, server.client() as client:
        run_id = (await client.post("/hooks/orders", json={"order_no": "A1", "amount": "1", "customer": "x"})).json()[
            "run_id"
        ]
        run = await run_in_status(client, run_id, "completed")
    attempts = [s for s in run["steps"] if s["step"] == "post"]
    assert [a["status"] for a in attempts] == ["retrying", "retrying", "retrying", "completed"]
    assert attempts[0]["error"]["code"] == "connector.transient"
    requests = [r for r in sink.requests if r.path == "/orders"]
    assert len(requests) == 4
    assert {r.idempotency_key for r in requests} == {f"{run_id}:post"}, "every retry carries the same key"
    assert sink.stats()["effects"] == 1


async def test_429_retry_after_is_honoured(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection(sink.url))
    sink.behaviour = Behaviour(fail_next=1, fail_status=429, retry_after="2")
    async with serve(project_dir) as server, server.client() as client:
        run_id = (await client.post("/hooks/orders", json={"order_no": "A2", "amount": "1", "customer": "x"})).json()[
            "run_id"
        ]
        run = await run_in_status(client, run_id, "completed")
    first, second = [r for r in sink.requests if r.path == "/orders"]
    assert second.arrived_at - first.arrived_at >= 1.9, "the retry waited for Retry-After: 2"
    assert run["steps"][1]["error"]["retry_in_s"] == 2.0


async def test_400_dead_letters_with_the_body_and_replay_completes_after_the_fix(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection(sink.url))
    sink.behaviour = Behaviour(fail_next=-1, fail_status=400, fail_body={"error": "客户编号不存在 customer_not_found"})
    async with serve(project_dir) as server, server.client() as client:
        run_id = (await client.post("/hooks/orders", json={"order_no": "A3", "amount": "1", "customer": "x"})).json()[
            "run_id"
        ]
        run = await run_in_status(client, run_id, "dead_letter")
        assert run["error"]["code"] == "connector.permanent"
        assert "customer_not_found" in run["error"]["message"]
        assert "400" in run["error"]["message"]
        assert len([r for r in sink.requests if r.path == "/orders"]) == 1, "a 400 is not retried"
        dead = (await client.get("/api/v1/dead-letters")).json()
        assert [d["run_id"] for d in dead] == [run_id]

        cli = subprocess.run(
            [sys.executable, "-m", "seamflow", "runs", "dead-letters", "--project", str(project_dir)],
            capture_output=True,
            text=True,
            check=True,
        )
        assert run_id in cli.stdout and "customer_not_found" in cli.stdout

        sink.behaviour = Behaviour()  # the target is fixed
        assert (await client.post(f"/api/v1/runs/{run_id}/replay")).status_code == 202
        run = await run_in_status(client, run_id, "completed")
    statuses = [s["status"] for s in run["steps"] if s["step"] == "post"]
    assert statuses == ["failed", "completed"]
    order = [s for s in run["steps"] if s["step"] == "order"]
    assert len(order) == 1, "the completed step before the failure is not executed again"
    assert sink.stats()["effects"] == 1
    last = [r for r in sink.requests if r.path == "/orders"][-1]
    assert codec.loads(last.body)["number"] == "A3"


async def test_replay_of_a_completed_run_is_a_conflict(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection(sink.url))
    async with serve(project_dir) as server, server.client() as client:
        run_id = (await client.post("/hooks/orders", json={"order_no": "A4", "amount": "1", "customer": "x"})).json()[
            "run_id"
        ]
        await run_in_status(client, run_id, "completed")
        answer = await client.post(f"/api/v1/runs/{run_id}/replay")
    assert answer.status_code == 409
    assert answer.json()["code"] == "conflict"


async def test_a_run_waiting_on_a_retry_timer_survives_a_restart(project_dir: Path, sink: Sink) -> None:
    flow = FORWARD.replace("initial_delay: 100ms, max_delay: 1s", "initial_delay: 3s, max_delay: 3s")
    make_project(project_dir, {"forward": flow}, sink_connection(sink.url))
    sink.behaviour = Behaviour(fail_next=1, fail_status=503)
    async with serve(project_dir) as server, server.client() as client:
        run_id = (await client.post("/hooks/orders", json={"order_no": "A5", "amount": "1", "customer": "x"})).json()[
            "run_id"
        ]
        await run_in_status(client, run_id, "waiting")
        killed_at = time.monotonic()
        await server.restart()
        run = await run_in_status(client, run_id, "completed")
    assert time.monotonic() - killed_at < 15
    assert sink.stats()["effects"] == 1
    assert [s["status"] for s in run["steps"] if s["step"] == "post"] == ["retrying", "completed"]
