"""The baseline: a bare Python forwarder that keeps nothing.

A minimal ASGI app on uvicorn (httptools, uvloop). `POST /hooks/orders` reads the JSON
event, maps it like the benchmark flow's `transform` step (number, amount in integer
cents, customer, sent_ns), POSTs the result to the sink through one reused aiohttp
connection pool (keep-alive, at most 100 connections) with an `Idempotency-Key` header,
and answers 202 once the sink answered. No journal, no database, no retries: this is the
ceiling that Seamflow's durable path is compared with (target ≥ 0.35× its throughput).

Run: `python benchmarks/bare_forwarder.py --port P --sink http://127.0.0.1:S`.
aiohttp is a benchmark-only dependency: `.venv/bin/pip install aiohttp`.
"""

from __future__ import annotations

import argparse
import itertools
import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import aiohttp
import uvicorn

_Scope = dict[str, Any]


def map_order(body: dict[str, Any]) -> dict[str, Any]:
    """The flow's transform: `amount | cents` is exact Decimal arithmetic, as in Seamflow."""
    cents = (Decimal(str(body["amount"])) * 100).to_integral_value(rounding=ROUND_HALF_UP)
    return {
        "number": body["order_no"],
        "amount_cents": int(cents),
        "customer": body["customer"],
        "sent_ns": body.get("sent_ns"),
    }


class Forwarder:
    """The ASGI app; the client session is opened by the lifespan, in uvicorn's loop."""

    def __init__(self, sink_url: str) -> None:
        self.target = sink_url.rstrip("/") + "/orders"
        self.session: aiohttp.ClientSession | None = None
        self.ids = itertools.count(1)

    async def __call__(self, scope: _Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/health":
            await _answer(send, 200, b'{"ready":true}')
            return
        try:
            mapped = map_order(json.loads(body))
        except (ValueError, KeyError, TypeError) as exc:
            await _answer(send, 400, json.dumps({"error": str(exc)}).encode())
            return
        assert self.session is not None
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"fwd:{next(self.ids)}"}
        try:
            async with self.session.post(self.target, data=json.dumps(mapped), headers=headers) as answer:
                await answer.read()
                status = 202 if answer.status < 400 else 502
        except aiohttp.ClientError:
            status = 502
        await _answer(send, status, b'{"forwarded":true}' if status == 202 else b'{"forwarded":false}')

    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=60)
                self.session = aiohttp.ClientSession(
                    connector=connector,
                    timeout=aiohttp.ClientTimeout(total=5),
                    skip_auto_headers=("User-Agent",),
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _answer(send: Any, status: int, payload: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sink", required=True, help="the sink's base URL")
    args = parser.parse_args()
    uvicorn.run(
        Forwarder(args.sink), host=args.host, port=args.port, loop="uvloop", http="httptools",
        lifespan="on", access_log=False, log_level="warning", backlog=4096,
    )  # fmt: skip


if __name__ == "__main__":
    main()
