"""`seamflow demo`: a project in a temporary folder, a local order system, and realistic orders flowing through.

Everything runs in this one process: the Seamflow server (SQLite, durable), a small order
system that counts effects per Idempotency-Key, and a driver that posts orders in Chinese and
English at a set rate, including a few bad ones. A live summary prints every second.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import click
import uvicorn

from seamflow import api, codec, engine, store
from seamflow.cli.project import ProjectPaths, build_engine, open_store

__all__ = ["run_demo"]

_FLOW = """\
id: demo-orders
name: 网店订单 → 订单系统
trigger:
  webhook:
    path: shop/orders
    dedupe_key: "{{ event.body.order_no }}"
steps:
  - id: order
    transform:
      number: "{{ event.body.order_no }}"
      customer: "{{ event.body.customer.name }}"
      phone: "{{ event.body.customer.phone | phone_cn }}"
      amount_cents: "{{ event.body.amount | cents }}"
  - id: create
    action: orders.post
    with: {path: /orders, json: "{{ steps.order }}"}
    retry: {attempts: 5, initial_delay: 200ms, max_delay: 2s}
  - id: created
    emit:
      activity: Order created
      objects: {order: "{{ event.body.order_no }}"}
on_error: dead_letter
"""
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "华",
    "建国",
]
_ENGLISH = ["Alice Chen", "Bob Wang", "Grace Liu", "Henry Zhao", "Iris Huang", "Jack Lin"]
_PREFIXES = ["138", "139", "150", "151", "186", "187", "135", "177", "199"]


@dataclass
class _OrderSystem:
    """A tiny order system: one effect per Idempotency-Key."""

    effects: dict[str, Any] = field(default_factory=dict)
    requests: int = 0

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests += 1
        key = dict(scope["headers"]).get(b"idempotency-key", b"").decode()
        is_new = key not in self.effects
        self.effects.setdefault(key, codec.loads(body) if body else None)
        status = 201 if is_new else 200
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": codec.dumps({"order_id": f"ORD-{len(self.effects):06d}"})})


def _order(i: int, rng: random.Random) -> dict[str, Any]:
    name = rng.choice(_ENGLISH) if rng.random() < 0.2 else rng.choice(_SURNAMES) + rng.choice(_GIVEN)
    phone = rng.choice(_PREFIXES) + f"{rng.randrange(10**8):08d}"
    if rng.random() < 0.3:
        phone = "+86 " + phone[:3] + " " + phone[3:7] + " " + phone[7:]
    amount = Decimal(rng.randrange(990, 2_000_000)) / 100
    if rng.random() < 0.03:
        phone = "12345"  # a bad record: not a mainland mobile number
    return {"order_no": f"SO-20261124-{i:05d}", "customer": {"name": name, "phone": phone}, "amount": str(amount)}


async def _serve(app: Any, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, loop="none")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
        await asyncio.sleep(0.02)
    return server, task


async def run_demo(rate: float, duration_s: float, port: int, keep: bool) -> None:
    """Run the demo; see the module docstring."""
    root = Path(tempfile.mkdtemp(prefix="seamflow-demo-"))
    (root / "flows").mkdir()
    (root / "flows" / "demo-orders.yaml").write_text(_FLOW, encoding="utf-8")
    orders = _OrderSystem()
    (root / "connections.yaml").write_text(
        f"orders:\n  connector: http\n  base_url: http://127.0.0.1:{port + 1}\n  concurrency: 16\n  timeout: 5s\n",
        encoding="utf-8",
    )
    paths = ProjectPaths(root)
    db = open_store(paths)
    await db.open()
    eng, context = build_engine(paths, db, engine.EngineOptions())
    await eng.start()
    sink_server, sink_task = await _serve(orders, port + 1)
    app_server, app_task = await _serve(api.create_app(eng, context=context, manage_engine=False), port)
    click.echo(f"Project:   {root}")
    click.echo(f"Webhook:   POST http://127.0.0.1:{port}/hooks/shop/orders")
    click.echo(f"API docs:  http://127.0.0.1:{port}/docs")
    click.echo(f"Sending ~{rate:g} orders/s for {duration_s:g} s (about 3% carry a bad phone number) …")
    try:
        await _drive(eng, orders, port, rate, duration_s)
        await _drain(eng)
        await _summary(eng, orders, root)
    finally:
        app_server.should_exit = True
        sink_server.should_exit = True
        await asyncio.gather(app_task, sink_task)
        await eng.stop()
        await db.close()


async def _drive(eng: engine.Engine, orders: _OrderSystem, port: int, rate: float, duration_s: float) -> None:
    rng = random.Random(20261124)
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    url = f"http://127.0.0.1:{port}/hooks/shop/orders"
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout, headers={"content-type": "application/json"}) as client:

        async def post(body: bytes) -> int:
            async with client.post(url, data=body) as answer:
                await answer.read()
                return answer.status

        pending: set[asyncio.Task[int]] = set()
        next_report = start + 1
        while loop.time() - start < duration_s:
            sent += 1
            body = codec.dumps(_order(sent, rng))
            pending.add(asyncio.create_task(post(body)))
            if rng.random() < 0.02:  # the shop retries a delivery: the dedupe key makes it one run
                pending.add(asyncio.create_task(post(body)))
            pending = {t for t in pending if not t.done()}
            if loop.time() >= next_report:
                counts = await eng.db.count_runs_by_status()
                click.echo(
                    f"  t={loop.time() - start:4.0f}s  sent {sent:6d}  runs {_fmt(counts)}"
                    f"  orders created {len(orders.effects)}"
                )
                next_report += 1
            await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
        await asyncio.gather(*pending)


async def _drain(eng: engine.Engine, timeout_s: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        counts = await eng.db.count_runs_by_status()
        if not counts.get("queued") and not counts.get("running") and not counts.get("waiting"):
            return
        await asyncio.sleep(0.1)


def _fmt(counts: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"


async def _summary(eng: engine.Engine, orders: _OrderSystem, root: Path) -> None:
    counts = await eng.db.count_runs_by_status()
    dead = await eng.db.list_runs(store.RunFilter(statuses=(store.RunStatus.DEAD_LETTER,), limit=3))
    click.echo("")
    click.echo(f"Runs:            {_fmt(counts)}")
    click.echo(
        f"Orders created:  {len(orders.effects)} (requests received: {orders.requests};"
        " repeats carried the same Idempotency-Key)"
    )
    for run in dead:
        click.echo(f"Dead letter:     {run.run_id}  {codec.dumps_text(run.error)[:160]}")
    click.echo("")
    click.echo("Look closer:")
    click.echo(f"  seamflow runs list --project {root}")
    click.echo(f"  seamflow dead-letters --project {root}")
    if dead:
        click.echo(f"  seamflow runs show {dead[0].run_id} --project {root}")
