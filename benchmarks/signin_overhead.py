"""The cost of a signed-in call (cached token), beside the same call with a static key; and a burst at expiry.

Usage: .venv/bin/python benchmarks/signin_overhead.py [--calls 1000] [--rounds 3] [--burst 1000]

Both connections call the DingTalk stand-in of the tests (tests/support/open_platforms.py, in this
process) with `access_token` in the query: one with a static `api_key` (a token issued beforehand),
one signing in through its `token_endpoint` with the engine's `StoredTokens` on a SQLite store, as
`serve` runs it. Rounds alternate; medians are reported. Then the clock is moved to just past the
token's renewal time and `--burst` calls start at once: the report says how many token requests
reached the platform (the design says one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("SEAMFLOW_OUTBOUND_ALLOW", "127.0.0.0/8,::1,localhost")  # the stand-ins run here

from tests.support.open_platforms import APPS, OpenPlatforms

from seamflow import clock, connectors, engine, store
from seamflow.ids import Json

PARAMS: Json = {"path": "topapi/v2/user/get", "json": {"userid": "manager4220"}}


def signed_in(base: str) -> dict[str, Json]:
    appkey, appsecret = APPS["dingtalk"]
    request: dict[str, Json] = {
        "method": "GET",
        "url": f"{base}/dingtalk/gettoken",
        "query": {"appkey": appkey, "appsecret": appsecret},
    }
    return {
        "base_url": f"{base}/dingtalk",
        "auth": {"token_endpoint": {"request": request, "send": {"query": "access_token"}}},
    }


def caller(connector: connectors.HttpConnector, name: str) -> Callable[[int], Awaitable[object]]:
    return lambda i: connector.call("post", PARAMS, idempotency_key=f"{name}-{i}")


async def timed(call: Callable[[int], Awaitable[object]], calls: int, concurrency: int = 16) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def gated(i: int) -> None:
        async with gate:
            await call(i)

    started = time.perf_counter()
    await asyncio.gather(*(gated(i) for i in range(calls)))
    return (time.perf_counter() - started) / calls * 1e6


async def main(args: argparse.Namespace) -> None:
    async with OpenPlatforms.start() as platforms:
        static_token = platforms._issue("dingtalk")
        static: dict[str, Json] = {
            "base_url": f"{platforms.base_url}/dingtalk",
            "auth": {"api_key": {"value": static_token, "query": "access_token"}},
        }
        with tempfile.TemporaryDirectory() as folder:
            db = store.SqliteStore(Path(folder) / "seamflow.db")
            await db.open()
            key = engine.secrets.SecretKey(MultiFernet([Fernet(Fernet.generate_key())]), "bench")
            tokens = engine.StoredTokens(db, lambda: key)
            bare, signed = connectors.HttpConnector(), connectors.HttpConnector()
            await bare.open(connectors.Connection("bare", "http", static))
            await signed.open(connectors.Connection("dingtalk", "http", signed_in(platforms.base_url), tokens=tokens))
            try:
                results: dict[str, list[float]] = {"static key": [], "signed in": []}
                pair = [("static key", bare), ("signed in", signed)]
                for n in range(args.rounds):
                    for name, connector in pair if n % 2 == 0 else pair[::-1]:  # alternate who goes first
                        results[name].append(await timed(caller(connector, name), args.calls))
                for name, values in results.items():
                    print(
                        f"{name:12} {statistics.median(values):8.1f} µs/call"
                        f" (median of {args.rounds} rounds of {args.calls}, 16 at once)"
                    )
                before = platforms.token_requests["dingtalk"]
                clock.set_fixed(clock.now() + timedelta(seconds=7200 - 200))  # within the 300 s renewal margin
                started = time.perf_counter()
                await asyncio.gather(*(signed.call("post", PARAMS, idempotency_key=f"x{i}") for i in range(args.burst)))
                took = time.perf_counter() - started
                print(
                    f"burst of {args.burst} calls at renewal time:"
                    f" {platforms.token_requests['dingtalk'] - before} token request(s), {took:.2f} s"
                )
            finally:
                clock.use_real()
                await bare.close()
                await signed.close()
                await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=1000)
    asyncio.run(main(parser.parse_args()))
