"""Feeds through the whole product: `poll` and `consume` triggers of a real `seamflow serve`.

Each test kills the server with SIGKILL while a feed is running and restarts it; every source
item version must still produce exactly one effect at the idempotent sink (the in-process
sink of the test keeps counting across the server's deaths).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from string import Template
from typing import Any

import httpx
import pytest

from tests.acceptance.flows import FORWARD, sink_connection
from tests.support.erp import Erp, erp_database
from tests.support.server import Server, make_project
from tests.support.sink import Behaviour, Sink
from tests.support.wait import eventually

CUSTOMERS = ["张伟", "王芳", "上海浦东发展有限公司", "李娜", "北京京东世纪贸易有限公司", "刘洋"]
_T0 = datetime(2026, 11, 25, 10, 0, 0)

ERP_ROWS_FLOW = """
id: erp-orders
trigger:
  poll:
    connection: erp
    feed: rows
    with: {table: orders, cursor: updated_at, key: id}
    every: 200ms
    batch: 4
steps:
  - id: post
    action: sink.post
    with:
      path: /erp-orders
      json:
        id: "{{ event.body.id }}"
        version: "{{ event.body.version }}"
        customer: "{{ event.body.customer }}"
        amount: "{{ event.body.amount }}"
        currency: "{{ event.body.currency }}"
        key: "{{ event.feed.key }}"
    retry: {attempts: 20, backoff: exponential, initial_delay: 100ms, max_delay: 1s}
on_error: dead_letter
"""


def _erp_connection(erp: Erp) -> str:
    return f"""
erp:
  connector: sql
  url: "{erp.url}"
  pool_size: 2
"""


async def _feeds(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    answer = await client.get("/api/v1/feeds")
    assert answer.status_code == 200, answer.text
    return {feed["flow"]: feed for feed in answer.json()}


async def _polled_again(client: httpx.AsyncClient, flow: str, polls: int = 3) -> None:
    """Wait until the feed of `flow` has finished `polls` more polls (its `last_poll` moved on each time).

    The first may have started before the caller's condition held; the others started after it.
    """
    for _ in range(polls):
        before = (await _feeds(client))[flow]["last_poll"]

        async def moved(before: object = before) -> None:
            assert (await _feeds(client))[flow]["last_poll"] != before

        await eventually(moved, timeout=30, interval=0.02)


def _posted(sink: Sink, path: str) -> list[dict[str, Any]]:
    """The JSON bodies of the effects at `path` (repeats of one idempotency key are one effect)."""
    seen: set[str | None] = set()
    bodies = []
    for request in sink.requests:
        if request.path != path or (request.idempotency_key is not None and request.idempotency_key in seen):
            continue
        seen.add(request.idempotency_key)
        bodies.append(json.loads(request.body))
    return bodies


# --- 1. SQL poll across a restart ------------------------------------------------------------------------------


class _Orders:
    """The ERP's `orders` table; remembers every row version it wrote."""

    def __init__(self, erp: Erp) -> None:
        self.erp = erp
        self.versions: dict[tuple[int, int], tuple[str, str]] = {}
        """(id, version) -> (customer, amount) of every row version written."""
        self.latest: dict[int, int] = {}
        self._tick = 0
        stamp = {"postgres": "TIMESTAMP", "mariadb": "DATETIME(6)"}.get(erp.kind, "TEXT")  # microseconds kept
        erp.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, customer TEXT NOT NULL,"
            f" amount TEXT NOT NULL, currency TEXT NOT NULL, updated_at {stamp} NOT NULL)"
        )

    def _stamp(self, *, tie: bool = False) -> object:
        """A growing `updated_at`; `tie` repeats the previous one (rows sharing a cursor value)."""
        if not tie:
            self._tick += 1
        moment = _T0 + timedelta(milliseconds=self._tick)
        return moment if self.erp.kind != "sqlite" else moment.isoformat(sep=" ", timespec="microseconds")

    def insert(self, order_id: int, *, tie: bool = False) -> None:
        customer = CUSTOMERS[order_id % len(CUSTOMERS)]
        amount = f"{order_id * 37 % 100000}.{order_id % 100:02d}"
        self.erp.execute(
            "INSERT INTO orders (id, version, customer, amount, currency, updated_at) VALUES (?, 1, ?, ?, 'CNY', ?)",
            (order_id, customer, amount, self._stamp(tie=tie)),
        )
        self.versions[(order_id, 1)] = (customer, amount)
        self.latest[order_id] = 1

    def update(self, order_id: int) -> None:
        version = self.latest[order_id] + 1
        customer = CUSTOMERS[order_id % len(CUSTOMERS)]
        amount = f"{order_id * 41 % 100000}.{version:02d}"
        self.erp.execute(
            "UPDATE orders SET version = ?, amount = ?, updated_at = ? WHERE id = ?",
            (version, amount, self._stamp(), order_id),
        )
        self.versions[(order_id, version)] = (customer, amount)
        self.latest[order_id] = version


@pytest.mark.parametrize("erp_kind", ["sqlite", "postgres", "mariadb"])
async def test_sql_poll_survives_kill_9_and_delivers_every_row_version_once(
    project_dir: Path, sink: Sink, erp_kind: str
) -> None:
    with erp_database(erp_kind, project_dir.parent / "erp") as erp:
        orders = _Orders(erp)
        for n in range(1, 31):
            orders.insert(n, tie=n % 3 == 0)  # every third row shares its updated_at with the one before
        make_project(
            project_dir, {"erp-orders": ERP_ROWS_FLOW}, sink_connection(sink.url, concurrency=4) + _erp_connection(erp)
        )
        sink.behaviour = Behaviour(delay_ms=15)
        server = Server(project_dir)
        await server.start()
        try:
            for n in range(31, 61):  # rows keep arriving while the feed runs
                orders.insert(n, tie=n % 4 == 0)
                await asyncio.sleep(0.01)

            async def some_delivered() -> None:
                assert len(_posted(sink, "/erp-orders")) >= 20

            await eventually(some_delivered, timeout=30)
            server.kill()
            delivered_before = len(_posted(sink, "/erp-orders"))
            for n in range(61, 81):  # new rows and changed rows while the server is down
                orders.insert(n)
            # Changed rows: only ones already read, since a poll sees a row's latest version only
            # (a version overwritten before any poll read it is gone from the table).
            read = sorted({body["id"] for body in _posted(sink, "/erp-orders")})
            for n in [*read[:3], *random.Random(5).sample(read[3:], 4)]:
                orders.update(n)
            await server.start()

            async def all_delivered() -> None:
                seen = {(body["id"], body["version"]) for body in _posted(sink, "/erp-orders")}
                assert seen >= set(orders.versions), sorted(set(orders.versions) - seen)

            await eventually(all_delivered, timeout=60)
            async with server.client() as client:
                await _polled_again(client, "erp-orders")  # a whole poll after the last delivery: nothing more may come
                feed = (await _feeds(client))["erp-orders"]
        finally:
            server.kill()

    posted = _posted(sink, "/erp-orders")
    assert delivered_before < len(orders.versions), "the kill happened before everything was delivered"
    per_version = Counter((body["id"], body["version"]) for body in posted)
    doubled = {version: count for version, count in per_version.items() if count > 1}
    assert doubled == {}, "no row version produced two effects"
    assert set(per_version) == set(orders.versions), "every row version produced an effect"
    for body in posted:
        assert (body["customer"], body["amount"]) == orders.versions[(body["id"], body["version"])]
        assert body["currency"] == "CNY" and isinstance(body["amount"], str)  # "1110.30" stays that text
        assert body["key"].startswith(f"orders:{body['id']}:")
    assert len({body["key"] for body in posted}) == len(posted), "each row version has its own dedupe key"
    assert sink.stats()["effects"] == len(orders.versions)
    runs = server.database.query("SELECT status, COUNT(*) FROM runs WHERE flow_id = 'erp-orders' GROUP BY status")
    assert dict(runs) == {"completed": len(orders.versions)}
    assert feed["health"] == "ok", feed
    assert feed["connection"] == "erp" and feed["feed"] == "rows"
    assert feed["items"] >= len(orders.versions), feed
    assert feed["last_ok"] is not None and feed["failing_since"] is None and feed["last_error"] is None, feed


# --- 2. File folder feed ---------------------------------------------------------------------------------------

FILE_ROWS_FLOW = """
id: pos-rows
trigger:
  poll:
    connection: pos_files
    feed: rows
    with:
      folder: inbox
      glob: "*.csv"
      encoding: auto
      columns: [order_no, customer, amount, store]
      settle: 300ms
      move_to: done
    every: 200ms
    batch: 7
steps:
  - id: post
    action: sink.post
    with:
      path: /pos-rows
      json:
        file: "{{ event.body.name }}"
        row_number: "{{ event.body.row_number }}"
        order_no: "{{ event.body.row.order_no }}"
        customer: "{{ event.body.row.customer }}"
        amount: "{{ event.body.row.amount }}"
    retry: {attempts: 20, backoff: exponential, initial_delay: 100ms, max_delay: 1s}
on_error: dead_letter
"""

ROWS_PER_FILE = 25


def _drop_gbk_csv(inbox: Path, number: int) -> dict[str, tuple[str, str]]:
    """Write `pos-NNNN.csv` in GBK (written aside, then renamed in); return order_no -> (customer, amount)."""
    rows = {
        f"POS{number:04d}{r:04d}": (CUSTOMERS[(number + r) % len(CUSTOMERS)], f"{number * 100 + r}.{r % 100:02d}")
        for r in range(1, ROWS_PER_FILE + 1)
    }
    lines = ["单号,客户名称,金额,门店"] + [
        f"{no},{name},{amount},门店{number:02d}" for no, (name, amount) in rows.items()
    ]
    partial = inbox / f".pos-{number:04d}.part"
    partial.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    partial.rename(inbox / f"pos-{number:04d}.csv")
    return rows


async def _watch_moves(root: Path, server: Server, checked: dict[str, int], stop: asyncio.Event) -> None:
    """Count, for each file as soon as it appears in done/, the events of its rows already committed."""
    while not stop.is_set():
        for path in sorted((root / "done").glob("*.csv")) if (root / "done").is_dir() else []:
            if path.name in checked:
                continue
            with contextlib.suppress(Exception):  # the store may be locked for a moment: look again
                checked[path.name] = server.database.query(
                    "SELECT COUNT(*) FROM events WHERE flow_id = 'pos-rows' AND dedupe_key LIKE ?",
                    (f"inbox/{path.name}:%",),
                )[0][0]
        await asyncio.sleep(0.02)


async def test_gbk_csv_rows_feed_survives_kill_9_each_row_once_files_moved_after_commit(
    project_dir: Path, sink: Sink
) -> None:
    root = project_dir.parent / "exchange"
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    expected: dict[str, tuple[str, str]] = {}
    for number in range(1, 4):
        expected |= _drop_gbk_csv(inbox, number)
    files = f"""
pos_files:
  connector: file
  root: {root}
"""
    make_project(project_dir, {"pos-rows": FILE_ROWS_FLOW}, sink_connection(sink.url, concurrency=4) + files)
    sink.behaviour = Behaviour(delay_ms=10)
    server = Server(project_dir)
    committed_when_moved: dict[str, int] = {}
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_moves(root, server, committed_when_moved, stop))
    await server.start()
    try:
        for number in range(4, 7):  # files keep arriving while the feed runs
            expected |= _drop_gbk_csv(inbox, number)
            await asyncio.sleep(0.15)

        async def some_delivered() -> None:
            assert len(_posted(sink, "/pos-rows")) >= 2 * ROWS_PER_FILE

        await eventually(some_delivered, timeout=30)
        server.kill()
        delivered_before = len(_posted(sink, "/pos-rows"))
        for number in range(7, 9):  # more files while the server is down
            expected |= _drop_gbk_csv(inbox, number)
        await server.start()

        async def all_delivered() -> None:
            seen = {body["order_no"] for body in _posted(sink, "/pos-rows")}
            assert seen >= set(expected), sorted(set(expected) - seen)[:10]
            assert sorted(p.name for p in inbox.iterdir()) == [], "every file left the inbox"

        await eventually(all_delivered, timeout=60)
        async with server.client() as client:
            await _polled_again(client, "pos-rows")  # a whole poll after the last delivery: nothing more may come
            feed = (await _feeds(client))["pos-rows"]
    finally:
        stop.set()
        await watcher
        server.kill()

    posted = _posted(sink, "/pos-rows")
    assert delivered_before < len(expected), "the kill happened before everything was delivered"
    per_row = Counter(body["order_no"] for body in posted)
    assert {no: n for no, n in per_row.items() if n > 1} == {}, "no row produced two effects"
    assert set(per_row) == set(expected)
    for body in posted:
        assert (body["customer"], body["amount"]) == expected[body["order_no"]]  # GBK decoded, amount kept as text
        assert body["file"] == f"pos-{body['order_no'][3:7]}.csv"
        assert body["row_number"] == int(body["order_no"][7:])
    assert sink.stats()["effects"] == len(expected)
    assert committed_when_moved == {f"pos-{n:04d}.csv": ROWS_PER_FILE for n in range(1, 9)}, "moved after commit"
    assert sorted(p.name for p in (root / "done").iterdir()) == [f"pos-{n:04d}.csv" for n in range(1, 9)]
    runs = server.database.query("SELECT status, COUNT(*) FROM runs WHERE flow_id = 'pos-rows' GROUP BY status")
    assert dict(runs) == {"completed": len(expected)}
    assert feed["health"] == "ok" and feed["last_ok"] is not None and feed["items"] >= len(expected), feed


# --- 3. A failing feed is reported ----------------------------------------------------------------------------

SECRET_PASSWORD = "S3cr3t-Pw-9f2xQ"

FAILING_FLOWS = {
    "missing-table": """
id: missing-table
trigger:
  poll:
    connection: erp
    feed: rows
    with: {table: no_such_orders, cursor: updated_at, key: id}
    every: 200ms
steps:
  - id: post
    action: sink.post
    with: {path: /never, json: "{{ event.body }}"}
""",
    "missing-table-stalls": """
id: missing-table-stalls
trigger:
  poll:
    connection: erp
    feed: rows
    with: {table: no_such_orders, cursor: id, key: id}
    every: 200ms
    stall_after: 1s
steps:
  - id: post
    action: sink.post
    with: {path: /never, json: "{{ event.body }}"}
""",
    "erp-down": """
id: erp-down
trigger:
  poll:
    connection: erp_down
    feed: rows
    with: {table: orders, cursor: updated_at, key: id}
    every: 200ms
steps:
  - id: post
    action: sink.post
    with: {path: /never, json: "{{ event.body }}"}
""",
    "forward": FORWARD,
}


async def test_a_failing_feed_is_reported_without_secrets_and_the_server_keeps_serving(
    project_dir: Path, sink: Sink
) -> None:
    with erp_database("sqlite", project_dir.parent / "erp") as erp:
        connections = sink_connection(sink.url) + _erp_connection(erp)
        connections += """
erp_down:
  connector: sql
  url: "{{ secrets.erp_down_url }}"
  timeout: 2s
"""
        make_project(project_dir, FAILING_FLOWS, connections)
        down_url = f"postgresql+psycopg://erp_reader:{SECRET_PASSWORD}@127.0.0.1:1/erp"
        server = Server(project_dir, env={"SEAMFLOW_SECRET_ERP_DOWN_URL": down_url})
        await server.start()
        try:
            async with server.client() as client:

                async def reported() -> dict[str, dict[str, Any]]:
                    feeds = await _feeds(client)
                    assert feeds["missing-table"]["health"] == "failing", feeds
                    assert feeds["missing-table-stalls"]["health"] == "stalled", feeds
                    assert feeds["erp-down"]["health"] == "failing", feeds
                    return feeds

                feeds = await eventually(reported, timeout=20)
                answer = await client.post(
                    "/hooks/orders", json={"order_no": "SO-1", "amount": "19.90", "customer": "赵敏"}
                )
                assert answer.status_code == 202, answer.text

                async def forwarded() -> None:
                    assert [r.path for r in sink.requests] == ["/orders"]

                await eventually(forwarded)

                async def logged() -> list[dict[str, Any]]:
                    lines = [
                        json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")
                    ]
                    stalled = [line for line in lines if line.get("flow") == "missing-table-stalls"]
                    assert any(line["level"] == "error" and "stalled" in line["message"] for line in stalled), stalled
                    return lines

                lines = await eventually(logged, timeout=20)
        finally:
            server.kill()

    for name in ("missing-table", "missing-table-stalls"):
        feed = feeds[name]
        assert feed["connection"] == "erp" and feed["feed"] == "rows"
        assert feed["failing_since"] is not None and feed["last_ok"] is None and feed["items"] == 0, feed
        assert "no_such_orders" in feed["last_error"], feed  # says which table is missing
    assert feeds["erp-down"]["last_error"], feeds["erp-down"]
    assert SECRET_PASSWORD not in json.dumps(feeds, ensure_ascii=False)
    assert SECRET_PASSWORD not in server.log_path.read_text()
    warned = [line for line in lines if line.get("flow") == "missing-table" and line["level"] == "warning"]
    assert warned and "no_such_orders" in warned[0]["error"], warned
    assert sink.stats()["effects"] == 1, "the failing feeds started no run"


# --- 4. Bad feed triggers are refused before anything runs --------------------------------------------------------

BAD_FEED_FLOW = """
id: bad-feed
trigger:
  poll:
    connection: erp
    feed: rows
    with:
      table: orders
      curser: updated_at
      key: id
      start: middle
steps:
  - id: post
    action: sink.post
    with: {path: /never, json: "{{ event.body }}"}
"""


async def test_a_bad_feed_trigger_is_refused_with_its_position(project_dir: Path, sink: Sink) -> None:
    with erp_database("sqlite", project_dir.parent / "erp") as erp:
        make_project(project_dir, {"bad-feed": BAD_FEED_FLOW}, sink_connection(sink.url) + _erp_connection(erp))
        checked = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "seamflow", "flow", "validate", "--project", str(project_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        server = Server(project_dir)
        with pytest.raises(RuntimeError, match="exited") as refused:
            await server.start()
    out = checked.stdout + checked.stderr
    assert checked.returncode != 0, out
    flow_file = project_dir / "flows" / "bad-feed.yaml"
    assert f"{flow_file}:7:5 trigger.poll.with: missing required setting 'cursor' of erp.rows" in out, out
    assert (
        f"{flow_file}:9:7 trigger.poll.with.curser: unknown setting 'curser' of erp.rows; did you mean 'cursor'?" in out
    )
    assert f"{flow_file}:11:7 trigger.poll.with.start: erp.rows: Input should be 'beginning' or 'now'" in out, out
    assert "unknown setting 'curser'" in str(refused.value), "serve names the problem too"


# --- 5. Broker consume across a kill -9: RabbitMQ, Mosquitto, Redis streams ------------------------------------

RABBIT_URL = os.environ.get("SEAMFLOW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
BROKER_HOST = "127.0.0.1"
MQTT_PORT = int(os.environ.get("SEAMFLOW_TEST_MQTT_PORT", "1883"))
REDIS_PORT = int(os.environ.get("SEAMFLOW_TEST_REDIS_PORT", "6379"))
MQTT_URL = f"mqtt://{BROKER_HOST}:{MQTT_PORT}"

MQ_FLOW = Template("""
id: mq-orders
trigger:
  consume:
    connection: mq
    $trigger
steps:
  - id: post
    action: sink.post
    with:
      path: /mq-orders
      json:
        order_no: "{{ $fields.order_no }}"
        customer: "{{ $fields.customer }}"
        amount: "{{ $fields.amount }}"
        message_id: "{{ $message_id }}"
        key: "{{ event.feed.key }}"
    retry: {attempts: 20, backoff: exponential, initial_delay: 100ms, max_delay: 1s}
on_error: dead_letter
""")


def _order(n: int) -> dict[str, str]:
    """Message n's JSON fields; its publisher's id is `order-<n>`."""
    return {"order_no": f"MQ-{n:05d}", "customer": CUSTOMERS[n % len(CUSTOMERS)], "amount": f"{n}.{n % 100:02d}"}


@dataclass
class _Broker:
    """One broker's side of the consume test: the connection and feed of the flow, and the test's publisher."""

    messages: int
    """How many distinct messages the test publishes."""
    connection: str
    """The `mq` entry of connections.yaml."""
    trigger: str
    """The consume trigger's `feed:` and `with:`."""
    fields: str
    """Where the message's JSON fields are in `event.body`."""
    message_id: str
    """Where the publisher's id of the message is in `event.body`."""
    publish: Callable[[range], Awaitable[None]]
    """Publish messages `n` of the range, each with its stable id `order-<n>` (again: a publisher's retry)."""
    key: Callable[[int], str]
    """The dedupe key message n must get."""
    settled: Callable[[], Awaitable[None]]
    """Asserts, once the server is gone, that the broker holds nothing more for the feed (all acknowledged)."""


@contextlib.asynccontextmanager
async def _rabbit_queue() -> AsyncIterator[tuple[Any, str]]:
    """A durable queue of its own on the test broker (skips, saying why, if RabbitMQ is not reachable)."""
    import aio_pika

    try:
        connection = await asyncio.wait_for(aio_pika.connect(RABBIT_URL), timeout=5)
    except Exception as exc:  # any failure means: skip, saying why
        pytest.skip(f"RabbitMQ at {RABBIT_URL.split('@')[-1]} is not reachable: {exc}")
    name = f"sf_test_feed_{uuid.uuid4().hex[:10]}"
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(name, durable=True)
        yield channel, name
    finally:
        with contextlib.suppress(Exception):
            cleanup = await connection.channel()
            await cleanup.queue_delete(name)
        await connection.close()


async def _publish(channel: Any, queue: str, numbers: range) -> None:
    import aio_pika

    for n in numbers:
        message = aio_pika.Message(
            json.dumps(_order(n), ensure_ascii=False).encode(),
            message_id=f"order-{n:05d}",
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await channel.default_exchange.publish(message, routing_key=queue)


@contextlib.asynccontextmanager
async def _amqp() -> AsyncIterator[_Broker]:
    """A RabbitMQ queue; the publisher sets `message_id`, which the `queue` feed keys on."""
    async with _rabbit_queue() as (channel, queue):

        async def publish(numbers: range) -> None:
            await _publish(channel, queue, numbers)

        async def settled() -> None:
            async def empty() -> None:  # the dead consumer's unacknowledged messages would be back in the queue
                state = await channel.declare_queue(queue, passive=True)
                assert state.declaration_result.message_count == 0

            await eventually(empty, timeout=20)

        yield _Broker(
            messages=500,
            connection=f"\nmq:\n  connector: amqp\n  url: {RABBIT_URL}\n",
            trigger=f"feed: queue\n    with: {{queue: {queue}, batch: 25}}",
            fields="event.body.json",
            message_id="event.body.message_id",
            publish=publish,
            key=lambda n: f"{queue}:order-{n:05d}",
            settled=settled,
        )


def _mqtt_client(protocol: str, identifier: str | None = None, *, session: bool | None = None) -> Any:
    """An aiomqtt client; `session=True` resumes (or starts) a persistent session, `False` ends it."""
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    options: dict[str, Any] = {}
    if protocol == "5":
        if session is not None:
            options["clean_start"] = not session
        if session:
            options["properties"] = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            options["properties"].SessionExpiryInterval = 600
    elif session is not None:
        options["clean_session"] = not session
    version = aiomqtt.ProtocolVersion.V5 if protocol == "5" else aiomqtt.ProtocolVersion.V311
    return aiomqtt.Client(BROKER_HOST, MQTT_PORT, identifier=identifier, protocol=version, timeout=10, **options)


@contextlib.asynccontextmanager
async def _mqtt(protocol: str) -> AsyncIterator[_Broker]:
    """A Mosquitto topic consumed with QoS 1 in a persistent session.

    On MQTT 5 the publisher's id travels as the user property `message_id` (the default
    `key_property`); on 3.1.1, which has no properties, it is a field of the JSON payload that
    the feed names as `key_field`.
    """
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    suffix = uuid.uuid4().hex[:10]
    topic, client_id = f"sf/test/feed/{suffix}", f"sf-test-feed-{suffix}"
    # The consumer's session exists before the first publish, as it does once the flow has run
    # (a session only receives what is published after its subscription).
    try:
        async with _mqtt_client(protocol, client_id, session=True) as consumer:
            await consumer.subscribe(topic, qos=1)
    except Exception as exc:  # any failure means: skip, saying why
        pytest.skip(f"Mosquitto at {BROKER_HOST}:{MQTT_PORT} is not reachable: {exc}")
    try:
        async with _mqtt_client(protocol) as publisher:

            async def publish(numbers: range) -> None:
                for n in numbers:
                    properties = None
                    payload: dict[str, str] = _order(n)
                    if protocol == "5":
                        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                        properties.UserProperty = [("message_id", f"order-{n:05d}")]
                        properties.ContentType = "application/json"
                    else:
                        payload = {**payload, "message_id": f"order-{n:05d}"}
                    data = json.dumps(payload, ensure_ascii=False).encode()
                    await publisher.publish(topic, data, qos=1, properties=properties)

            async def settled() -> None:  # the session gives nothing more: every message was PUBACKed
                left: list[str] = []
                async with _mqtt_client(protocol, client_id, session=True) as consumer:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.5):
                            async for message in consumer.messages:
                                left.append(bytes(message.payload).decode())  # type: ignore[arg-type]
                assert left == [], f"{len(left)} message(s) left unacknowledged in the session"

            if protocol == "5":
                trigger_with, message_id = f'{{topic: "{topic}", client_id: {client_id}, batch: 20}}', "properties"
            else:
                trigger_with = f'{{topic: "{topic}", client_id: {client_id}, batch: 20, key_field: message_id}}'
                message_id = "json"
            yield _Broker(
                messages=300,
                connection=f"\nmq:\n  connector: mqtt\n  url: {MQTT_URL}\n  protocol: {protocol!r}\n",
                trigger=f"feed: topic\n    with: {trigger_with}",
                fields="event.body.json",
                message_id=f"event.body.{message_id}.message_id",
                publish=publish,
                key=lambda n: f"{topic}:order-{n:05d}",
                settled=settled,
            )
    finally:
        with contextlib.suppress(Exception):
            async with _mqtt_client(protocol, client_id, session=False):
                pass  # a clean session ends the test's persistent one


@contextlib.asynccontextmanager
async def _redis() -> AsyncIterator[_Broker]:
    """A Redis stream read through the consumer group `erp-sync`.

    The key of an entry is its entry id. The test publishes with Seamflow's own idempotent
    `publish` (the publisher's id is the idempotency key), so a retry returns the first entry
    id and adds nothing.
    """
    import redis.asyncio as aioredis

    from seamflow.connectors.base import Connection
    from seamflow.connectors.brokers import RedisConnector

    url = f"redis://{BROKER_HOST}:{REDIS_PORT}/0"
    admin = aioredis.Redis(host=BROKER_HOST, port=REDIS_PORT, decode_responses=True)
    try:
        await asyncio.wait_for(admin.ping(), timeout=5)
    except Exception as exc:  # any failure means: skip, saying why
        await admin.aclose()
        pytest.skip(f"Redis at {BROKER_HOST}:{REDIS_PORT} is not reachable: {exc}")
    stream, group = f"sf_test_feed_{uuid.uuid4().hex[:10]}", "erp-sync"
    publisher = RedisConnector()
    await publisher.open(Connection("publisher", "redis", {"url": url}, timeout=timedelta(seconds=10)))
    entry_ids: dict[int, str] = {}
    try:

        async def publish(numbers: range) -> None:
            for n in numbers:
                fields = {**_order(n), "message_id": f"order-{n:05d}"}
                published = await publisher.call(
                    "publish", {"stream": stream, "fields": fields}, idempotency_key=f"order-{n:05d}"
                )
                assert isinstance(published, dict)
                assert published["duplicate"] is (n in entry_ids), published
                assert entry_ids.setdefault(n, str(published["id"])) == published["id"], "a retry keeps the entry id"

        async def settled() -> None:
            assert await admin.xlen(stream) == len(entry_ids), "a retried publish added no entry"
            pending = await admin.xpending(stream, group)
            assert pending["pending"] == 0, pending  # the dead consumer's unacknowledged entries would stay pending

        yield _Broker(
            messages=300,
            connection=f"\nmq:\n  connector: redis\n  url: {url}\n  consumer: seamflow-test\n",
            trigger=f"feed: stream\n    with: {{stream: {stream}, group: {group}, batch: 25}}",
            fields="event.body.fields",
            message_id="event.body.fields.message_id",
            publish=publish,
            key=lambda n: f"{stream}:{entry_ids[n]}",
            settled=settled,
        )
    finally:
        await publisher.close()
        records = [key async for key in admin.scan_iter(match=f"seamflow:published:{{{stream}}}:*")]
        await admin.delete(stream, *records)
        await admin.aclose()


_BROKERS: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[_Broker]]] = {
    "amqp": _amqp,
    "mqtt5": functools.partial(_mqtt, "5"),
    "mqtt3.1.1": functools.partial(_mqtt, "3.1.1"),
    "redis": _redis,
}


@pytest.mark.parametrize("broker_kind", list(_BROKERS))
async def test_broker_consume_survives_kill_9_every_message_one_effect(
    project_dir: Path, sink: Sink, broker_kind: str
) -> None:
    async with _BROKERS[broker_kind]() as broker:
        messages = broker.messages
        flow = MQ_FLOW.substitute(trigger=broker.trigger, fields=broker.fields, message_id=broker.message_id)
        make_project(project_dir, {"mq-orders": flow}, sink_connection(sink.url, concurrency=8) + broker.connection)
        await broker.publish(range(messages // 2))
        sink.behaviour = Behaviour(delay_ms=10)
        server = Server(project_dir)
        await server.start()
        try:
            await broker.publish(range(messages // 2, messages))

            async def some_delivered() -> None:
                assert len(_posted(sink, "/mq-orders")) >= messages // 5

            await eventually(some_delivered, timeout=60)
            server.kill()
            delivered_before = len(_posted(sink, "/mq-orders"))
            await broker.publish(range(0, messages, 25))  # a publisher's retries: the same ids
            await server.start()

            async def all_delivered() -> None:
                seen = {body["order_no"] for body in _posted(sink, "/mq-orders")}
                assert len(seen) >= messages, messages - len(seen)

            await eventually(all_delivered, timeout=90)
            # A negative check with no state to poll (a broker does not tell its unacked count over
            # AMQP/MQTT): time for redeliveries and acknowledgements; nothing more may come.
            await asyncio.sleep(1)
            async with server.client() as client:
                feed = (await _feeds(client))["mq-orders"]
        finally:
            server.kill()
        await broker.settled()

    posted = _posted(sink, "/mq-orders")
    assert delivered_before < messages, "the kill happened while messages were being consumed"
    per_order = Counter(body["order_no"] for body in posted)
    assert {no: n for no, n in per_order.items() if n > 1} == {}, "no message produced two effects"
    assert set(per_order) == {f"MQ-{n:05d}" for n in range(messages)}, "no message was lost"
    for body in posted:
        n = int(body["order_no"][3:])
        assert body["message_id"] == f"order-{n:05d}" and body["amount"] == f"{n}.{n % 100:02d}"
        assert body["customer"] == CUSTOMERS[n % len(CUSTOMERS)]
        assert body["key"] == broker.key(n)
    assert sink.stats()["effects"] == messages
    runs = server.database.query("SELECT status, COUNT(*) FROM runs WHERE flow_id = 'mq-orders' GROUP BY status")
    assert dict(runs) == {"completed": messages}
    assert feed["health"] == "ok" and feed["last_ok"] is not None and feed["items"] >= messages, feed


QUIET_MQ_FLOW = """
id: mq-quiet
trigger:
  consume:
    connection: mq
    feed: queue
    with: {{queue: {queue}}}
    stall_after: 1s
steps:
  - id: post
    action: sink.post
    with: {{path: /mq-quiet, json: "{{{{ event.body.json }}}}"}}
"""


async def test_a_quiet_consume_feed_is_not_stalled(project_dir: Path, sink: Sink) -> None:
    async with _rabbit_queue() as (channel, queue):
        connections = sink_connection(sink.url) + f"\nmq:\n  connector: amqp\n  url: {RABBIT_URL}\n"
        make_project(project_dir, {"mq-quiet": QUIET_MQ_FLOW.format(queue=queue)}, connections)
        await _publish(channel, queue, range(1))
        server = Server(project_dir)
        await server.start()
        try:
            async with server.client() as client:

                async def consumed() -> None:
                    assert (await _feeds(client))["mq-quiet"]["items"] == 1

                await eventually(consumed, timeout=20)
                # The time passing is what is tested: twice stall_after without a message, connected all along.
                await asyncio.sleep(2)
                feed = (await _feeds(client))["mq-quiet"]
        finally:
            server.kill()
    assert feed["health"] == "ok", feed
