"""Slow clients (slowloris) against a real `seamflow serve`: 200 connections that send their headers a
byte at a time do not stop valid webhooks from being accepted, and are closed after the header timeout.

How fast the valid webhooks are answered meanwhile (p99) is measured by benchmarks/slowloris.py,
not asserted here: timings depend on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import Server, make_project
from tests.support.wait import eventually

SLOW_CLIENTS = 200
VALID_WEBHOOKS = 40
FLOW = """id: shop-orders
trigger: {webhook: {path: shop/orders}}
steps:
  - id: total
    transform: "{{ event.body.amount }}"
"""
REQUEST_HEAD = b"POST /hooks/shop/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Pad: "


@pytest.fixture
async def server(project_dir: Path) -> AsyncIterator[Server]:
    make_project(project_dir, {"orders": FLOW})
    running = Server(
        project_dir, env={"SEAMFLOW_HEADER_TIMEOUT": "5s", "SEAMFLOW_BODY_TIMEOUT": "3s", "SEAMFLOW_PROCESSES": "1"}
    )
    await running.start()
    try:
        yield running
    finally:
        running.kill()


class SlowClient:
    """One connection that sends a request's headers one byte at a time and never finishes them."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.is_closed = asyncio.Event()
        self.answer = b""
        self.sent = 0

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        reading = asyncio.create_task(self._read_until_closed(reader))
        try:
            head = REQUEST_HEAD + b"x" * 100_000
            while not self.is_closed.is_set() and self.sent < len(head):
                try:
                    writer.write(head[self.sent : self.sent + 1])
                    await writer.drain()
                except ConnectionError:
                    break
                self.sent += 1
                with contextlib.suppress(TimeoutError):  # the pace of a slow client, not a synchronisation
                    await asyncio.wait_for(self.is_closed.wait(), 0.1)
            await reading
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _read_until_closed(self, reader: asyncio.StreamReader) -> None:
        try:
            while chunk := await reader.read(4096):
                self.answer += chunk
        except ConnectionError:
            pass
        self.is_closed.set()


@pytest.mark.timeout(180)
async def test_slow_clients_are_closed_after_the_header_timeout_and_webhooks_are_accepted(server: Server) -> None:
    clients = [SlowClient(server.port) for _ in range(SLOW_CLIENTS)]
    async with asyncio.TaskGroup() as slow:
        for client in clients:
            slow.create_task(client.run())

        async def all_connected_and_sending() -> None:
            assert not any(c.is_closed.is_set() for c in clients), "closed before the header timeout"
            assert all(c.sent >= 3 for c in clients), sum(c.sent >= 3 for c in clients)

        await eventually(all_connected_and_sending, timeout=30)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as sender:
            answers = await asyncio.gather(
                *(
                    sender.post("/hooks/shop/orders", json={"order_no": f"SO-{n:04d}", "amount": "88.00"})
                    for n in range(VALID_WEBHOOKS)
                )
            )
        assert [a.status_code for a in answers] == [202] * VALID_WEBHOOKS, [a.text for a in answers if a.is_error]

        async def all_closed_by_the_server() -> None:
            open_ones = [c for c in clients if not c.is_closed.is_set()]
            assert not open_ones, f"{len(open_ones)} slow connections still open"

        await eventually(all_closed_by_the_server, timeout=60)
    assert all(c.answer.startswith(b"HTTP/1.1 408") for c in clients), {c.answer[:40] for c in clients}
    assert all(c.sent < len(REQUEST_HEAD) + 1000 for c in clients), "each was closed long before its headers ended"
    async with server.client() as admin:
        runs = (await admin.get("/api/v1/runs", params={"limit": 1000})).json()
    assert len(runs) == VALID_WEBHOOKS
    assert json.dumps(runs).count("shop-orders") >= VALID_WEBHOOKS


@pytest.mark.timeout(60)
async def test_a_body_that_stops_arriving_is_closed_after_the_body_timeout_and_nothing_is_stored(
    server: Server,
) -> None:
    body = json.dumps({"order_no": "SO-SLOW-1", "amount": "88.00"}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /hooks/shop/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:10]
    )
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(), 30)  # until the server closes the connection
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert not answer.startswith(b"HTTP/1.1 202"), answer[:200]
    async with server.client() as admin:
        assert (await admin.get("/api/v1/runs")).json() == [], "a body that never arrived stored nothing"
    async with httpx.AsyncClient(base_url=server.url) as sender:
        whole = await sender.post("/hooks/shop/orders", content=body, headers={"Content-Type": "application/json"})
    assert whole.status_code == 202, "the server keeps serving"
