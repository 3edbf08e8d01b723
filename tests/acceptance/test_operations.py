"""Operating the server: API token, health, metrics, JSON logs, graceful shutdown, flow concurrency limit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from tests.acceptance.flows import FORWARD, sink_connection
from tests.support.server import Server, make_project, serve
from tests.support.sink import Behaviour, Sink
from tests.support.wait import eventually


async def test_the_api_needs_a_valid_token_and_webhooks_do_not(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection(sink.url))
    async with serve(project_dir) as server, httpx.AsyncClient(base_url=server.url) as anonymous:
        missing = await anonymous.get("/api/v1/runs")
        wrong = await anonymous.get("/api/v1/runs", headers={"Authorization": "Bearer sf_wrong"})
        hook = await anonymous.post("/hooks/orders", json={"order_no": "T1", "amount": "1", "customer": "x"})
        health = await anonymous.get("/health")
    assert (missing.status_code, wrong.status_code, hook.status_code) == (401, 401, 202)
    assert missing.headers["content-type"] == "application/problem+json"
    assert "Authorization: Bearer" in missing.json()["detail"]
    assert health.json()["ready"] is True


async def test_metrics_count_runs_and_logs_are_json_with_run_ids(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection(sink.url))
    sink.behaviour = Behaviour(fail_next=-1, fail_status=400)
    async with serve(project_dir) as server, server.client() as client:
        run_id = (await client.post("/hooks/orders", json={"order_no": "T2", "amount": "1", "customer": "x"})).json()[
            "run_id"
        ]

        async def dead() -> str:
            text = (await client.get("/metrics")).text
            assert 'seamflow_runs_finished_total{flow="forward-orders",status="dead_letter"} 1.0' in text
            return text

        text = await eventually(dead)
    assert 'seamflow_events_accepted_total{duplicate="false",flow="forward-orders"} 1.0' in text
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]
    warning = [line for line in lines if line["message"] == "run dead-lettered"]
    assert warning and warning[0]["run_id"] == run_id and warning[0]["level"] == "warning"


async def test_sigterm_lets_in_flight_steps_finish(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection(sink.url))
    sink.behaviour = Behaviour(delay_ms=1500)
    server = Server(project_dir)
    await server.start()
    async with httpx.AsyncClient(base_url=server.url) as client:
        answers = [
            await client.post("/hooks/orders", json={"order_no": f"G{i}", "amount": "1", "customer": "x"})
            for i in range(5)
        ]

    async def in_flight() -> None:  # the calls are in flight at the slow sink
        assert sink.in_flight == 5, sink.stats()

    await eventually(in_flight, timeout=10)
    await server.stop()
    # uvicorn re-raises the signal it handled once shutdown is complete, so -15 is a clean exit
    assert server.process is not None and server.process.returncode in (0, -15)
    assert "Traceback" not in server.log_path.read_text()
    await server.start()  # nothing is left to resume: the drained runs completed
    async with server.client() as client:
        runs = (await client.get("/api/v1/runs")).json()
    server.kill()
    assert {r["run_id"] for r in runs} == {a.json()["run_id"] for a in answers}
    assert {r["status"] for r in runs} == {"completed"}
    assert sink.stats()["requests"] == 5, "no step was cut and repeated"


async def test_flow_concurrency_limit_bounds_runs_at_once(project_dir: Path, sink: Sink) -> None:
    flow = FORWARD.replace("id: forward-orders", "id: forward-orders\nconcurrency: 2")
    make_project(project_dir, {"forward": flow}, sink_connection(sink.url))
    sink.behaviour = Behaviour(delay_ms=100)
    async with serve(project_dir) as server, server.client() as client:
        answers = await asyncio.gather(
            *[
                client.post("/hooks/orders", json={"order_no": f"C{i}", "amount": "1", "customer": "x"})
                for i in range(12)
            ]
        )

        async def done() -> None:
            runs = (await client.get("/api/v1/runs", params={"status": "completed"})).json()
            assert len(runs) == 12

        await eventually(done)
    assert len({a.json()["run_id"] for a in answers}) == 12
    assert sink.stats()["max_in_flight"] == 2
