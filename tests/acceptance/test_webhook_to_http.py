"""A webhook starts a run that maps the event and calls an HTTP target; the run is journaled and visible."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from seamflow import codec
from tests.acceptance.flows import FORWARD, sink_connection
from tests.support.server import make_project, serve
from tests.support.sink import Sink
from tests.support.wait import eventually


async def test_webhook_event_becomes_one_effect_at_the_target(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection(sink.url))
    async with serve(project_dir) as server, server.client() as client:
        answer = await client.post("/hooks/orders", json={"order_no": "SO-1", "amount": "19.90", "customer": "张伟"})
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]

        async def completed() -> dict:
            run = (await client.get(f"/api/v1/runs/{run_id}")).json()
            assert run["status"] == "completed", run
            return run

        run = await eventually(completed)
        assert [s["step"] for s in run["steps"]] == ["order", "post"]
        assert run["steps"][0]["output"] == {"number": "SO-1", "amount_cents": 1990, "customer": "张伟"}
        effects = [r for r in sink.requests if r.path == "/orders"]
        assert len(effects) == 1
        assert effects[0].idempotency_key == f"{run_id}:post"
        assert codec.loads(effects[0].body) == {"number": "SO-1", "amount_cents": 1990, "customer": "张伟"}


async def test_same_dedupe_key_twice_starts_one_run(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection(sink.url))
    async with serve(project_dir) as server, server.client() as client:
        body = {"order_no": "SO-7", "amount": 5, "customer": "李娜"}
        first = await client.post("/hooks/orders", json=body)
        second = await client.post("/hooks/orders", json=body)
        assert (first.status_code, second.status_code) == (202, 200)
        assert second.json() == {**first.json(), "duplicate": True}
        runs = (await client.get("/api/v1/runs", params={"flow": "forward-orders"})).json()
        assert len(runs) == 1


async def test_concurrent_duplicates_start_one_run(project_dir: Path, sink: Sink) -> None:
    import asyncio

    make_project(project_dir, {"forward": FORWARD}, sink_connection(sink.url))
    async with serve(project_dir) as server, server.client() as client:
        body = {"order_no": "SO-8", "amount": "1.00", "customer": "王芳"}
        answers = await asyncio.gather(*[client.post("/hooks/orders", json=body) for _ in range(20)])
        run_ids = {a.json()["run_id"] for a in answers}
        assert len(run_ids) == 1
        assert sorted(a.status_code for a in answers) == [200] * 19 + [202]
        assert sum(not a.json()["duplicate"] for a in answers) == 1


async def test_idempotency_key_header_wins_over_dedupe_expression(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection(sink.url))
    async with serve(project_dir) as server, server.client() as client:
        body = {"order_no": "SO-9", "amount": Decimal("2.50"), "customer": "陈静"}
        a = await client.post("/hooks/orders", json={**body, "amount": "2.50"}, headers={"Idempotency-Key": "k1"})
        b = await client.post("/hooks/orders", json={**body, "amount": "2.50"}, headers={"Idempotency-Key": "k2"})
        assert a.json()["run_id"] != b.json()["run_id"]
