"""Consumed RabbitMQ messages for the `queue` feed of the `amqp` connector: feed items with their
dedupe keys, and acknowledging (or requeueing) a batch once the engine committed its events."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from seamflow import codec, errors
from seamflow.connectors.base import Item
from seamflow.connectors.brokers.amqp_failures import reason
from seamflow.connectors.brokers.message import content_digest, decode_body
from seamflow.ids import Json

if TYPE_CHECKING:
    from seamflow.connectors.brokers.amqp import QueueInput

__all__ = ["delivery_tag", "item_of", "jsonable", "server_name", "settler"]


def settler(
    channel: AbstractChannel,
    messages: list[AbstractIncomingMessage],
    unsettled: set[int],
    how: str,
    timeout: timedelta,
    where: str,
) -> Any:
    """`ack` or `nack` (requeue) for a batch: one `multiple` frame when the batch is all that is outstanding."""
    tags = [delivery_tag(m) for m in messages]

    async def settle() -> None:
        last = max(tags)
        is_whole = {t for t in unsettled if t <= last} == set(tags)
        try:
            async with asyncio.timeout(timeout.total_seconds()):
                if is_whole:
                    await _settle_one(messages[tags.index(last)], how, multiple=True)
                else:
                    for message in messages:
                        await _settle_one(message, how, multiple=False)
        except TimeoutError:
            raise errors.Transient(f"the broker did not take the {how} in time", where=where) from None
        except (aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPException, ConnectionError) as exc:
            raise errors.Transient(
                f"could not {how} {len(messages)} message(s): {reason(exc)}; the broker will deliver them again",
                where=where,
            ) from None
        finally:
            unsettled.difference_update(tags)

    return settle


async def _settle_one(message: AbstractIncomingMessage, how: str, *, multiple: bool) -> None:
    if how == "ack":
        await message.ack(multiple=multiple)
    else:
        await message.nack(multiple=multiple, requeue=True)


def delivery_tag(message: AbstractIncomingMessage) -> int:
    """The broker's number for a consumed message; it acknowledges the message."""
    tag = message.delivery_tag
    assert tag is not None  # set on every message consumed with acknowledgement
    return tag


def item_of(message: AbstractIncomingMessage, inputs: QueueInput) -> Item:
    """A consumed message as a feed item: its body, the key that deduplicates it, its time."""
    headers = {str(k): jsonable(v) for k, v in (message.headers or {}).items()}
    identity = headers.get(inputs.key_header) if inputs.key_header else None
    if identity is not None and not isinstance(identity, dict | list):
        key = f"{inputs.queue}:{identity}"
    elif message.message_id:
        key = f"{inputs.queue}:{message.message_id}"
    else:
        key = f"{inputs.queue}:sha256:{_content_hash(message, headers)}"
    timestamp = message.timestamp
    if timestamp is not None and timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    body: dict[str, Json] = {
        "queue": inputs.queue,
        "exchange": message.exchange or "",
        "routing_key": message.routing_key or "",
        "message_id": message.message_id,
        "correlation_id": message.correlation_id,
        "content_type": message.content_type,
        "headers": headers,
        **decode_body(message.body, message.content_type, inputs.decode),
    }
    return Item(body=body, key=key, at=timestamp)


def _content_hash(message: AbstractIncomingMessage, headers: dict[str, Json]) -> str:
    """What a redelivery keeps: route, publisher's properties, headers (without the broker's `x-…`) and body."""
    kept = {k: headers[k] for k in sorted(headers) if not k.lower().startswith("x-")}
    stamp = message.timestamp.isoformat() if message.timestamp is not None else ""
    return content_digest(
        message.exchange or "",
        message.routing_key or "",
        message.content_type or "",
        message.correlation_id or "",
        message.app_id or "",
        message.type or "",
        stamp,
        codec.dumps(kept),
        message.body,
    )


def jsonable(value: Any) -> Json:
    """An AMQP field value as JSON: bytes as UTF-8 text (base64 if not text), times as ISO text."""
    if value is None or isinstance(value, bool | int | str | Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def server_name(conn: AbstractConnection) -> str:
    """The broker product and version the connection reached, for `check`."""
    transport = getattr(conn, "transport", None)
    properties = getattr(getattr(transport, "connection", None), "server_properties", None) or {}
    product = jsonable(properties.get("product", "an AMQP broker"))
    version = jsonable(properties.get("version", ""))
    return f"{product} {version}".strip()
