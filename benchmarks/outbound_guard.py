"""The outbound guard's cost per call: the same HTTP connector guarded and unguarded, in the same run.

Usage: .venv/bin/python benchmarks/outbound_guard.py [--calls 2000] [--rounds 5] [--concurrency 1,16]

Three callers post the same JSON order to the benchmark sink (benchmarks/sink.py, a separate
process on uvloop) over keep-alive connections:

- `unguarded`: an `HttpConnector` whose session is a plain `aiohttp.TCPConnector` — the connector
  as it was before the guard (built here by replacing the session; Seamflow has no switch for it);
- `guarded, address`: the connector as shipped, base URL `http://127.0.0.1:PORT`, loopback allowed
  by `127.0.0.0/8`: each request's host is parsed and checked;
- `guarded, name`: base URL `http://localhost:PORT`, allowed as a network, so each new connection
  also resolves the name through the guard and checks the addresses (keep-alive reuses them).

A fourth line times `Outbound.check_literal` alone (what every request pays). Rounds rotate who
goes first; medians of wall and CPU time per call are reported, with each guarded median's
ratio to the unguarded one.
Saved to benchmarks/results/outbound-guard-<stamp>.json and outbound-guard-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from processes import HERE, STAMP, start_sink

from seamflow import connectors
from seamflow.connectors.http import HttpConnector

ORDER = {
    "order_no": "SO-20261207-0042",
    "customer": "杭州西湖茶业有限公司",
    "amount": "8860.00",
    "phone": "13905712345",
}
LOOPBACK = connectors.Outbound.parse(["127.0.0.0/8", "::1"], "benchmark")


async def open_connector(base_url: str, *, guarded: bool, concurrency: int) -> HttpConnector:
    connector = HttpConnector()
    config = {"base_url": base_url, "max_connections": concurrency}
    await connector.open(connectors.Connection("sink", "http", config, outbound=LOOPBACK))
    if not guarded:  # the same session settings, with aiohttp's own connector and resolver
        old = connector._session
        assert old is not None
        connector._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=4.0),
            headers=dict(old.headers),
            timeout=old.timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )
        await old.close()
    return connector


async def timed(one: Callable[[int], Awaitable[object]], calls: int, concurrency: int) -> tuple[float, float]:
    """Microseconds per call at this concurrency, wall time and this process's CPU time, after warming the pool.

    CPU time is what the guard adds to the caller; it is also far less disturbed than wall time
    when other work shares the machine (the sink runs in its own process)."""
    gate = asyncio.Semaphore(concurrency)

    async def gated(i: int) -> None:
        async with gate:
            await one(i)

    await asyncio.gather(*(gated(i) for i in range(min(200, calls))))
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(gated(i) for i in range(calls)))
    return (time.perf_counter() - started) / calls * 1e6, (time.process_time() - cpu) / calls * 1e6


async def connector_round(base_url: str, guarded: bool, calls: int, concurrency: int) -> tuple[float, float]:
    connector = await open_connector(base_url, guarded=guarded, concurrency=concurrency)
    try:
        return await timed(
            lambda i: connector.call("post", {"path": "orders", "json": {**ORDER, "n": i}}, idempotency_key=f"k{i}"),
            calls,
            concurrency,
        )
    finally:
        await connector.close()


def check_cost_ns(repeat: int = 200_000) -> float:
    started = time.perf_counter_ns()
    for _ in range(repeat):
        LOOPBACK.check_literal("127.0.0.1")
    return (time.perf_counter_ns() - started) / repeat


async def measure(sink_url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    port = sink_url.rsplit(":", 1)[1]
    callers = {
        "unguarded": (f"http://127.0.0.1:{port}", False),
        "guarded, address": (f"http://127.0.0.1:{port}", True),
        "guarded, name": (f"http://localhost:{port}", True),
    }
    results = []
    for concurrency in [int(c) for c in args.concurrency.split(",")]:
        rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in callers}
        order = list(callers)
        for n in range(args.rounds):
            for name in order[n % 3 :] + order[: n % 3]:  # rotate who goes first
                url, guarded = callers[name]
                rounds[name].append(await connector_round(url, guarded, args.calls, concurrency))
        wall = {name: statistics.median(v[0] for v in values) for name, values in rounds.items()}
        cpu = {name: statistics.median(v[1] for v in values) for name, values in rounds.items()}
        row: dict[str, Any] = {"concurrency": concurrency}
        for name in callers:
            row[name] = {
                "wall_us_per_call": round(wall[name], 1),
                "cpu_us_per_call": round(cpu[name], 1),
                "wall_ratio_to_unguarded": round(wall[name] / wall["unguarded"], 3),
                "cpu_ratio_to_unguarded": round(cpu[name] / cpu["unguarded"], 3),
                "rounds_wall_cpu": [[round(w, 1), round(c, 1)] for w, c in rounds[name]],
            }
            print(
                f"c{concurrency:<3} {name:17} wall {wall[name]:8.1f} µs/call ×{wall[name] / wall['unguarded']:.3f}"
                f"   cpu {cpu[name]:7.1f} µs/call ×{cpu[name] / cpu['unguarded']:.3f}",
                flush=True,
            )
        results.append(row)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        sink = start_sink(Path(tmp))
        try:
            results = asyncio.run(measure(sink.url, args))
        finally:
            sink.stop()
    check_ns = check_cost_ns()
    print(f"Outbound.check_literal('127.0.0.1') alone: {check_ns:.0f} ns")
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cores)")
    saved = {
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "benchmarks/outbound_guard.py", *sys.argv[1:]]),
        "load_average": {"before": load_before, "after": load_after, "cores": os.cpu_count()},
        "check_literal_ns": round(check_ns),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(saved, indent=1, ensure_ascii=False)
    (args.out / f"outbound-guard-{STAMP}.json").write_text(text, encoding="utf-8")
    (args.out / "outbound-guard-latest.json").write_text(text, encoding="utf-8")
    print(f"saved {args.out / f'outbound-guard-{STAMP}.json'}")


if __name__ == "__main__":
    main()
