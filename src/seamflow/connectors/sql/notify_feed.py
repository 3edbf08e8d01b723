"""The `notify` consume feed: PostgreSQL `NOTIFY` payloads on a channel, as they arrive.

One psycopg connection in autocommit mode runs `LISTEN channel` and waits. NOTIFY is not
durable: a notification sent while no one listens is gone, and nothing can be acknowledged
or sent again, so `ack` and `nack` do nothing. Pair the feed with the `rows` feed, or use it
only as a wake-up. While no notification comes, the connection is proven alive every
`_KEEPALIVE_S`; a lost connection ends the feed with `errors.Transient`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

from seamflow import codec, errors, ids
from seamflow.connectors.base import Batch, Item
from seamflow.connectors.guard import Outbound
from seamflow.connectors.sql.check import describe_failure
from seamflow.connectors.sql.inputs import NotifyFeedInput
from seamflow.ids import Json

__all__ = ["listen"]

_KEEPALIVE_S = 30.0
_MAX_BATCH = 500

log = logging.getLogger(__name__)


async def listen(
    url: URL, inputs: NotifyFeedInput, connect_within: timedelta, where: str, outbound: Outbound
) -> AsyncIterator[Batch]:
    """Yield the notifications of `inputs.channel` in batches, until cancelled.

    Raises:
        errors.Transient: connecting failed for a reason that may pass, or the connection was lost.
        errors.Permanent: connecting failed for a reason a person must fix (user, database, TLS, DNS).
    """
    conn = await _connect(url, connect_within, where, outbound)
    listener = ids.new_id("listener")  # keys of payloads without key_field differ from those of an earlier listener
    sequence = 0
    try:
        async with asyncio.timeout(connect_within.total_seconds()):
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(inputs.channel)))
        while True:
            received = [n async for n in conn.notifies(timeout=_KEEPALIVE_S, stop_after=1)]
            if not received:
                async with asyncio.timeout(connect_within.total_seconds()):
                    await conn.execute("SELECT 1")  # nothing came: prove the connection still listens
                continue
            received += [n async for n in conn.notifies(timeout=0, stop_after=_MAX_BATCH)]
            items = []
            for note in received:
                sequence += 1
                items.append(_item(note, inputs, f"{listener}:{sequence}"))
            yield Batch(items, ack=_nothing, nack=_nothing)
    except TimeoutError:
        raise errors.Transient("the LISTEN connection did not answer in time", where=where) from None
    except psycopg.Error as exc:
        detail = errors.redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, 200)
        raise errors.Transient(f"the LISTEN connection was lost: {detail}", where=where) from None
    finally:
        await conn.close()


async def _connect(
    url: URL, connect_within: timedelta, where: str, outbound: Outbound
) -> psycopg.AsyncConnection[tuple[object, ...]]:
    args: dict[str, Any] = dict(url.translate_connect_args(username="user", database="dbname"))
    args |= {k: v for k, v in url.query.items() if isinstance(v, str)}
    host = args.get("host")
    if isinstance(host, str) and host and not host.startswith("/"):  # pinned: see `sql.config._pin_connections`
        try:
            addresses = await outbound.resolve_checked(host, int(args.get("port") or 5432), where)
        except OSError:
            raise errors.Permanent(f"the host name {host!r} does not resolve (DNS)", where=where) from None
        args["hostaddr"] = str(addresses[0])
    try:
        return await psycopg.AsyncConnection.connect(
            autocommit=True, connect_timeout=max(1, round(connect_within.total_seconds())), **args
        )
    except psycopg.Error as exc:
        failure = describe_failure(exc, url)
        kind = errors.Permanent if failure.is_settings else errors.Transient  # a server restarting comes back
        raise kind(failure.words, where=where) from None


def _item(note: psycopg.Notify, inputs: NotifyFeedInput, sequence: str) -> Item:
    body = _payload(note.payload)
    if inputs.key_field is not None:
        value = body.get(inputs.key_field) if isinstance(body, dict) else None
        if isinstance(value, str | int) and not isinstance(value, bool):
            return Item(body=body, key=f"{note.channel}:{value}")
        log.warning(
            "notification on channel %s has no field %s with text or an integer; its key is a hash",
            note.channel,
            inputs.key_field,
        )
    digest = hashlib.sha256(f"{note.channel}\0{note.payload}\0{sequence}".encode()).hexdigest()[:32]
    return Item(body=body, key=f"{note.channel}:{digest}")


def _payload(payload: str) -> Json:
    """The payload as JSON if it is JSON, else the text itself."""
    try:
        return codec.parse_untrusted(payload.encode())
    except errors.PayloadInvalid:
        return payload


async def _nothing() -> None:
    """NOTIFY cannot be acknowledged or sent again."""
