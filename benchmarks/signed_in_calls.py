"""A declared connector's signed-in call (cached token) beside bare aiohttp and httpx clients; a burst at expiry.

Usage: .venv/bin/python benchmarks/signed_in_calls.py [--calls 1000] [--rounds 5] [--burst 1000]

All three call the same DingTalk stand-in (tests/support/platforms/dingtalk.py, served from its
own thread and event loop) with the same request: `POST topapi/processinstance/get?access_token=…`
with a JSON body, answered with the approval instance. The bare clients carry a token obtained
beforehand and check `errcode` themselves; Seamflow calls the `get_approval_instance` operation of
the shipped `dingtalk_app` file through a connection whose token is cached by the engine's
`StoredTokens` on a SQLite store, as `serve` runs it (input schema check, templates, the
declared error codes, the output mapping; its pacing to 20 calls per second is lifted). 16 calls
at once; rounds alternate who goes first; the median µs per call of the rounds and the ratio to
bare aiohttp are reported.

Then two bursts of `--burst` concurrent calls: right as the token expires (the clock moved into
the renewal margin), and right after DingTalk revoked it (every call is refused with 40014 and
renews). The stand-in counts the token requests that reach it; the design says one per burst.
The figures are printed and saved as JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from cryptography.fernet import Fernet, MultiFernet

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("SEAMFLOW_OUTBOUND_ALLOW", "127.0.0.0/8,::1,localhost")  # the stand-ins run here

from tests.support.platforms import DingTalk, dingtalk  # noqa: E402

from seamflow import clock, connectors, engine, flows, store  # noqa: E402
from seamflow.ids import Json  # noqa: E402

INSTANCE = "b2c3d4e5-0a1b-4c2d-8e3f-4a5b6c7d8e9f"
CONCURRENCY = 16
Call = Callable[[int], Awaitable[Any]]


async def timed(call: Call, calls: int) -> float:
    """µs per call of `calls` calls, `CONCURRENCY` at once."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def gated(i: int) -> None:
        async with gate:
            await call(i)

    started = time.perf_counter()
    await asyncio.gather(*(gated(i) for i in range(calls)))
    return (time.perf_counter() - started) / calls * 1e6


def bare_aiohttp(session: aiohttp.ClientSession, base: str, token: str) -> Call:
    async def call(i: int) -> Any:
        async with session.post(
            f"{base}/topapi/processinstance/get",
            params={"access_token": token},
            json={"process_instance_id": INSTANCE},
            headers={"Idempotency-Key": f"a{i}"},
        ) as response:
            body = await response.json()
        assert body["errcode"] == 0, body
        return body["process_instance"]

    return call


def bare_httpx(client: httpx.AsyncClient, base: str, token: str) -> Call:
    async def call(i: int) -> Any:
        response = await client.post(
            f"{base}/topapi/processinstance/get",
            params={"access_token": token},
            json={"process_instance_id": INSTANCE},
            headers={"Idempotency-Key": f"x{i}"},
        )
        body = response.json()
        assert body["errcode"] == 0, body
        return body["process_instance"]

    return call


def seamflow_call(connector: connectors.Connector) -> Call:
    async def call(i: int) -> Any:
        found = await connector.call(
            "get_approval_instance", {"process_instance_id": INSTANCE}, idempotency_key=f"run-{i}:instance"
        )
        assert isinstance(found, dict) and found["result"] == "agree"
        return found

    return call


async def open_declared(base: str, tokens: connectors.TokenCache) -> connectors.Connector:
    """The shipped file with its pacing (DingTalk's 20 calls per second) lifted: the cost is measured, not the wait."""
    path = connectors.PACK_FILES["dingtalk_app"]
    text = path.read_text("utf-8").replace("per_second: 20 ", "per_second: 1000000 ")
    assert "per_second: 1000000" in text
    cls = flows.connector_files.load_connector_text(text, str(path))
    connector = cls()
    settings: dict[str, Json] = {
        "appkey": dingtalk.APPKEY,
        "appsecret": dingtalk.APPSECRET,
        "agent_id": "2876554321",
        "base_url": base,
    }
    await connector.open(connectors.Connection("dingtalk", "dingtalk_app", settings, tokens=tokens))
    return connector


async def burst(connector: connectors.Connector, platform: DingTalk, size: int, tag: str) -> dict[str, Any]:
    before = platform.token_requests
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(seamflow_call(connector)(i + 10_000_000) for i in range(size)), return_exceptions=True
    )
    failed = [a for a in answers if isinstance(a, BaseException)]
    return {
        "burst": tag,
        "calls": size,
        "failed": len(failed),
        "token_requests": platform.token_requests - before,
        "seconds": round(time.perf_counter() - started, 3),
    }


async def measure(platform: DingTalk, args: argparse.Namespace) -> dict[str, Any]:
    base = platform.base_url
    with tempfile.TemporaryDirectory() as folder:
        db = store.SqliteStore(Path(folder) / "seamflow.db")
        await db.open()
        key = engine.secrets.SecretKey(MultiFernet([Fernet(Fernet.generate_key())]), "bench")
        declared = await open_declared(base, engine.StoredTokens(db, lambda: key))
        await seamflow_call(declared)(0)  # signs in: the token the bare clients carry too
        token = platform.issued[-1]
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=100))
        peers = {
            "bare aiohttp": bare_aiohttp(session, base, token),
            "bare httpx": bare_httpx(client, base, token),
            "seamflow (dingtalk_app, signed in)": seamflow_call(declared),
        }
        try:
            for call in peers.values():  # warm up: connections open, code paths imported
                await timed(call, 100)
            rounds: dict[str, list[float]] = {name: [] for name in peers}
            order = list(peers)
            for n in range(args.rounds):
                for name in order[n % len(order) :] + order[: n % len(order)]:  # rotate who goes first
                    rounds[name].append(await timed(peers[name], args.calls))
            medians = {name: statistics.median(values) for name, values in rounds.items()}
            clock.set_fixed(clock.now() + timedelta(seconds=7200 - 200))  # inside the 300 s renewal margin
            expiry = await burst(declared, platform, args.burst, "at expiry (renewal margin)")
            clock.use_real()
            platform.revoke_tokens()  # every call now answers HTTP 200 errcode 40014
            revoked = await burst(declared, platform, args.burst, "after the token was revoked (40014)")
        finally:
            clock.use_real()
            await session.close()
            await client.aclose()
            await declared.close()
            await db.close()
    aiohttp_us = medians["bare aiohttp"]
    return {
        "calls_per_round": args.calls,
        "rounds": args.rounds,
        "concurrency": CONCURRENCY,
        "median_us_per_call": {name: round(value, 1) for name, value in medians.items()},
        "ratio_to_bare_aiohttp": {name: round(value / aiohttp_us, 2) for name, value in medians.items()},
        "overhead_us_per_call": round(medians["seamflow (dingtalk_app, signed in)"] - aiohttp_us, 1),
        "all_rounds_us": {name: [round(v, 1) for v in values] for name, values in rounds.items()},
        "bursts": [expiry, revoked],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    with DingTalk.in_thread() as platform:  # the stand-in in its own thread and loop, shared by all peers
        report = asyncio.run(measure(platform, args))
    report["measured"] = datetime.now(UTC).isoformat(timespec="seconds")
    for name, value in report["median_us_per_call"].items():
        ratio = report["ratio_to_bare_aiohttp"][name]
        print(f"{name:36} {value:8.1f} µs/call  ({ratio:.2f}× bare aiohttp)")
    print(f"overhead of a signed-in call over bare aiohttp: {report['overhead_us_per_call']:.1f} µs")
    for row in report["bursts"]:
        print(
            f"burst of {row['calls']} calls {row['burst']}: {row['token_requests']} token request(s),"
            f" {row['failed']} failed, {row['seconds']:.2f} s"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")
    text = json.dumps(report, ensure_ascii=False, indent=2)
    (args.out / f"signed-in-calls-{stamp}.json").write_text(text + "\n", encoding="utf-8")
    (args.out / "signed-in-calls-latest.json").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
