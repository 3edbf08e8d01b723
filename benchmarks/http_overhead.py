"""The HTTP connector's own cost per call, beside a bare aiohttp client in the same run.

Usage: .venv/bin/python benchmarks/http_overhead.py [--calls 2000] [--rounds 5] [--concurrency 1,16]

Both clients post the same JSON order to the benchmark sink (benchmarks/sink.py, a separate
process on uvloop) over keep-alive connections. The bare client is one `aiohttp.ClientSession`
with the same JSON encoding; the connector is `HttpConnector.call("post", …)` with an
idempotency key, input validation, header building and answer parsing — what a flow step pays.
Rounds alternate bare/connector so machine noise hits both; medians are reported, and the
connector's overhead = its median µs per call − the bare median. Saved to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from processes import HERE, STAMP, start_sink

from seamflow import codec
from seamflow.connectors.base import Connection
from seamflow.connectors.http import HttpConnector

ORDER = {
    "order_no": "SO-20261125-0001",
    "customer": "上海浦东发展有限公司",
    "amount": "1299.00",
    "phone": "13812345678",
}


async def bare_round(url: str, calls: int, concurrency: int) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one(i: int) -> None:
            body = codec.dumps({**ORDER, "n": i})
            async with session.post(
                url + "/orders", data=body, headers={"Content-Type": "application/json", "Idempotency-Key": f"b{i}"}
            ) as answer:
                await answer.read()
                answer.raise_for_status()

        return await _timed(one, calls, concurrency)


async def connector_round(url: str, calls: int, concurrency: int) -> float:
    connector = HttpConnector()
    await connector.open(Connection("sink", "http", {"base_url": url}, concurrency=None))
    try:

        async def one(i: int) -> None:
            await connector.call("post", {"path": "/orders", "json": {**ORDER, "n": i}}, idempotency_key=f"c{i}")

        return await _timed(one, calls, concurrency)
    finally:
        await connector.close()


async def _timed(one: Any, calls: int, concurrency: int) -> float:
    """Microseconds per call at this concurrency (wall time / calls)."""
    gate = asyncio.Semaphore(concurrency)

    async def gated(i: int) -> None:
        async with gate:
            await one(i)

    await asyncio.gather(*(gated(i) for i in range(min(200, calls))))  # warm connections
    started = time.perf_counter()
    await asyncio.gather(*(gated(i) for i in range(calls)))
    return (time.perf_counter() - started) / calls * 1e6


async def measure(url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for concurrency in [int(c) for c in args.concurrency.split(",")]:
        bare, conn = [], []
        for _ in range(args.rounds):
            bare.append(await bare_round(url, args.calls, concurrency))
            conn.append(await connector_round(url, args.calls, concurrency))
        row = {
            "concurrency": concurrency,
            "bare_us_per_call": round(statistics.median(bare), 1),
            "connector_us_per_call": round(statistics.median(conn), 1),
            "bare_rounds": [round(x, 1) for x in bare],
            "connector_rounds": [round(x, 1) for x in conn],
        }
        row["overhead_us_per_call"] = round(row["connector_us_per_call"] - row["bare_us_per_call"], 1)
        row["ratio"] = round(row["connector_us_per_call"] / row["bare_us_per_call"], 2)
        print(
            f"c{concurrency:<3} bare {row['bare_us_per_call']:>8} µs/call  connector {row['connector_us_per_call']:>8}"
            f" µs/call  overhead {row['overhead_us_per_call']} µs ({row['ratio']}×)",
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
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        sink = start_sink(Path(tmp))
        try:
            results = asyncio.run(measure(sink.url, args))
        finally:
            sink.stop()
    saved = {
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "benchmarks/http_overhead.py", *sys.argv[1:]]),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(saved, indent=1, ensure_ascii=False)
    (args.out / f"http-overhead-{STAMP}.json").write_text(text, encoding="utf-8")
    (args.out / "http-overhead-latest.json").write_text(text, encoding="utf-8")
    print(f"saved {args.out / f'http-overhead-{STAMP}.json'}")


if __name__ == "__main__":
    main()
