"""An `openapi` call signed in with oauth2 (cached token) beside a static bearer and a bare client; a burst at expiry.

Usage: .venv/bin/python benchmarks/openapi_signin.py [--calls 1000] [--rounds 3] [--burst 1000]

One OpenAPI document declares `getMe` with two alternatives: an oauth2 authorization code scheme
and an http bearer scheme. Three callers GET the same resource of the tests' authorization server
(tests/support/oauth_server.py, in this process), which checks the token on every request: an
aiohttp session sending the header itself (the bare client), an `openapi` connection with the
static bearer, and one authorized through the oauth2 scheme with the engine's `StoredTokens` on a
SQLite store, as `serve` runs it. Rounds alternate who goes first; medians are reported. Then the
clock is moved into the token's renewal margin and `--burst` calls start at once: the report says
how many refresh requests reached the server (the design says one). Saved to benchmarks/results/.
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

import aiohttp
import httpx
from cryptography.fernet import Fernet, MultiFernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("SEAMFLOW_OUTBOUND_ALLOW", "127.0.0.0/8,::1,localhost")  # the stand-ins run here

from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, AuthServer

from seamflow import clock, connectors, engine, store
from seamflow.connectors.openapi import OpenApiConnector
from seamflow.ids import Json

HERE = Path(__file__).resolve().parent
STAMP = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")


def document(base: str) -> str:
    return f"""openapi: 3.0.3
info: {{title: 云帆 CRM, version: "2.4"}}
servers: [{{url: "{base}/api"}}]
components:
  securitySchemes:
    crmOAuth:
      type: oauth2
      flows:
        authorizationCode: {{authorizationUrl: {base}/authorize, tokenUrl: {base}/token, scopes: {{profile: p}}}}
    bearerAuth: {{type: http, scheme: bearer}}
security: [{{crmOAuth: [profile]}}, {{bearerAuth: []}}]
paths:
  /me: {{get: {{operationId: getMe, responses: {{"200": {{description: the user}}}}}}}}
"""


async def timed(call: Callable[[int], Awaitable[object]], calls: int, concurrency: int = 16) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def gated(i: int) -> None:
        async with gate:
            await call(i)

    started = time.perf_counter()
    await asyncio.gather(*(gated(i) for i in range(calls)))
    return (time.perf_counter() - started) / calls * 1e6


async def authorize(connector: OpenApiConnector) -> None:
    pending = connector.begin_authorization("http://127.0.0.1:8976/callback")
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(pending.url)
    await connector.finish_authorization(pending, consent.headers["location"])


async def measure(server: AuthServer, folder: Path, args: argparse.Namespace) -> dict[str, Json]:
    path = folder / "crm-openapi.yaml"
    path.write_text(document(server.base_url), encoding="utf-8")
    static_token = str(server._issue()["access_token"])
    db = store.SqliteStore(folder / "seamflow.db")
    await db.open()
    key = engine.secrets.SecretKey(MultiFernet([Fernet(Fernet.generate_key())]), "bench")
    tokens = engine.StoredTokens(db, lambda: key)
    oauth = {"crmOAuth": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}
    static, signed = OpenApiConnector(), OpenApiConnector()
    await static.open(
        connectors.Connection(
            "crm_static", "openapi", {"document": str(path), "auth": {"bearerAuth": {"token": static_token}}}
        )
    )
    await signed.open(connectors.Connection("crm", "openapi", {"document": str(path), "auth": oauth}, tokens=tokens))
    bare = aiohttp.ClientSession(headers={"Authorization": f"Bearer {static_token}"})
    try:
        await authorize(signed)

        async def bare_call(i: int) -> None:
            async with bare.get(f"{server.base_url}/api/me") as response:
                assert response.status == 200
                await response.read()

        callers: dict[str, Callable[[int], Awaitable[object]]] = {
            "bare client": bare_call,
            "static bearer": lambda i: static.call("get_me", {}, idempotency_key=f"s{i}"),
            "oauth2 signed in": lambda i: signed.call("get_me", {}, idempotency_key=f"o{i}"),
        }
        results: dict[str, list[float]] = {name: [] for name in callers}
        order = list(callers)
        for n in range(args.rounds):
            for name in order[n % len(order) :] + order[: n % len(order)]:  # rotate who goes first
                results[name].append(await timed(callers[name], args.calls))
        medians = {name: statistics.median(values) for name, values in results.items()}
        before = server.refreshes
        clock.set_fixed(clock.now() + timedelta(seconds=server.access_lifetime_s - 30))  # within the 60 s margin
        started = time.perf_counter()
        await asyncio.gather(*(signed.call("get_me", {}, idempotency_key=f"x{i}") for i in range(args.burst)))
        took = time.perf_counter() - started
        return {
            "median_us_per_call": medians,
            "ratio_signed_to_bare": medians["oauth2 signed in"] / medians["bare client"],
            "ratio_signed_to_static": medians["oauth2 signed in"] / medians["static bearer"],
            "burst_calls": args.burst,
            "burst_refresh_requests": server.refreshes - before,
            "burst_s": took,
        }
    finally:
        clock.use_real()
        await bare.close()
        await static.close()
        await signed.close()
        await db.close()


async def main(args: argparse.Namespace) -> None:
    async with AuthServer.start() as server:
        with tempfile.TemporaryDirectory() as folder:
            figures = await measure(server, Path(folder), args)
    medians = figures["median_us_per_call"]
    assert isinstance(medians, dict)
    for name, value in medians.items():
        print(f"{name:17} {value:8.1f} µs/call (median of {args.rounds} rounds of {args.calls}, 16 at once)")
    print(
        f"oauth2 signed in / bare {figures['ratio_signed_to_bare']:.2f}x,"
        f" / static bearer {figures['ratio_signed_to_static']:.2f}x"
    )
    print(
        f"burst of {args.burst} calls at renewal time: {figures['burst_refresh_requests']} refresh request(s),"
        f" {figures['burst_s']:.2f} s"
    )
    saved = {"benchmark": "openapi-signin", "at": STAMP, "calls": args.calls, "rounds": args.rounds, **figures}
    text = json.dumps(saved, indent=1, ensure_ascii=False)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"openapi-signin-{STAMP}.json").write_text(text, encoding="utf-8")
    (args.out / "openapi-signin-latest.json").write_text(text, encoding="utf-8")
    print(f"saved {args.out / f'openapi-signin-{STAMP}.json'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    asyncio.run(main(parser.parse_args()))
