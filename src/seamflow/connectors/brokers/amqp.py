"""The `amqp` connector: publishes to and consumes from RabbitMQ (AMQP 0-9-1, through aio-pika).

`publish` sends one persistent message with publisher confirms: it returns only after the
broker has taken responsibility for it, and the step's idempotency key travels as the
message's `message_id`, so a consumer (a Seamflow `queue` feed among them) drops a retried
publish as a duplicate. The `queue` feed consumes with manual acknowledgement: a batch is
acknowledged only when the engine says its events are committed, and a consumer that dies
leaves its unacknowledged messages to be delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from pydantic import BaseModel, Field

from seamflow import errors
from seamflow.connectors.base import Action, Batch, Connection, Feed, parse_config
from seamflow.connectors.brokers.amqp_delivery import delivery_tag, item_of, server_name, settler
from seamflow.connectors.brokers.amqp_failures import PUBLISH_FAILURES, connect_refusal, publish_failure, reason
from seamflow.connectors.brokers.message import Content, Decode, Inbox, with_deadline
from seamflow.connectors.brokers.settings import BrokerConfig, Endpoint, FeedInput, resolve_endpoint, validated
from seamflow.ids import Json

__all__ = ["AmqpConfig", "AmqpConnector", "PublishInput", "QueueInput"]

_MAX_PREFETCH = 65_535


class AmqpConfig(BrokerConfig):
    """The settings of an `amqp` connection in `connections.yaml`."""

    virtual_host: str | None = None
    """The RabbitMQ virtual host; by default the URL's path, else `/`."""
    client_name: str = Field("seamflow", min_length=1, max_length=200)
    """Shown as the connection's name in the RabbitMQ management UI (`… publisher`, `… consumer`)."""


class PublishInput(Content):
    """Inputs of `publish`: where to, the body (`json` or `text`) and its properties."""

    exchange: str = ""
    """The exchange; `""` is the default exchange, which routes to the queue named by `routing_key`."""
    routing_key: str = Field(max_length=255)
    headers: dict[str, str | int | bool | Decimal | None] = Field(default_factory=dict)
    """Message headers (an AMQP field table)."""
    persistent: bool = True
    """Delivery mode 2: a durable queue keeps the message across a broker restart."""
    mandatory: bool = True
    """Refuse a message that no queue receives (a Permanent error) instead of dropping it silently."""
    content_type: str | None = None
    """By default `application/json` for `json` and `text/plain; charset=utf-8` for `text`."""


class QueueInput(FeedInput):
    """Settings of the `queue` feed (a `consume` trigger's `with:`)."""

    queue: str = Field(min_length=1, max_length=255)
    declare: bool = False
    """Declare the queue (durable) if it does not exist; otherwise a missing queue is an error."""
    decode: Decode = "auto"
    """`auto`: JSON when the message's content type says JSON, else text; or always `json` / `text`."""
    key_header: str | None = None
    """A header whose value is the message's identity, used before `message_id`."""


_PUBLISH = Action(
    "publish",
    PublishInput,
    "Publish one message with publisher confirms; returns {message_id, exchange, routing_key}. The idempotency"
    " key is the message_id, so a consumer deduplicates a retried publish (RabbitMQ itself keeps both).",
    is_idempotent=False,
)
_QUEUE = Feed(
    "queue",
    QueueInput,
    "consume",
    "Messages of a queue, acknowledged after their events are committed; key: the message_id (else a hash).",
)


class AmqpConnector:
    """Publishes to RabbitMQ exchanges (`publish`) and consumes queues (the `queue` feed)."""

    kind: ClassVar[str] = "amqp"
    Config: ClassVar[type[BaseModel]] = AmqpConfig
    actions: ClassVar[Mapping[str, Action]] = {"publish": _PUBLISH}
    feeds: ClassVar[Mapping[str, Feed]] = {"queue": _QUEUE}

    def __init__(self) -> None:
        self._name = "amqp"
        self._endpoint: Endpoint | None = None
        self._vhost = "/"
        self._client_name = "seamflow"
        self._timeout = timedelta(seconds=30)
        self._publisher: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._opening = asyncio.Lock()
        self._consumers: set[AbstractConnection] = set()

    async def open(self, connection: Connection) -> None:
        """Validate the settings and remember the password; no network connection is made yet.

        Raises:
            errors.InvalidInput: the config is wrong; names the connection and field, never the URL.
        """
        config = parse_config(AmqpConfig, connection)
        endpoint = resolve_endpoint(config, connection, ("amqp", "amqps"), (5672, 5671))
        await self.close()
        self._name, self._endpoint, self._timeout = connection.name, endpoint, connection.timeout
        self._vhost = config.virtual_host or endpoint.path or "/"
        self._client_name = config.client_name

    async def close(self) -> None:
        """Close the publishing connection and every consumer's connection."""
        publisher, self._publisher, self._channel = self._publisher, None, None
        for conn in [publisher, *self._consumers]:
            if conn is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self._timeout.total_seconds()):
                        await conn.close()
        self._consumers.clear()

    async def check(self) -> str:
        """Connect, log in and open the virtual host; return what was reached.

        Raises:
            errors.Permanent: refused connection, unknown host, untrusted certificate, refused
                login or a virtual host that does not exist (or may not be used).
            errors.Transient: no answer in time.
        """
        where = f"{self._name}.check"
        endpoint = self._opened(where)
        conn = await self._connect(where, "check", is_check=True)
        try:
            server = server_name(conn)
        finally:
            with contextlib.suppress(Exception):
                await conn.close()
        user = endpoint.username or "guest"
        return f"connected to {server} at {endpoint.address}, virtual host {self._vhost!r}, as {user}"

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Publish one message (`publish`) and wait for the broker's confirm.

        Raises:
            errors.Transient: the broker is unreachable, did not confirm in time, or refused the
                message (basic.nack, e.g. a full queue); retried with the same message_id.
            errors.Permanent: bad inputs, wrong credentials, an unknown exchange, a message no
                queue receives (`mandatory`), or no permission to publish.
        """
        where = f"{self._name}.{action}"
        if action != "publish":
            raise errors.Permanent(f"unknown action {errors.redact(action)}; expected publish", where=where)
        inputs = validated(PublishInput, params, where)
        message = _message(inputs, idempotency_key, where)
        channel = await self._publishing_channel(where)
        target = f"exchange {inputs.exchange!r}" if inputs.exchange else "the default exchange"
        try:
            async with asyncio.timeout(self._timeout.total_seconds()):
                exchange = (
                    channel.default_exchange
                    if inputs.exchange == ""
                    else await channel.get_exchange(inputs.exchange, ensure=False)
                )
                await exchange.publish(message, routing_key=inputs.routing_key, mandatory=inputs.mandatory)
        except PUBLISH_FAILURES as exc:
            if isinstance(exc, aio_pika.exceptions.PublishError):
                target = f"{target} with routing key {inputs.routing_key!r}"
            raise publish_failure(exc, target, self._vhost, self._timeout, where) from None
        return {"message_id": idempotency_key, "exchange": inputs.exchange, "routing_key": inputs.routing_key}

    async def consume(self, feed: str, params: Json) -> AsyncGenerator[Batch, None]:
        """Yield batches of a queue's messages; `ack` acknowledges them, `nack` requeues them.

        A lost connection is raised as `errors.Transient` out of the iterator (the engine starts
        the feed again with backoff); the broker requeues every message that was not acknowledged.

        Raises:
            errors.Transient: the broker is unreachable or the connection was lost.
            errors.Permanent: bad settings, wrong credentials, or a queue that does not exist.
        """
        where = f"{self._name}.{feed}"
        if feed != "queue":
            raise errors.Permanent(f"unknown feed {errors.redact(feed)}; expected queue", where=where)
        inputs = validated(QueueInput, params, where)
        self._opened(where)
        conn = await self._connect(where, "consumer")
        self._consumers.add(conn)
        inbox: Inbox[AbstractIncomingMessage] = Inbox()
        unsettled: set[int] = set()

        def lost(_sender: object, exc: BaseException | None = None) -> None:
            why = f": {reason(exc)}" if exc is not None else ""
            inbox.fail(errors.Transient(f"the connection to the broker was closed{why}", where=where))

        async def received(message: AbstractIncomingMessage) -> None:
            unsettled.add(delivery_tag(message))
            inbox.put(message)

        try:
            channel = await self._open_queue(conn, inputs, where, lost, received)
            while True:
                messages = await inbox.take(inputs.batch, inputs.linger)
                items = [item_of(message, inputs) for message in messages]
                yield Batch(
                    items=items,
                    ack=settler(channel, messages, unsettled, "ack", self._timeout, where),
                    nack=settler(channel, messages, unsettled, "nack", self._timeout, where),
                )
        finally:
            self._consumers.discard(conn)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._timeout.total_seconds()):
                    await conn.close()  # every unacknowledged message goes back to the queue

    async def _open_queue(
        self, conn: AbstractConnection, inputs: QueueInput, where: str, lost: Any, received: Any
    ) -> AbstractChannel:
        try:
            async with asyncio.timeout(self._timeout.total_seconds()):
                channel = await conn.channel(publisher_confirms=False)
                channel.close_callbacks.add(lost)
                conn.close_callbacks.add(lost)
                await channel.set_qos(prefetch_count=min(_MAX_PREFETCH, 2 * inputs.batch))
                queue = await channel.declare_queue(
                    inputs.queue, durable=True, passive=not inputs.declare, auto_delete=False
                )
                await queue.consume(received, no_ack=False)
        except TimeoutError:
            raise errors.Transient(
                f"the broker did not answer within {self._timeout.total_seconds():g} s", where=where
            ) from None
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise errors.Permanent(
                f"queue {inputs.queue!r} does not exist in virtual host {self._vhost!r};"
                " expected a declared queue, or declare: true",
                where=where,
            ) from None
        except aiormq.exceptions.ChannelAccessRefused:
            raise errors.Permanent(
                f"user may not consume queue {inputs.queue!r} in virtual host {self._vhost!r} (ACCESS_REFUSED)",
                where=where,
            ) from None
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise errors.Permanent(
                f"queue {inputs.queue!r} exists with other settings ({reason(exc)}); expected a durable queue",
                where=where,
            ) from None
        except (aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPException, ConnectionError) as exc:
            raise errors.Transient(f"opening queue {inputs.queue!r} failed: {reason(exc)}", where=where) from None
        return channel

    async def _publishing_channel(self, where: str) -> AbstractChannel:
        """The shared channel with publisher confirms; (re)opened when closed, e.g. after a 404."""
        channel = self._channel
        if channel is not None and not channel.is_closed:
            return channel
        async with self._opening:
            if self._channel is not None and not self._channel.is_closed:
                return self._channel
            if self._publisher is None or self._publisher.is_closed:
                self._publisher = await self._connect(where, "publisher")
            try:
                async with asyncio.timeout(self._timeout.total_seconds()):
                    self._channel = await self._publisher.channel(publisher_confirms=True, on_return_raises=True)
            except TimeoutError:
                raise errors.Transient("the broker did not open a channel in time", where=where) from None
            except (aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPException, ConnectionError) as exc:
                self._publisher = None
                raise errors.Transient(f"opening a channel failed: {reason(exc)}", where=where) from None
            return self._channel

    def _opened(self, where: str) -> Endpoint:
        if self._endpoint is None:
            raise errors.SeamflowError(f"{where}: connection not open", code="connector.closed")
        return self._endpoint

    async def _connect(self, where: str, purpose: str, *, is_check: bool = False) -> AbstractConnection:
        """Open a connection and log in; refusals are Transient for work, Permanent for `check`."""
        endpoint = self._opened(where)
        timeout_s = self._timeout.total_seconds()
        connecting = aio_pika.connect(
            host=endpoint.host,
            port=endpoint.port,
            login=endpoint.username or "guest",
            password=endpoint.password if endpoint.password is not None else "guest",
            virtualhost=self._vhost,
            ssl=endpoint.tls is not None,
            ssl_context=endpoint.tls,
            timeout=timeout_s,
            client_properties={"connection_name": f"{self._client_name} {purpose}"},
        )
        try:
            return await with_deadline(
                connecting,
                self._timeout,
                lambda: errors.Transient(f"{endpoint.address} did not answer within {timeout_s:g} s", where=where),
            )
        except errors.ConnectorError:
            raise
        except Exception as exc:  # aiormq raises many kinds; each is put in words below
            raise connect_refusal(exc, endpoint, self._vhost, where, is_check=is_check) from None


def _message(inputs: PublishInput, idempotency_key: str, where: str) -> aio_pika.Message:
    """The persistent (or not) message to publish; the idempotency key is its `message_id`."""
    try:
        body, content_type = inputs.encoded()
    except errors.PayloadInvalid as exc:
        raise errors.Permanent(f"with.json: {exc.message}", where=where) from None
    return aio_pika.Message(
        body,
        headers=dict(inputs.headers),
        content_type=inputs.content_type or content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT if inputs.persistent else aio_pika.DeliveryMode.NOT_PERSISTENT,
        message_id=idempotency_key,
        app_id="seamflow",
    )
