"""Several workers share one PostgreSQL: takeover after kill -9, fencing after a pause, timers once, limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.acceptance.flows import FORWARD, sink_connection
from tests.cluster.cluster import fire, started
from tests.support import db
from tests.support.server import make_project
from tests.support.sink import RemoteSink
from tests.support.wait import eventually

EVENTS = 2000


def _assert_exactly_once(database: db.Database, accepted: dict[str, str], stats: dict[str, object]) -> None:
    assert stats["effects"] == len(accepted), stats
    assert stats["keys"] == len(accepted), "one idempotency key per accepted event"
    doubled = database.query(
        "SELECT run_id, path, COUNT(*) FROM journal WHERE status = 'completed'"
        " GROUP BY run_id, path HAVING COUNT(*) > 1"
    )
    assert doubled == [], "no step was journaled as completed twice"


async def test_killing_two_of_three_workers_mid_load_loses_and_repeats_nothing(
    project_dir: Path, database: db.Database, remote_sink: RemoteSink
) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection(remote_sink.url))
    await remote_sink.set_behaviour(delay_ms=5)
    accepted: dict[str, str] = {}
    async with started(project_dir, database, workers=3) as cluster:
        async with httpx.AsyncClient(base_url=cluster.api.url, timeout=10) as client:
            numbers = list(range(EVENTS))
            load = asyncio.gather(*[fire(client, numbers[i::16], accepted) for i in range(16)])
            await eventually(lambda: _at_least(accepted, EVENTS // 4), timeout=60)
            await cluster.replace(cluster.busiest())
            await eventually(lambda: _at_least(accepted, EVENTS // 2), timeout=60)
            await cluster.replace(cluster.busiest())
            await load
            missing = [n for n in numbers if f"SO-{n:05d}" not in accepted]
            await fire(client, missing, accepted)
        assert len(accepted) == EVENTS

        async def all_finished() -> None:
            rows = dict(database.query("SELECT status, COUNT(*) FROM runs GROUP BY status"))
            assert rows == {"completed": EVENTS}, rows

        await eventually(all_finished, timeout=120, interval=0.5)
        taken = database.query("SELECT COUNT(*) FROM runs WHERE epoch > 1")[0][0]
    _assert_exactly_once(database, accepted, await remote_sink.stats())
    assert taken > 0, "some runs were claimed more than once (taken over or woken), as the kills demand"


async def _at_least(accepted: dict[str, str], count: int) -> None:
    assert len(accepted) >= count


SLOW = """
id: slow
trigger:
  webhook:
    path: slow
steps:
  - id: post
    action: sink.post
    with:
      path: /slow
      json: {n: "{{ event.body.n }}"}
    retry: {attempts: 5, initial_delay: 200ms}
"""


async def test_a_paused_worker_cannot_commit_over_the_worker_that_took_its_run(
    project_dir: Path, database: db.Database, remote_sink: RemoteSink
) -> None:
    make_project(project_dir, {"slow": SLOW}, sink_connection(remote_sink.url, timeout="20s"))
    await remote_sink.set_behaviour(delay_ms=4000)
    async with started(project_dir, database, workers=1, lease="2s") as cluster:
        first = cluster.workers[0]
        async with httpx.AsyncClient(base_url=cluster.api.url, timeout=10) as client:
            run_id = (await client.post("/hooks/slow", json={"n": 1})).json()["run_id"]

        async def request_in_flight() -> None:
            assert (await remote_sink.stats())["requests"] >= 1

        await eventually(request_in_flight, timeout=20)
        first.pause()  # frozen with its call in flight, past its lease
        second = cluster.new_worker()
        cluster.workers.append(second)
        await second.start()

        async def completed() -> None:
            assert database.query("SELECT status FROM runs WHERE id = ?", (run_id,)) == [("completed",)]

        await eventually(completed, timeout=30, interval=0.2)
        owner_epoch = database.query("SELECT epoch FROM runs WHERE id = ?", (run_id,))[0][0]
        first.resume()  # its late answer arrives now; its journal write must be refused

        async def refused() -> None:
            assert "taken over by another worker" in first.log_path.read_text(errors="replace")

        await eventually(refused, timeout=30, interval=0.2)
        rows = database.query("SELECT status FROM journal WHERE run_id = ? AND path = 'post'", (run_id,))
        assert rows == [("completed",)], rows
        assert database.query("SELECT epoch, status FROM runs WHERE id = ?", (run_id,)) == [(owner_epoch, "completed")]
    stats = await remote_sink.stats()
    assert stats["effects"] == 1, stats
    assert stats["requests"] == 2, "the new owner repeated the call with the same idempotency key"


TICK = """
id: tick
trigger:
  schedule:
    every: 1s
steps:
  - id: note
    transform: {tick: "{{ event.body.tick }}"}
"""
"""Ticks call nothing: a tick's call to the sink could take the one failure meant for the retried run."""

RETRY = """
id: retried
trigger:
  webhook:
    path: retried
steps:
  - id: post
    action: sink.post
    with:
      path: /retried
      json: {n: 1}
    retry: {attempts: 3, initial_delay: 500ms, jitter: false}
"""


async def test_with_three_workers_a_schedule_fires_once_per_tick_and_a_retry_timer_once(
    project_dir: Path, database: db.Database, remote_sink: RemoteSink
) -> None:
    make_project(project_dir, {"tick": TICK, "retried": RETRY}, sink_connection(remote_sink.url))
    await remote_sink.set_behaviour(fail_next=1, fail_status=503)
    async with started(project_dir, database, workers=3) as cluster:
        async with httpx.AsyncClient(base_url=cluster.api.url, timeout=10) as client:
            run_id = (await client.post("/hooks/retried", json={})).json()["run_id"]

        async def retried_and_ticked() -> None:
            assert database.query("SELECT status FROM runs WHERE id = ?", (run_id,)) == [("completed",)]
            assert database.query("SELECT COUNT(*) FROM events WHERE flow_id = 'tick'")[0][0] >= 4

        await eventually(retried_and_ticked, timeout=30)
    ticks = database.query("SELECT dedupe_key FROM events WHERE flow_id = 'tick' ORDER BY dedupe_key")
    assert len(ticks) >= 4, ticks
    assert len({t[0] for t in ticks}) == len(ticks)
    runs = database.query("SELECT COUNT(*) FROM runs WHERE flow_id = 'tick'")[0][0]
    assert runs == len(ticks), "one run per tick"
    attempts = database.query("SELECT status FROM journal WHERE run_id = ? ORDER BY attempt", (run_id,))
    assert attempts == [("retrying",), ("completed",)], "the retry timer fired once"
    stats = await remote_sink.stats()
    assert stats["per_key"][f"{run_id}:post"] == 2, "one failed call, one retry"


LIMITED = """
id: limited
trigger:
  webhook:
    path: orders
    dedupe_key: "{{ event.body.order_no }}"
steps:
  - id: post
    action: sink.post
    with:
      path: /limited
      json: {n: "{{ event.body.order_no }}"}
"""


async def test_a_connection_limit_of_two_holds_across_three_workers(
    project_dir: Path, database: db.Database, remote_sink: RemoteSink
) -> None:
    make_project(project_dir, {"limited": LIMITED}, sink_connection(remote_sink.url, concurrency=2))
    await remote_sink.set_behaviour(delay_ms=30)
    accepted: dict[str, str] = {}
    async with started(project_dir, database, workers=3) as cluster:
        async with httpx.AsyncClient(base_url=cluster.api.url, timeout=10) as client:
            numbers = list(range(120))
            await asyncio.gather(*[fire(client, numbers[i::8], accepted) for i in range(8)])

        async def all_finished() -> None:
            rows = dict(database.query("SELECT status, COUNT(*) FROM runs GROUP BY status"))
            assert rows == {"completed": len(accepted)}, rows

        await eventually(all_finished, timeout=90, interval=0.5)
        holders = database.query("SELECT COUNT(DISTINCT owner) FROM runs")  # all released at the end
    stats = await remote_sink.stats()
    assert stats["effects"] == len(accepted) == 120
    assert stats["max_in_flight"] == 2, stats
    assert holders == [(0,)]
