"""The `redis` connector: appends to and consumes Redis streams (through redis.asyncio).

`publish` is idempotent: one Lua script (atomic, as MULTI/EXEC would be, but able to decide)
looks up the step's idempotency key, and only when it is new runs XADD and records the key
with the new entry id (`SET … EX dedupe_ttl`). A retried publish with the same key adds
nothing and returns the first entry's id.

The `stream` feed reads through a consumer group (created with MKSTREAM if missing). It
first re-reads this consumer's own pending entries (ID `0`: delivered before, never
acknowledged, e.g. because the process died), then claims entries that other consumers left
pending longer than `claim_after` (XAUTOCLAIM), then reads new ones (`>`). A batch is
acknowledged with XACK after the engine committed its events; `nack` leaves it pending and
the next batch re-reads it. Each item's key is `<stream>:<entry id>`, the same on every delivery.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import redis.asyncio as aioredis
import redis.exceptions
from pydantic import BaseModel, Field
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from seamflow import codec, errors
from seamflow.connectors.base import Action, Batch, Connection, Feed, Item, parse_config
from seamflow.connectors.brokers.settings import (
    STRICT,
    BrokerConfig,
    Duration,
    Endpoint,
    FeedInput,
    invalid_config,
    resolve_endpoint,
    validated,
)
from seamflow.ids import Json

__all__ = ["PublishInput", "RedisConfig", "RedisConnector", "StreamInput"]

_PUBLISH_ONCE = """
local first = redis.call('GET', KEYS[2])
if first then return {0, first} end
local command = {'XADD', KEYS[1]}
if ARGV[2] ~= '' then
  table.insert(command, 'MAXLEN')
  if ARGV[3] == '1' then table.insert(command, '~') end
  table.insert(command, ARGV[2])
end
table.insert(command, '*')
for i = 4, #ARGV do table.insert(command, ARGV[i]) end
local id = redis.call(unpack(command))
redis.call('SET', KEYS[2], id, 'EX', ARGV[1])
return {1, id}
"""
"""KEYS: stream, idempotency record; ARGV: ttl seconds, maxlen ('' for none), '1' for `~`, field, value, …"""

_KEY_PREFIX = "seamflow:published"
_BLOCK_MS = 1000


class RedisConfig(BrokerConfig):
    """The settings of a `redis` connection in `connections.yaml`."""

    database: int | None = Field(None, ge=0)
    """The database number; by default the URL's path, else 0."""
    client_name: str = Field("seamflow", pattern=r"^\S+$")
    """Shown by `CLIENT LIST`."""
    consumer: str = Field("seamflow", min_length=1)
    """The consumer name in consumer groups; keep it fixed so a restarted feed re-reads its pending entries."""
    dedupe_ttl: Duration = Field(timedelta(days=7), ge=timedelta(minutes=1))
    """How long `publish` remembers an idempotency key (longer than any retry of a step)."""


class PublishInput(BaseModel):
    """Inputs of `publish`: a stream and the fields of the entry to append."""

    model_config = STRICT
    stream: str = Field(min_length=1)
    fields: dict[str, Any] = Field(min_length=1)
    """Field → value; text is stored as is, other values as JSON text (`19.90`, `true`, `{"a":1}`)."""
    maxlen: int | None = Field(None, ge=1)
    """Trim the stream to about this many entries (`MAXLEN ~`); exactly this many with `approximate: false`."""
    approximate: bool = True


class StreamInput(FeedInput):
    """Settings of the `stream` feed (a `consume` trigger's `with:`)."""

    stream: str = Field(min_length=1)
    group: str = Field("seamflow", min_length=1)
    """The consumer group; created (with the stream) if missing."""
    consumer: str | None = Field(None, min_length=1)
    """This consumer's name in the group; by default the connection's `consumer`."""
    start: Literal["earliest", "latest"] = "earliest"
    """Where a new group starts: every entry already in the stream, or only entries added later."""
    claim_after: Duration | None = Field(timedelta(minutes=5), gt=timedelta(0))
    """Take over entries another consumer has left unacknowledged this long (null: never)."""


_PUBLISH = Action(
    "publish",
    PublishInput,
    "Append an entry to a stream (XADD); returns {stream, id, duplicate}. Idempotent: the key is recorded with"
    " SET in the same Lua script, so a retry with the same key adds nothing and returns the first id.",
    is_idempotent=True,
)
_STREAM = Feed(
    "stream",
    StreamInput,
    "consume",
    "Entries of a stream read through a consumer group, XACKed after their events are committed;"
    " key: <stream>:<entry id>.",
)


class RedisConnector:
    """Appends to Redis streams (`publish`) and consumes them through consumer groups (the `stream` feed)."""

    kind: ClassVar[str] = "redis"
    Config: ClassVar[type[BaseModel]] = RedisConfig
    actions: ClassVar[Mapping[str, Action]] = {"publish": _PUBLISH}
    feeds: ClassVar[Mapping[str, Feed]] = {"stream": _STREAM}

    def __init__(self) -> None:
        self._name = "redis"
        self._endpoint: Endpoint | None = None
        self._config = RedisConfig.model_validate({})
        self._database = 0
        self._timeout = timedelta(seconds=30)
        self._client: aioredis.Redis | None = None
        self._script: Any = None

    async def open(self, connection: Connection) -> None:
        """Validate the settings, remember the password and build the client; no connection is made yet.

        Raises:
            errors.InvalidInput: the config is wrong; names the connection and field, never the URL.
        """
        config = parse_config(RedisConfig, connection)
        endpoint = resolve_endpoint(config, connection, ("redis", "rediss"), (6379, 6379))
        database = config.database
        if database is None:
            if endpoint.path and not endpoint.path.isdigit():
                raise invalid_config(connection, "url path is not a database number; expected e.g. redis://host:6379/0")
            database = int(endpoint.path or 0)
        await self.close()
        self._name, self._endpoint, self._config, self._timeout = connection.name, endpoint, config, connection.timeout
        self._database = database
        timeout_s = connection.timeout.total_seconds()
        tls: dict[str, Any] = {}
        if endpoint.tls is not None:
            tls = {
                "ssl": True,
                "ssl_ca_certs": config.ca_file,
                "ssl_cert_reqs": "required" if config.verify_tls else "none",
                "ssl_check_hostname": config.verify_tls,
            }
        self._client = aioredis.Redis(
            host=endpoint.host,
            port=endpoint.port,
            db=database,
            username=endpoint.username,
            password=endpoint.password,
            socket_timeout=max(timeout_s, 2 * _BLOCK_MS / 1000),
            socket_connect_timeout=timeout_s,
            client_name=config.client_name,
            decode_responses=False,
            retry=Retry(NoBackoff(), 1),  # one quick retry of a dropped pooled connection; the engine retries the rest
            **tls,
        )
        self._script = self._client.register_script(_PUBLISH_ONCE)

    async def close(self) -> None:
        """Close the client's connection pool."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def check(self) -> str:
        """Connect, log in and select the database; return the server's version.

        Raises:
            errors.Permanent: refused connection, unknown host, refused login or a database that does not exist.
            errors.Transient: no answer in time.
        """
        where = f"{self._name}.check"
        client, endpoint = self._opened(where)
        async with self._talking(where, is_check=True):
            info = await client.info("server")
        version = info.get("redis_version", "?") if isinstance(info, dict) else "?"
        user = errors.redact(endpoint.username).strip("'") if endpoint.username else "default"
        return f"connected to Redis {_text(version)} at {endpoint.address}, database {self._database}, as {user}"

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Append one entry to a stream (`publish`), once per idempotency key.

        Raises:
            errors.Transient: Redis is unreachable, timed out or is loading.
            errors.Permanent: bad inputs, refused credentials, or a key that is not a stream.
        """
        where = f"{self._name}.{action}"
        if action != "publish":
            raise errors.Permanent(f"unknown action {errors.redact(action)}; expected publish", where=where)
        inputs = validated(PublishInput, params, where)
        self._opened(where)
        pairs: list[str] = []
        for name, value in inputs.fields.items():
            try:
                pairs += [name, value if isinstance(value, str) else codec.dumps_text(value)]
            except (errors.PayloadInvalid, TypeError) as exc:
                problem = exc.message if isinstance(exc, errors.PayloadInvalid) else "not a JSON value"
                raise errors.Permanent(f"with.fields.{name}: {problem}", where=where) from None
        record = f"{_KEY_PREFIX}:{{{inputs.stream}}}:{idempotency_key}"
        args = [
            int(self._config.dedupe_ttl.total_seconds()),
            "" if inputs.maxlen is None else inputs.maxlen,
            "1" if inputs.approximate else "0",
            *pairs,
        ]
        async with self._talking(where):
            is_new, entry = await self._script(keys=[inputs.stream, record], args=args)
        return {"stream": inputs.stream, "id": _text(entry), "duplicate": not bool(is_new)}

    async def consume(self, feed: str, params: Json) -> AsyncGenerator[Batch, None]:
        """Yield batches of a stream's entries through a consumer group; `ack` is XACK.

        Order: this consumer's pending entries, entries claimed from consumers idle longer
        than `claim_after`, then new entries. A lost connection is raised as `errors.Transient`
        (the engine starts the feed again with backoff); the entries stay pending and are re-read.

        Raises:
            errors.Transient: Redis is unreachable or timed out.
            errors.Permanent: bad settings, refused credentials, or a key that is not a stream.
        """
        where = f"{self._name}.{feed}"
        if feed != "stream":
            raise errors.Permanent(f"unknown feed {errors.redact(feed)}; expected stream", where=where)
        inputs = validated(StreamInput, params, where)
        client, _ = self._opened(where)
        reader = _Reader(client, inputs, inputs.consumer or self._config.consumer)
        loop = asyncio.get_running_loop()
        async with self._talking(where):
            await reader.create_group()
        block_ms = max(10, min(_BLOCK_MS, int(self._timeout.total_seconds() * 500)))
        next_claim = loop.time()
        while True:
            entries: list[tuple[str, dict[bytes, bytes]]] = []
            async with self._talking(where):
                if reader.pending_from is not None:
                    entries = await reader.read_pending()
                if not entries and inputs.claim_after is not None and loop.time() >= next_claim:
                    entries, is_done = await reader.claim(inputs.claim_after)
                    if is_done:
                        next_claim = loop.time() + _claim_interval(inputs.claim_after)
                if not entries and reader.pending_from is None:
                    entries = await reader.read_new(inputs.batch, block_ms)
                    if entries and len(entries) < inputs.batch and inputs.linger > timedelta(0):
                        await asyncio.sleep(inputs.linger.total_seconds())
                        entries += await reader.read_new(inputs.batch - len(entries), None)
            if not entries:
                continue
            ids = [entry_id for entry_id, _ in entries]
            yield Batch(
                items=[_item(inputs.stream, entry_id, fields) for entry_id, fields in entries],
                ack=self._acknowledger(reader, ids, where),
                nack=reader.rewind,
            )

    def _acknowledger(self, reader: _Reader, ids: list[str], where: str) -> Any:
        async def ack() -> None:
            async with self._talking(where):
                await reader.acknowledge(ids)

        return ack

    def _opened(self, where: str) -> tuple[aioredis.Redis, Endpoint]:
        if self._client is None or self._endpoint is None:
            raise errors.SeamflowError(f"{where}: connection not open", code="connector.closed")
        return self._client, self._endpoint

    @contextlib.asynccontextmanager
    async def _talking(self, where: str, *, is_check: bool = False) -> AsyncIterator[None]:
        """Bound the work by the connection's timeout and put every Redis failure in words."""
        endpoint = self._endpoint
        address = endpoint.address if endpoint is not None else "redis"
        timeout_s = self._timeout.total_seconds() + 2 * _BLOCK_MS / 1000
        try:
            async with asyncio.timeout(timeout_s):
                yield
        except (TimeoutError, redis.exceptions.TimeoutError):
            raise errors.Transient(f"{address} did not answer within {timeout_s:g} s", where=where) from None
        except redis.exceptions.AuthenticationError:
            user = errors.redact(endpoint.username) if endpoint is not None and endpoint.username else "default"
            raise errors.Permanent(
                f"credentials refused: {address} refused the login of user {user} (WRONGPASS);"
                " expected a valid username and password",
                where=where,
            ) from None
        except redis.exceptions.ConnectionError as exc:
            text = _text(str(exc))
            if "Name or service not known" in text or "nodename nor servname" in text:
                raise errors.Permanent(
                    f"the host name {endpoint.host if endpoint else '?'!r} does not resolve (DNS)", where=where
                ) from None
            if ("refused" in text.lower() or "Error 111 " in text) and is_check:
                raise errors.Permanent(
                    f"the connection to {address} was refused (is Redis listening on that port?)", where=where
                ) from None
            if "DB index is out of range" in text:
                raise errors.Permanent(f"database {self._database} does not exist on {address}", where=where) from None
            raise errors.Transient(f"connection to {address} failed: {text}", where=where) from None
        except redis.exceptions.ResponseError as exc:
            text = _text(str(exc))
            if text.startswith(("LOADING", "BUSY ", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN")):
                raise errors.Transient(f"{address} answered: {text}", where=where) from None
            if "DB index is out of range" in text:
                raise errors.Permanent(f"database {self._database} does not exist on {address}", where=where) from None
            raise errors.Permanent(f"{address} answered: {text}", where=where) from None
        except redis.exceptions.RedisError as exc:
            raise errors.Transient(f"{address}: {type(exc).__name__}: {_text(str(exc))}", where=where) from None


class _Reader:
    """One consumer's reads of one stream through its group, with where pending re-reading stands."""

    def __init__(self, client: aioredis.Redis, inputs: StreamInput, consumer: str) -> None:
        self._client = client
        self.stream, self.group, self.consumer = inputs.stream, inputs.group, consumer
        self._start = "0" if inputs.start == "earliest" else "$"
        self._batch = inputs.batch
        self.pending_from: str | None = "0"
        """Re-read this consumer's pending entries after this id; None once they are all handed over."""
        self._claim_cursor = "0-0"

    async def create_group(self) -> None:
        try:
            await self._client.xgroup_create(self.stream, self.group, id=self._start, mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_pending(self) -> list[tuple[str, dict[bytes, bytes]]]:
        """The next of this consumer's pending entries; entries deleted from the stream are acknowledged."""
        assert self.pending_from is not None
        answer = await self._client.xreadgroup(
            self.group, self.consumer, {self.stream: self.pending_from}, count=self._batch
        )
        entries = _entries(answer)
        if not entries:
            self.pending_from = None
            return []
        self.pending_from = entries[-1][0]
        return await self._drop_deleted(entries)

    async def claim(self, idle: timedelta) -> tuple[list[tuple[str, dict[bytes, bytes]]], bool]:
        """Claim entries pending longer than `idle`; True when the group's pending list has been walked."""
        answer = await self._client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=int(idle.total_seconds() * 1000),
            start_id=self._claim_cursor,
            count=self._batch,
        )
        cursor = _text(answer[0])
        self._claim_cursor = cursor
        entries = [(_text(entry_id), fields) for entry_id, fields in answer[1] if fields is not None]
        return entries, cursor == "0-0"

    async def read_new(self, count: int, block_ms: int | None) -> list[tuple[str, dict[bytes, bytes]]]:
        answer = await self._client.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        return _entries(answer)

    async def acknowledge(self, ids: list[str]) -> None:
        await self._client.xack(self.stream, self.group, *ids)

    async def rewind(self) -> None:
        """`nack`: the entries stay pending; the next batch re-reads this consumer's pending entries."""
        self.pending_from = "0"

    async def _drop_deleted(self, entries: list[tuple[str, Any]]) -> list[tuple[str, dict[bytes, bytes]]]:
        gone = [entry_id for entry_id, fields in entries if not fields]
        if gone:  # trimmed or deleted from the stream after delivery: nothing left to hand over
            await self._client.xack(self.stream, self.group, *gone)
        return [(entry_id, fields) for entry_id, fields in entries if fields]


def _entries(answer: Any) -> list[tuple[str, dict[bytes, bytes]]]:
    """XREADGROUP's answer for one stream (RESP2 list or RESP3 map) as (id, fields) pairs."""
    if not answer:
        return []
    streams = answer.values() if isinstance(answer, dict) else [pair[1] for pair in answer]
    found: list[tuple[str, dict[bytes, bytes]]] = []
    for entries in streams:
        for entry_id, fields in entries[0] if entries and isinstance(entries[0], list) else entries:
            found.append((_text(entry_id), fields or {}))
    return found


def _item(stream: str, entry_id: str, fields: dict[bytes, bytes]) -> Item:
    text: dict[str, Json] = {}
    binary: dict[str, Json] = {}
    for name, value in fields.items():
        try:
            text[_text(name)] = value.decode("utf-8")
        except UnicodeDecodeError:
            binary[_text(name)] = base64.b64encode(value).decode("ascii")
    body: dict[str, Json] = {"stream": stream, "id": entry_id, "fields": text}
    if binary:
        body["fields_base64"] = binary
    millis = int(entry_id.split("-", 1)[0])
    return Item(body=body, key=f"{stream}:{entry_id}", at=datetime.fromtimestamp(millis / 1000, UTC))


def _claim_interval(claim_after: timedelta) -> float:
    """Look for abandoned entries every half `claim_after`, at least every second, at most every minute."""
    return max(1.0, min(claim_after.total_seconds() / 2, 60.0))


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
