"""Crash test: kill -9 the server repeatedly under load; every accepted event has exactly one effect."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import httpx

from tests.acceptance.flows import FORWARD, sink_connection
from tests.support.server import Server, make_project
from tests.support.sink import Sink
from tests.support.wait import eventually

EVENTS = 1200
KILLS = 3


async def _fire(client: httpx.AsyncClient, numbers: list[int], accepted: dict[str, str], cut: list[int]) -> None:
    """Post events; remember those answered 2xx. A request cut by the kill is retried by the caller."""
    for n in numbers:
        order_no = f"SO-{n:05d}"
        try:
            answer = await client.post(
                "/hooks/orders", json={"order_no": order_no, "amount": "9.90", "customer": "赵敏"}
            )
        except httpx.HTTPError:
            cut.append(n)
            continue
        if answer.status_code in (200, 202):
            accepted[order_no] = answer.json()["run_id"]


async def test_kill_9_three_times_under_load_loses_nothing_and_repeats_nothing(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection(sink.url))
    server = Server(project_dir)
    await server.start()
    accepted: dict[str, str] = {}
    cut: list[int] = []
    rng = random.Random(7)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            numbers = list(range(EVENTS))
            chunks = [numbers[i::8] for i in range(8)]
            load = asyncio.gather(*[_fire(client, chunk, accepted, cut) for chunk in chunks])
            for _ in range(KILLS):
                # Not synchronisation: the kills come at random moments, and the server stays down a
                # moment as after a real crash; what is asserted below holds for any timing.
                await asyncio.sleep(rng.uniform(0.3, 0.8))
                server.kill()
                await asyncio.sleep(0.2)
                await server.start()
            await load
            assert cut, "the kills happened while events were being sent"
            # events refused while the server was down are sent again, as a real sender would
            missing = [n for n in numbers if f"SO-{n:05d}" not in accepted]
            await _fire(client, missing, accepted, [])
        assert len(accepted) == EVENTS

        async def all_finished() -> None:
            rows = dict(server.database.query("SELECT status, COUNT(*) FROM runs GROUP BY status"))
            assert rows == {"completed": EVENTS}, rows

        await eventually(all_finished, timeout=60)
    finally:
        server.kill()

    effects = [r for r in sink.requests if r.path == "/orders"]
    keys = {r.idempotency_key for r in effects}
    expected_keys = {f"{run_id}:post" for run_id in accepted.values()}
    assert keys == expected_keys, "every accepted event produced an effect, keyed by its run"
    stats = sink.stats()
    assert stats["effects"] == EVENTS, stats
    doubled = server.database.query(
        "SELECT run_id, path, COUNT(*) FROM journal WHERE status = 'completed'"
        " GROUP BY run_id, path HAVING COUNT(*) > 1"
    )
    assert doubled == [], "no step was journaled as completed twice"
