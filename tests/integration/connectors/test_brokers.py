"""The broker connectors against real RabbitMQ, Mosquitto and Redis on 127.0.0.1 (nothing mocked).

Every test uses its own queue, topic or stream, removed afterwards. A broker that cannot be
reached skips its tests with the reason. A "crash" is a consumer closed without acknowledging:
the broker sees the same as when the process dies (its connection ends with messages unacked).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aio_pika
import pamqp.body
import pamqp.frame
import pamqp.header
import pytest
import redis.asyncio as aioredis
from pamqp import commands

from seamflow import errors
from seamflow.connectors.base import Batch, Connection, Consumes
from seamflow.connectors.brokers import AmqpConnector, MqttConnector, RedisConnector
from seamflow.ids import Json
from tests.support.wait import eventually

PASSWORD = "pw-Br0ker-5e6f7a"
HOST = "127.0.0.1"
AMQP_PORT = int(os.environ.get("SEAMFLOW_TEST_AMQP_PORT", "5672"))
MQTT_PORT = int(os.environ.get("SEAMFLOW_TEST_MQTT_PORT", "1883"))
REDIS_PORT = int(os.environ.get("SEAMFLOW_TEST_REDIS_PORT", "6379"))

Connector = AmqpConnector | MqttConnector | RedisConnector


def _require(name: str, port: int) -> None:
    try:
        socket.create_connection((HOST, port), timeout=2).close()
    except OSError as exc:
        print(f"{name} at {HOST}:{port} is not reachable: {exc}")
        pytest.skip(f"{name} at {HOST}:{port} is not reachable: {exc}")


def _unique(prefix: str) -> str:
    return f"sf_test_{prefix}_{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def opened(connector: Connector, kind: str, **config: Json) -> AsyncIterator[Any]:
    await connector.open(Connection("bus", kind, config, timeout=timedelta(seconds=5)))
    try:
        yield connector
    finally:
        await connector.close()


async def next_batch(feed: AsyncGenerator[Batch, None], within: float = 5.0) -> Batch:
    async with asyncio.timeout(within):
        return await anext(feed)


async def no_batch(feed: AsyncGenerator[Batch, None], within: float = 0.7) -> None:
    """Nothing arrives within `within` seconds (the iterator stays usable only if it is closed after)."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(within):
            batch = await anext(feed)
            pytest.fail(f"expected nothing, got {[i.key for i in batch.items]}")


def keys(batch: Batch) -> list[str]:
    return [item.key for item in batch.items]


def no_secret_anywhere(caplog: pytest.LogCaptureFixture, failure: BaseException) -> None:
    assert PASSWORD not in str(failure)
    assert PASSWORD not in repr(failure)
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()


# --- RabbitMQ ---------------------------------------------------------------------------------------


@pytest.fixture
async def queue() -> AsyncIterator[str]:
    """A durable queue of its own, deleted afterwards."""
    _require("RabbitMQ", AMQP_PORT)
    name = _unique("q")
    conn = await aio_pika.connect(host=HOST, port=AMQP_PORT, login="guest", password="guest")
    channel = await conn.channel()
    await channel.declare_queue(name, durable=True)
    try:
        yield name
    finally:
        await channel.queue_delete(name)
        await conn.close()


async def ready_count(queue: str) -> int:
    conn = await aio_pika.connect(host=HOST, port=AMQP_PORT, login="guest", password="guest")
    try:
        declared = await (await conn.channel()).declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        assert count is not None
        return count
    finally:
        await conn.close()


async def amqp_publish(bus: AmqpConnector, queue: str, key: str, **inputs: Json) -> Json:
    params: dict[str, Json] = {"routing_key": queue, "json": {"order": key}, **inputs}
    return await bus.call("publish", params, idempotency_key=key)


async def test_amqp_publish_is_confirmed_then_consumed_and_acked(queue: str) -> None:
    async with opened(AmqpConnector(), "amqp", url=f"amqp://guest:guest@{HOST}:{AMQP_PORT}/") as bus:
        assert isinstance(AmqpConnector(), Consumes)
        for n in range(3):
            result = await amqp_publish(bus, queue, f"run_1:sale:{n}", headers={"shop": "SH01"})
            assert result == {"message_id": f"run_1:sale:{n}", "exchange": "", "routing_key": queue}
        assert await ready_count(queue) == 3  # confirmed: the broker holds them when publish returns
        feed = bus.consume("queue", {"queue": queue, "batch": 10})
        batch = await next_batch(feed)
        assert keys(batch) == [f"{queue}:run_1:sale:{n}" for n in range(3)]
        first = batch.items[0].body
        assert isinstance(first, dict)
        assert first["json"] == {"order": "run_1:sale:0"}
        assert first["headers"] == {"shop": "SH01"}
        assert first["content_type"] == "application/json"
        assert batch.ack is not None
        await batch.ack()
        await feed.aclose()
    async with opened(AmqpConnector(), "amqp", url=f"amqp://guest:guest@{HOST}:{AMQP_PORT}/") as bus:
        feed = bus.consume("queue", {"queue": queue})
        await no_batch(feed)  # acknowledged: gone for good
        await feed.aclose()
    assert await ready_count(queue) == 0


async def test_amqp_unacked_batch_comes_again_after_a_crash(queue: str) -> None:
    async with opened(AmqpConnector(), "amqp", host=HOST, port=AMQP_PORT, username="guest", password="guest") as bus:
        await amqp_publish(bus, queue, "k1")
        await amqp_publish(bus, queue, "k2")
        feed = bus.consume("queue", {"queue": queue, "batch": 10})
        first = await next_batch(feed)
        await feed.aclose()  # the consumer dies before the engine committed: no ack
        feed = bus.consume("queue", {"queue": queue, "batch": 10})
        again = await next_batch(feed)
        assert keys(again) == keys(first) == [f"{queue}:k1", f"{queue}:k2"]
        assert again.items[0].body == first.items[0].body  # the same event body: a clean duplicate
        assert again.ack is not None
        await again.ack()
        await feed.aclose()
    assert await ready_count(queue) == 0


async def test_amqp_nack_requeues_the_batch(queue: str) -> None:
    async with opened(AmqpConnector(), "amqp", url=f"amqp://guest:guest@{HOST}:{AMQP_PORT}/%2F") as bus:
        await amqp_publish(bus, queue, "k1")
        feed = bus.consume("queue", {"queue": queue})
        batch = await next_batch(feed)
        assert batch.nack is not None
        await batch.nack()
        again = await next_batch(feed)
        assert keys(again) == keys(batch) == [f"{queue}:k1"]
        assert again.ack is not None
        await again.ack()
        await no_batch(feed)
        await feed.aclose()


async def test_amqp_batches_take_what_arrives_within_the_linger(queue: str) -> None:
    async with opened(AmqpConnector(), "amqp") as bus:
        for n in range(25):
            await amqp_publish(bus, queue, f"k{n}")
        feed = bus.consume("queue", {"queue": queue, "batch": 10, "linger": "200ms"})
        sizes = []
        for _ in range(3):
            batch = await next_batch(feed)
            sizes.append(len(batch.items))
            assert batch.ack is not None
            await batch.ack()
        assert sizes == [10, 10, 5]
        await feed.aclose()
    assert await ready_count(queue) == 0


def raw_publish(queue: str, bodies: list[bytes], headers: dict[str, Any]) -> None:
    """Publish without a message_id, as a plain AMQP client does (aio-pika/aiormq always set one)."""
    sock = socket.create_connection((HOST, AMQP_PORT), timeout=5)
    received = b""

    def expect(kind: type[Any]) -> Any:
        nonlocal received
        while True:
            frame = None
            if received:
                with contextlib.suppress(Exception):  # an incomplete frame: read more
                    frame = pamqp.frame.unmarshal(received)
            if frame is None:
                received += sock.recv(65536)
                continue
            received = received[frame[0] :]
            if isinstance(frame[2], kind):
                return frame[2]

    def send(value: Any, channel: int) -> None:
        sock.sendall(pamqp.frame.marshal(value, channel))

    with sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        expect(commands.Connection.Start)
        send(commands.Connection.StartOk(mechanism="PLAIN", response="\x00guest\x00guest", locale="en_US"), 0)
        tune = expect(commands.Connection.Tune)
        send(commands.Connection.TuneOk(channel_max=tune.channel_max, frame_max=tune.frame_max, heartbeat=0), 0)
        send(commands.Connection.Open(virtual_host="/"), 0)
        expect(commands.Connection.OpenOk)
        send(commands.Channel.Open(), 1)
        expect(commands.Channel.OpenOk)
        for data in bodies:
            send(commands.Basic.Publish(exchange="", routing_key=queue), 1)
            send(pamqp.header.ContentHeader(0, len(data), commands.Basic.Properties(headers=headers)), 1)
            send(pamqp.body.ContentBody(data), 1)
        send(commands.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0), 0)
        expect(commands.Connection.CloseOk)


async def test_amqp_without_message_id_the_key_is_a_stable_hash_of_the_content(queue: str) -> None:
    await asyncio.to_thread(raw_publish, queue, [b"sale 1", b"sale 2"], {"shop": "A", "x-note": "n"})
    async with opened(AmqpConnector(), "amqp") as bus:
        feed = bus.consume("queue", {"queue": queue, "batch": 10})
        first = await next_batch(feed)
        await feed.aclose()
        feed = bus.consume("queue", {"queue": queue, "batch": 10})
        again = await next_batch(feed)
        assert keys(again) == keys(first)
        assert len(set(keys(first))) == 2 and all(":sha256:" in k for k in keys(first))
        assert [i.body["text"] for i in again.items if isinstance(i.body, dict)] == ["sale 1", "sale 2"]
        assert again.ack is not None
        await again.ack()
        await feed.aclose()


async def test_amqp_refuses_unroutable_messages_and_unknown_exchanges(queue: str) -> None:
    async with opened(AmqpConnector(), "amqp") as bus:
        with pytest.raises(errors.Permanent, match="no queue receives messages sent to the default exchange"):
            await amqp_publish(bus, f"{queue}_missing", "k1")
        with pytest.raises(errors.Permanent, match="exchange 'sf_no_such_exchange' does not exist"):
            await amqp_publish(bus, queue, "k2", exchange="sf_no_such_exchange")
        await amqp_publish(bus, queue, "k3")  # the channel closed by the 404 was reopened
        with pytest.raises(errors.Permanent, match="give exactly one of json or text"):
            await bus.call("publish", {"routing_key": queue, "json": 1, "text": "x"}, idempotency_key="k4")
        feed = bus.consume("queue", {"queue": f"{queue}_missing"})
        with pytest.raises(errors.Permanent, match="does not exist"):
            await anext(feed)
    assert await ready_count(queue) == 1


async def test_amqp_check_names_wrong_credentials_unknown_vhost_and_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _require("RabbitMQ", AMQP_PORT)
    caplog.set_level(logging.DEBUG)
    async with opened(AmqpConnector(), "amqp", url=f"amqp://guest:guest@{HOST}:{AMQP_PORT}/") as bus:
        assert "connected to RabbitMQ" in await bus.check()
    async with opened(AmqpConnector(), "amqp", url=f"amqp://guest:{PASSWORD}@{HOST}:{AMQP_PORT}/") as bus:
        with pytest.raises(errors.Permanent, match="credentials refused") as refused:
            await bus.check()
        no_secret_anywhere(caplog, refused.value)
        with pytest.raises(errors.Permanent, match="credentials refused") as publishing:
            await amqp_publish(bus, "any", "k1")
        no_secret_anywhere(caplog, publishing.value)
    async with opened(AmqpConnector(), "amqp", virtual_host="sf_no_such_vhost") as bus:
        with pytest.raises(errors.Permanent, match="virtual host 'sf_no_such_vhost'"):
            await bus.check()
    async with opened(AmqpConnector(), "amqp", port=_free_port()) as bus:
        with pytest.raises(errors.Permanent, match="refused"):
            await bus.check()
        with pytest.raises(errors.Transient, match="refused"):
            await amqp_publish(bus, "any", "k1")
    with pytest.raises(errors.InvalidInput, match="url") as invalid:
        await AmqpConnector().open(Connection("bus", "amqp", {"url": f"http://u:{PASSWORD}@h/"}))
    assert PASSWORD not in str(invalid.value)


# --- Mosquitto --------------------------------------------------------------------------------------


@pytest.fixture
def topic() -> str:
    _require("Mosquitto", MQTT_PORT)
    return f"sf/test/{uuid.uuid4().hex[:12]}"


async def mqtt_publish(bus: MqttConnector, topic: str, key: str, **inputs: Json) -> Json:
    params: dict[str, Json] = {"topic": topic, "json": {"sale": key}, **inputs}
    return await bus.call("publish", params, idempotency_key=key)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_mqtt_unacked_message_comes_again_in_the_persistent_session(topic: str, protocol: str) -> None:
    client_id = f"sf-test-{uuid.uuid4().hex[:8]}"
    settings: dict[str, Json] = {"host": HOST, "port": MQTT_PORT, "protocol": protocol}
    feed_with: dict[str, Json] = {"topic": topic, "client_id": client_id, "key_field": "sale"}
    async with opened(MqttConnector(), "mqtt", **settings) as bus:
        await _subscribed_session(client_id, topic, protocol)  # it keeps what is published from now on
        feed = bus.consume("topic", feed_with)
        subscribing = asyncio.ensure_future(anext(feed))
        await mqtt_publish(bus, topic, "run_1:pos:1")
        first = await asyncio.wait_for(subscribing, 5)
        assert keys(first) == [f"{topic}:run_1:pos:1"]
        await feed.aclose()  # dies without PUBACK
        await mqtt_publish(bus, topic, "run_1:pos:2")  # sent while the consumer is away: queued in the session
        feed = bus.consume("topic", feed_with)
        again = await next_batch(feed)
        while len(again.items) < 2:  # the redelivered one and the queued one may come in two batches
            more = await next_batch(feed)
            again.items += more.items
            again.ack = more.ack
        assert keys(again) == [f"{topic}:run_1:pos:1", f"{topic}:run_1:pos:2"]
        assert again.items[0].body == first.items[0].body
        await feed.aclose()
        # Acknowledged in order, both leave the session.
        feed = bus.consume("topic", feed_with)
        seen: list[str] = []
        while len(seen) < 2:
            batch = await next_batch(feed)
            seen += keys(batch)
            assert batch.ack is not None
            await batch.ack()
        assert seen == [f"{topic}:run_1:pos:1", f"{topic}:run_1:pos:2"]
        await feed.aclose()
        feed = bus.consume("topic", {**feed_with, "topic": topic})
        await no_batch(feed, 1.0)
        await feed.aclose()
        await _end_session(bus, client_id, protocol)


async def _subscribed_session(client_id: str, subscription: str, protocol: str) -> None:
    """Create the consumer's persistent session with its subscription (SUBACK received), then leave.

    The broker queues what is published to `subscription` from then on for the session, so a
    test can publish before the consumer connects instead of sleeping until it has subscribed.
    """
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    options: dict[str, Any] = {"clean_session": False}
    version = aiomqtt.ProtocolVersion.V311
    if protocol == "5":
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 300
        options, version = {"clean_start": False, "properties": properties}, aiomqtt.ProtocolVersion.V5
    async with aiomqtt.Client(HOST, MQTT_PORT, identifier=client_id, protocol=version, **options) as client:
        await client.subscribe(subscription, qos=1)


async def _end_session(bus: MqttConnector, client_id: str, protocol: str) -> None:
    """Remove the test's persistent session from the broker (connect once with a clean session)."""
    import aiomqtt

    version = aiomqtt.ProtocolVersion.V5 if protocol == "5" else aiomqtt.ProtocolVersion.V311
    options: dict[str, Any] = {"clean_start": True} if protocol == "5" else {"clean_session": True}
    async with aiomqtt.Client(HOST, MQTT_PORT, identifier=client_id, protocol=version, **options):
        pass


async def test_mqtt_publish_then_consume_with_key_from_the_message_id_property(topic: str) -> None:
    client_id = f"sf-test-{uuid.uuid4().hex[:8]}"
    async with opened(MqttConnector(), "mqtt", url=f"mqtt://{HOST}:{MQTT_PORT}") as bus:
        await _subscribed_session(client_id, f"{topic}/+", "5")
        feed = bus.consume("topic", {"topic": f"{topic}/+", "client_id": client_id, "batch": 50})
        waiting = asyncio.ensure_future(anext(feed))
        results = [await mqtt_publish(bus, f"{topic}/shop1", f"k{n}") for n in range(5)]
        assert results[0] == {"topic": f"{topic}/shop1", "qos": 1, "message_id": "k0"}
        batch = await asyncio.wait_for(waiting, 5)
        while len(batch.items) < 5:
            batch.items += (await next_batch(feed)).items
        assert keys(batch) == [f"{topic}/shop1:k{n}" for n in range(5)]
        body = batch.items[0].body
        assert isinstance(body, dict)
        assert body["json"] == {"sale": "k0"}
        assert body["qos"] == 1 and body["content_type"] == "application/json"
        assert batch.ack is not None
        await batch.ack()
        await feed.aclose()
        await _end_session(bus, client_id, "5")


async def test_mqtt_nack_gives_the_batch_back(topic: str) -> None:
    client_id = f"sf-test-{uuid.uuid4().hex[:8]}"
    async with opened(MqttConnector(), "mqtt", protocol="3.1.1") as bus:
        await _subscribed_session(client_id, topic, "3.1.1")
        feed = bus.consume("topic", {"topic": topic, "client_id": client_id})
        waiting = asyncio.ensure_future(anext(feed))
        await bus.call("publish", {"topic": topic, "text": "sale 1"}, idempotency_key="k1")
        batch = await asyncio.wait_for(waiting, 5)
        assert keys(batch)[0].startswith(f"{topic}:sha256:")  # 3.1.1 carries no message_id: a content hash
        assert batch.nack is not None
        await batch.nack()
        again = await next_batch(feed)
        assert keys(again) == keys(batch)
        assert again.items[0].body == batch.items[0].body
        await feed.aclose()
        await _end_session(bus, client_id, "3.1.1")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def guarded_mosquitto(tmp_path: Path) -> Iterator[int]:
    """A Mosquitto of this test's own that requires a password (the shared one allows anonymous logins)."""
    mosquitto = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    passwd = shutil.which("mosquitto_passwd")
    if mosquitto is None or passwd is None:
        print("mosquitto / mosquitto_passwd are not installed: cannot start a broker that checks passwords")
        pytest.skip("mosquitto / mosquitto_passwd are not installed: cannot start a broker that checks passwords")
    port = _free_port()
    (tmp_path / "passwords").touch()
    subprocess.run([passwd, "-b", str(tmp_path / "passwords"), "alice", "right-password"], check=True)
    run_as = (
        "user root\n" if os.geteuid() == 0 else ""
    )  # as root it would switch to `mosquitto`, who cannot read tmp_path
    (tmp_path / "mosquitto.conf").write_text(
        f"listener {port} {HOST}\nallow_anonymous false\npassword_file {tmp_path / 'passwords'}\npersistence false\n"
        + run_as
    )
    broker = subprocess.Popen(
        [mosquitto, "-c", str(tmp_path / "mosquitto.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(50):
            with contextlib.suppress(OSError):
                socket.create_connection((HOST, port), timeout=0.2).close()
                break
            broker.poll()
            if broker.returncode is not None:
                pytest.skip(f"mosquitto exited with {broker.returncode}")
            import time

            time.sleep(0.1)
        yield port
    finally:
        broker.terminate()
        broker.wait(5)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_mqtt_check_names_wrong_credentials_and_refusal(
    guarded_mosquitto: int, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings: dict[str, Json] = {"port": guarded_mosquitto, "protocol": protocol, "username": "alice"}
    async with opened(MqttConnector(), "mqtt", **settings, password="right-password") as bus:
        assert await bus.check() == f"connected to {HOST}:{guarded_mosquitto} (MQTT {protocol}) as alice"
    async with opened(MqttConnector(), "mqtt", **settings, password=PASSWORD) as bus:
        with pytest.raises(errors.Permanent, match="credentials refused") as refused:
            await bus.check()
        no_secret_anywhere(caplog, refused.value)
        feed = bus.consume("topic", {"topic": "a/b"})
        with pytest.raises(errors.Permanent, match="credentials refused"):
            await anext(feed)
    async with opened(MqttConnector(), "mqtt", port=_free_port()) as bus:
        with pytest.raises(errors.Permanent, match="refused"):
            await bus.check()
        with pytest.raises(errors.Transient, match="refused"):
            await bus.call("publish", {"topic": "a", "text": "x"}, idempotency_key="k")


# --- Redis ------------------------------------------------------------------------------------------


@pytest.fixture
async def stream() -> AsyncIterator[str]:
    """A stream name of its own; the stream and its publish records are deleted afterwards."""
    _require("Redis", REDIS_PORT)
    name = _unique("s")
    yield name
    admin = aioredis.Redis(host=HOST, port=REDIS_PORT)
    records = [key async for key in admin.scan_iter(match=f"seamflow:published:{{{name}}}:*")]
    await admin.delete(name, *records)
    await admin.aclose()


async def redis_admin() -> aioredis.Redis:
    return aioredis.Redis(host=HOST, port=REDIS_PORT, decode_responses=True)


async def _reading(client_name: str) -> None:
    """Wait until a connection named `client_name` is blocked in a stream read (`CLIENT LIST` flag b)."""
    admin = await redis_admin()

    async def blocked() -> None:
        clients: str = await admin.execute_command("CLIENT", "LIST")  # type: ignore[no-untyped-call]
        lines = [dict(part.split("=", 1) for part in line.split(" ") if "=" in part) for line in clients.splitlines()]
        assert any(c.get("name") == client_name and "b" in c.get("flags", "") for c in lines), clients

    try:
        await eventually(blocked, timeout=5, interval=0.01)
    finally:
        await admin.aclose()


async def test_redis_publish_with_the_same_key_adds_one_entry(stream: str) -> None:
    async with opened(RedisConnector(), "redis", url=f"redis://{HOST}:{REDIS_PORT}/0") as bus:
        fields: dict[str, Json] = {"order": "SO-1", "amount": "19.90", "lines": [1, 2]}
        first = await bus.call("publish", {"stream": stream, "fields": fields}, idempotency_key="run_1:pub")
        again = await bus.call("publish", {"stream": stream, "fields": fields}, idempotency_key="run_1:pub")
        other = await bus.call("publish", {"stream": stream, "fields": fields}, idempotency_key="run_2:pub")
    assert isinstance(first, dict) and isinstance(again, dict) and isinstance(other, dict)
    assert first["duplicate"] is False and again["duplicate"] is True and other["duplicate"] is False
    assert again["id"] == first["id"] != other["id"]
    admin = await redis_admin()
    entries = await admin.xrange(stream)
    await admin.aclose()
    assert entries is not None
    assert [entry_id for entry_id, _ in entries] == [first["id"], other["id"]]
    assert entries[0][1] == {"order": "SO-1", "amount": "19.90", "lines": "[1,2]"}


async def test_redis_publish_trims_with_maxlen(stream: str) -> None:
    async with opened(RedisConnector(), "redis") as bus:
        for n in range(20):
            params: dict[str, Json] = {"stream": stream, "fields": {"n": n}, "maxlen": 5, "approximate": False}
            await bus.call("publish", params, idempotency_key=f"k{n}")
    admin = await redis_admin()
    assert await admin.xlen(stream) == 5
    await admin.aclose()


async def test_redis_consume_acks_and_a_crash_rereads_pending_entries(stream: str) -> None:
    async with opened(RedisConnector(), "redis") as bus:
        ids = [
            (await bus.call("publish", {"stream": stream, "fields": {"n": str(n)}}, idempotency_key=f"k{n}"))["id"]
            for n in range(3)
        ]
        feed = bus.consume("stream", {"stream": stream, "batch": 2})
        first = await next_batch(feed)
        assert keys(first) == [f"{stream}:{i}" for i in ids[:2]]
        assert first.items[0].body == {"stream": stream, "id": ids[0], "fields": {"n": "0"}}
        assert first.items[0].at is not None
        await feed.aclose()  # crash: neither acknowledged
        feed = bus.consume("stream", {"stream": stream, "batch": 2})
        again = await next_batch(feed)
        assert keys(again) == keys(first)  # this consumer's pending entries come first, same keys
        assert again.ack is not None
        await again.ack()
        rest = await next_batch(feed)
        assert keys(rest) == [f"{stream}:{ids[2]}"]
        assert rest.ack is not None
        await rest.ack()
        await no_batch(feed, 1.5)
        await feed.aclose()
    admin = await redis_admin()
    pending = await admin.xpending(stream, "seamflow")
    await admin.aclose()
    assert pending["pending"] == 0


async def test_redis_nack_leaves_entries_pending_and_they_come_again(stream: str) -> None:
    async with opened(RedisConnector(), "redis") as bus:
        await bus.call("publish", {"stream": stream, "fields": {"n": "1"}}, idempotency_key="k1")
        feed = bus.consume("stream", {"stream": stream, "group": "erp"})
        batch = await next_batch(feed)
        assert batch.nack is not None
        await batch.nack()
        admin = await redis_admin()
        assert (await admin.xpending(stream, "erp"))["pending"] == 1
        again = await next_batch(feed)
        assert keys(again) == keys(batch)
        assert again.ack is not None
        await again.ack()
        assert (await admin.xpending(stream, "erp"))["pending"] == 0
        await admin.aclose()
        await feed.aclose()


async def test_redis_claims_entries_a_dead_consumer_left_pending(stream: str) -> None:
    async with opened(RedisConnector(), "redis") as bus:
        for n in range(3):
            await bus.call("publish", {"stream": stream, "fields": {"n": str(n)}}, idempotency_key=f"k{n}")
        dead = bus.consume("stream", {"stream": stream, "consumer": "worker-a", "claim_after": "300ms"})
        taken = await next_batch(dead)
        assert len(taken.items) == 3
        await dead.aclose()  # worker-a dies and never comes back
        await asyncio.sleep(0.4)  # the thing under test: entries idle longer than claim_after may be claimed
        alive = bus.consume("stream", {"stream": stream, "consumer": "worker-b", "claim_after": "300ms"})
        claimed = await next_batch(alive)
        assert keys(claimed) == keys(taken)
        assert claimed.ack is not None
        await claimed.ack()
        await alive.aclose()
    admin = await redis_admin()
    assert (await admin.xpending(stream, "seamflow"))["pending"] == 0
    await admin.aclose()


async def test_redis_start_latest_skips_what_was_there(stream: str) -> None:
    name = f"sf-test-{uuid.uuid4().hex[:8]}"
    async with opened(RedisConnector(), "redis", client_name=name) as bus:
        await bus.call("publish", {"stream": stream, "fields": {"n": "old"}}, idempotency_key="k0")
        feed = bus.consume("stream", {"stream": stream, "start": "latest", "linger": "100ms"})
        waiting = asyncio.ensure_future(anext(feed))
        await _reading(client_name=name)  # "latest" is fixed once the group exists and its read is waiting
        for n in range(3):
            await bus.call("publish", {"stream": stream, "fields": {"n": str(n)}}, idempotency_key=f"k{n + 1}")
        batch = await asyncio.wait_for(waiting, 5)
        fields = [item.body["fields"] for item in batch.items if isinstance(item.body, dict)]
        assert fields == [{"n": "0"}, {"n": "1"}, {"n": "2"}]  # the linger gathered all three
        await feed.aclose()


async def test_redis_feed_survives_a_killed_connection(stream: str) -> None:
    name = f"sf-test-{uuid.uuid4().hex[:8]}"
    async with opened(RedisConnector(), "redis", client_name=name) as bus:
        feed = bus.consume("stream", {"stream": stream})
        waiting = asyncio.ensure_future(anext(feed))
        await _reading(client_name=name)
        admin = await redis_admin()
        clients: str = await admin.execute_command("CLIENT", "LIST")  # type: ignore[no-untyped-call]
        killed = 0
        for line in clients.splitlines():
            fields = dict(part.split("=", 1) for part in line.split(" ") if "=" in part)
            if fields.get("name") == name:
                killed += await admin.execute_command("CLIENT", "KILL", "ID", fields["id"])  # type: ignore[no-untyped-call]
        await admin.aclose()
        assert killed >= 1
        await bus.call("publish", {"stream": stream, "fields": {"n": "1"}}, idempotency_key="k1")
        batch = await asyncio.wait_for(waiting, 5)  # the blocked read reconnected once and went on
        assert [i.body["fields"] for i in batch.items if isinstance(i.body, dict)] == [{"n": "1"}]
        await feed.aclose()


async def test_redis_check_names_wrong_credentials(stream: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with opened(RedisConnector(), "redis") as bus:
        assert (await bus.check()).startswith("connected to Redis ")
    async with opened(RedisConnector(), "redis", url=f"redis://sf_nobody:{PASSWORD}@{HOST}:{REDIS_PORT}/0") as bus:
        with pytest.raises(errors.Permanent, match="credentials refused") as refused:
            await bus.check()
        no_secret_anywhere(caplog, refused.value)
        with pytest.raises(errors.Permanent, match="credentials refused") as publishing:
            await bus.call("publish", {"stream": stream, "fields": {"a": "b"}}, idempotency_key="k")
        no_secret_anywhere(caplog, publishing.value)
    async with opened(RedisConnector(), "redis", port=_free_port()) as bus:
        with pytest.raises(errors.Permanent, match="refused"):
            await bus.check()
        with pytest.raises(errors.Transient):
            await bus.call("publish", {"stream": stream, "fields": {"a": "b"}}, idempotency_key="k")
    async with opened(RedisConnector(), "redis", database=999) as bus:
        with pytest.raises(errors.Permanent, match="database 999 does not exist"):
            await bus.check()
