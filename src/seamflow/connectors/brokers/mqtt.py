"""The `mqtt` connector: publishes to and consumes from an MQTT broker (3.1.1 or 5, through aiomqtt/paho).

The `topic` feed subscribes with QoS 1 in a persistent session (a fixed client id,
`clean_session=False` / `clean_start=False` with a session expiry) and acknowledges by hand
(paho's `manual_ack`): a PUBACK is sent only when the engine says the batch's events are
committed. A consumer that dies leaves its messages unacknowledged, and the broker sends them
again when the same client id connects next. QoS 2 is not offered for consuming: paho answers
PUBREC before the message is handed over and keeps no session state on disk, so a crash at
the wrong moment would lose the message; QoS 1 plus the dedupe key gives exactly one run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping
from datetime import timedelta
from typing import Any, ClassVar, Literal

import aiomqtt
import paho.mqtt.client as paho
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel, Field, field_validator

from seamflow import codec, errors
from seamflow.connectors.base import Action, Batch, Connection, Feed, Item, parse_config
from seamflow.connectors.brokers.message import Content, Decode, Inbox, content_digest, decode_body
from seamflow.connectors.brokers.settings import (
    BrokerConfig,
    Duration,
    Endpoint,
    FeedInput,
    resolve_endpoint,
    validated,
)
from seamflow.ids import Json

__all__ = ["MqttConfig", "MqttConnector", "PublishInput", "TopicInput"]

_CREDENTIALS_REFUSED = {4, 5, 134, 135}
"""CONNACK codes: bad user name or password / not authorized (3.1.1: 4, 5; MQTT 5: 134, 135)."""


class MqttConfig(BrokerConfig):
    """The settings of an `mqtt` connection in `connections.yaml`."""

    protocol: Literal["3.1.1", "5"] = "5"
    """MQTT 5 carries the idempotency key as a user property; 3.1.1 cannot."""
    client_id: str = Field("seamflow", min_length=1, max_length=64)
    """Prefix of the client ids: a consumer is `<client_id>-<hash of its subscription>` unless its feed names one."""
    keepalive: Duration = Field(timedelta(seconds=60), ge=timedelta(seconds=5), le=timedelta(hours=18))
    session_expiry: Duration = Field(timedelta(days=7), ge=timedelta(minutes=1), le=timedelta(days=49))
    """MQTT 5: how long the broker keeps an absent consumer's session and queued messages."""


class PublishInput(Content):
    """Inputs of `publish`: the topic, the payload (`json` or `text`), QoS and retain."""

    topic: str = Field(min_length=1, max_length=65_535)
    qos: Literal[0, 1, 2] = 1
    """0: at most once; 1: the broker acknowledged it (the default); 2: exactly once to the broker."""
    retain: bool = False
    """The broker keeps the message and sends it to every new subscriber."""
    user_properties: dict[str, str] = Field(default_factory=dict)
    """MQTT 5 user properties, sent with `message_id` (the idempotency key)."""

    @field_validator("topic")
    @classmethod
    def _no_wildcards(cls, topic: str) -> str:
        if "+" in topic or "#" in topic:
            raise ValueError("a topic to publish to cannot hold the wildcards + or #")
        return topic


class TopicInput(FeedInput):
    """Settings of the `topic` feed (a `consume` trigger's `with:`)."""

    topic: str = Field(min_length=1, max_length=65_535)
    """A topic filter; `+` and `#` wildcards are allowed."""
    group: str | None = Field(None, pattern=r"^[^/+#]+$")
    """Share the subscription among consumers (`$share/<group>/<topic>`): each message goes to one of them."""
    client_id: str | None = Field(None, min_length=1, max_length=64)
    """The persistent session's client id; by default derived from the connection's `client_id` and the topic."""
    decode: Decode = "auto"
    key_field: str | None = Field(None, pattern=r"^[^.]+(\.[^.]+)*$")
    """A field of the JSON payload (dotted path, e.g. `order.id`) that identifies the message."""
    key_property: str = "message_id"
    """The MQTT 5 user property that identifies the message (`publish` sets `message_id`)."""


_PUBLISH = Action(
    "publish",
    PublishInput,
    "Publish one message; returns {topic, qos, message_id}. With MQTT 5 the idempotency key travels as the user"
    " property message_id so a consumer deduplicates a retried publish (the broker itself keeps both).",
    is_idempotent=False,
)
_TOPIC = Feed(
    "topic",
    TopicInput,
    "consume",
    "Messages of a topic filter (QoS 1, persistent session, acknowledged after their events are committed).",
)


class MqttConnector:
    """Publishes to MQTT topics (`publish`) and consumes topic filters (the `topic` feed)."""

    kind: ClassVar[str] = "mqtt"
    Config: ClassVar[type[BaseModel]] = MqttConfig
    actions: ClassVar[Mapping[str, Action]] = {"publish": _PUBLISH}
    feeds: ClassVar[Mapping[str, Feed]] = {"topic": _TOPIC}

    def __init__(self) -> None:
        self._name = "mqtt"
        self._endpoint: Endpoint | None = None
        self._config = MqttConfig.model_validate({})
        self._timeout = timedelta(seconds=30)
        self._publisher: aiomqtt.Client | None = None
        self._opening = asyncio.Lock()
        self._consumers: set[aiomqtt.Client] = set()

    async def open(self, connection: Connection) -> None:
        """Validate the settings and remember the password; no network connection is made yet.

        Raises:
            errors.InvalidInput: the config is wrong; names the connection and field, never the URL.
        """
        config = parse_config(MqttConfig, connection)
        endpoint = resolve_endpoint(config, connection, ("mqtt", "mqtts"), (1883, 8883))
        await self.close()
        self._name, self._endpoint, self._config, self._timeout = connection.name, endpoint, config, connection.timeout

    async def close(self) -> None:
        """Disconnect the publisher and every consumer (their sessions stay on the broker)."""
        publisher, self._publisher = self._publisher, None
        for client in [publisher, *self._consumers]:
            if client is not None:
                await self._disconnect(client)
        self._consumers.clear()

    async def check(self) -> str:
        """Connect and log in, then disconnect; return what was reached.

        Raises:
            errors.Permanent: refused connection, unknown host, untrusted certificate or refused login.
            errors.Transient: no answer in time.
        """
        where = f"{self._name}.check"
        endpoint = self._opened(where)
        client = self._client(identifier=None, is_persistent=False)
        await self._connect(client, where, is_check=True)
        await self._disconnect(client)
        user = endpoint.username or "anonymous"
        return f"connected to {endpoint.address} (MQTT {self._config.protocol}) as {errors.redact(user).strip(chr(39))}"

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Publish one message (`publish`); with QoS 1 or 2, wait for the broker's acknowledgement.

        Raises:
            errors.Transient: the broker is unreachable or did not acknowledge in time.
            errors.Permanent: bad inputs or refused credentials.
        """
        where = f"{self._name}.{action}"
        if action != "publish":
            raise errors.Permanent(f"unknown action {errors.redact(action)}; expected publish", where=where)
        inputs = validated(PublishInput, params, where)
        try:
            payload, content_type = inputs.encoded()
        except errors.PayloadInvalid as exc:
            raise errors.Permanent(f"with.json: {exc.message}", where=where) from None
        is_v5 = self._config.protocol == "5"
        properties = None
        if is_v5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.ContentType = content_type
            properties.UserProperty = [*inputs.user_properties.items(), ("message_id", idempotency_key)]
        elif inputs.user_properties:
            raise errors.Permanent("with.user_properties: needs MQTT 5; the connection uses 3.1.1", where=where)
        client = await self._publishing_client(where)
        timeout_s = self._timeout.total_seconds()
        try:
            async with asyncio.timeout(timeout_s):
                await client.publish(
                    inputs.topic,
                    payload,
                    qos=inputs.qos,
                    retain=inputs.retain,
                    properties=properties,
                    timeout=timeout_s,
                )
        except (TimeoutError, aiomqtt.MqttError) as exc:
            await self._drop_publisher(client)
            problem = "no acknowledgement in time" if isinstance(exc, TimeoutError) else _reason(exc)
            raise errors.Transient(f"publishing to {inputs.topic!r} failed: {problem}", where=where) from None
        return {"topic": inputs.topic, "qos": inputs.qos, "message_id": idempotency_key if is_v5 else None}

    async def consume(self, feed: str, params: Json) -> AsyncGenerator[Batch, None]:
        """Yield batches of a topic filter's messages; `ack` sends their PUBACKs, `nack` reconnects.

        `nack` drops the connection without acknowledging, which is how MQTT gives messages back:
        the broker sends every unacknowledged one again to the next connection of the session. A
        lost connection is raised as `errors.Transient` (the engine starts the feed again with backoff).

        Raises:
            errors.Transient: the broker is unreachable or the connection was lost.
            errors.Permanent: bad settings, refused credentials or a refused subscription.
        """
        where = f"{self._name}.{feed}"
        if feed != "topic":
            raise errors.Permanent(f"unknown feed {errors.redact(feed)}; expected topic", where=where)
        inputs = validated(TopicInput, params, where)
        self._opened(where)
        subscription = f"$share/{inputs.group}/{inputs.topic}" if inputs.group else inputs.topic
        identifier = inputs.client_id or f"{self._config.client_id}-{content_digest(subscription)[:10]}"
        while True:  # once per connection; `nack` ends one so that the broker sends the batch again
            client = self._client(identifier=identifier, is_persistent=True)
            await self._connect(client, where)
            self._consumers.add(client)
            inbox: Inbox[aiomqtt.Message] = Inbox()
            pump: asyncio.Task[None] | None = None
            given_back = asyncio.Event()
            try:
                await self._subscribe(client, subscription, where)
                pump = asyncio.create_task(_pump(client, inbox, where), name=f"mqtt-{identifier}")
                while not given_back.is_set():
                    messages = await inbox.take(inputs.batch, inputs.linger)
                    yield Batch(
                        items=[_item(m, inputs) for m in messages],
                        ack=_acknowledger(client, messages, where),
                        nack=_giver_back(given_back),
                    )
            finally:
                if pump is not None:
                    pump.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pump
                self._consumers.discard(client)
                await self._disconnect(client)

    async def _subscribe(self, client: aiomqtt.Client, subscription: str, where: str) -> None:
        timeout_s = self._timeout.total_seconds()
        try:
            granted = await client.subscribe(subscription, qos=1, timeout=timeout_s)
        except aiomqtt.MqttError as exc:
            raise errors.Transient(f"subscribing to {subscription!r} failed: {_reason(exc)}", where=where) from None
        codes = [code if isinstance(code, int) else int(code.value) for code in granted]
        if not codes or codes[0] >= 0x80:
            raise errors.Permanent(
                f"the broker refused the subscription to {subscription!r} (code {codes[0] if codes else '?'});"
                " expected a valid topic filter the user may read",
                where=where,
            )

    async def _publishing_client(self, where: str) -> aiomqtt.Client:
        async with self._opening:
            if self._publisher is None:
                client = self._client(identifier=None, is_persistent=False)
                await self._connect(client, where)
                self._publisher = client
            return self._publisher

    async def _drop_publisher(self, client: aiomqtt.Client) -> None:
        if self._publisher is client:
            self._publisher = None
            await self._disconnect(client)

    def _client(self, *, identifier: str | None, is_persistent: bool) -> aiomqtt.Client:
        endpoint = self._opened(self._name)
        config = self._config
        is_v5 = config.protocol == "5"
        properties = None
        if is_v5 and is_persistent:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = int(config.session_expiry.total_seconds())
        options: dict[str, Any] = (
            {"clean_start": not is_persistent, "properties": properties}
            if is_v5
            else {"clean_session": not is_persistent}
        )
        client = aiomqtt.Client(
            endpoint.host,
            endpoint.port,
            username=endpoint.username,
            password=endpoint.password,
            identifier=identifier,
            protocol=aiomqtt.ProtocolVersion.V5 if is_v5 else aiomqtt.ProtocolVersion.V311,
            timeout=self._timeout.total_seconds(),
            keepalive=int(config.keepalive.total_seconds()),
            tls_context=endpoint.tls,
            **options,
        )
        # Before connecting: a persistent session's queued messages arrive right after CONNACK.
        client._client.manual_ack_set(True)
        return client

    async def _connect(self, client: aiomqtt.Client, where: str, *, is_check: bool = False) -> None:
        endpoint = self._opened(where)
        timeout_s = self._timeout.total_seconds()
        try:
            async with asyncio.timeout(timeout_s):
                await client.__aenter__()
        except TimeoutError:
            raise errors.Transient(f"{endpoint.address} did not answer within {timeout_s:g} s", where=where) from None
        except MqttConnectError as exc:
            code = exc.rc if isinstance(exc.rc, int) else int(exc.rc.value) if exc.rc is not None else 0
            if code in _CREDENTIALS_REFUSED:
                user = errors.redact(endpoint.username) if endpoint.username else "anonymous"
                raise errors.Permanent(
                    f"credentials refused: the broker at {endpoint.address} refused the login of {user}"
                    f" ({_reason(exc)}); expected a valid username and password",
                    where=where,
                ) from None
            raise errors.Permanent(
                f"the broker at {endpoint.address} refused the connection ({_reason(exc)})", where=where
            ) from None
        except aiomqtt.MqttError as exc:
            text = str(exc)
            if "certificate verify failed" in text:
                raise errors.Permanent(
                    f"the TLS certificate of {endpoint.address} is not trusted; expected a certificate valid for"
                    " the host, or set ca_file",
                    where=where,
                ) from None
            if "Name or service not known" in text or "nodename nor servname" in text:
                raise errors.Permanent(f"the host name {endpoint.host!r} does not resolve (DNS)", where=where) from None
            if "Connection refused" in text:
                problem = (
                    f"the connection to {endpoint.address} was refused (is an MQTT broker listening on that port?)"
                )
                if is_check:
                    raise errors.Permanent(problem, where=where) from None
                raise errors.Transient(problem, where=where) from None
            raise errors.Transient(f"connecting to {endpoint.address} failed: {_reason(exc)}", where=where) from None

    async def _disconnect(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._timeout.total_seconds()):
                await client.__aexit__(None, None, None)

    def _opened(self, where: str) -> Endpoint:
        if self._endpoint is None:
            raise errors.SeamflowError(f"{where}: connection not open", code="connector.closed")
        return self._endpoint


async def _pump(client: aiomqtt.Client, inbox: Inbox[aiomqtt.Message], where: str) -> None:
    """Move received messages into the inbox; a lost connection becomes the inbox's failure."""
    try:
        async for message in client.messages:
            inbox.put(message)
    except aiomqtt.MqttError as exc:
        inbox.fail(errors.Transient(f"the connection to the broker was lost: {_reason(exc)}", where=where))


def _acknowledger(client: aiomqtt.Client, messages: list[aiomqtt.Message], where: str) -> Any:
    async def ack() -> None:
        for message in messages:
            if message.qos == 0:
                continue  # delivered at most once: nothing to acknowledge
            result = client._client.ack(message.mid, message.qos)
            if result != paho.MQTT_ERR_SUCCESS:
                raise errors.Transient(
                    f"could not acknowledge {len(messages)} message(s) ({paho.error_string(result)});"
                    " the broker will send them again",
                    where=where,
                )

    return ack


def _giver_back(given_back: asyncio.Event) -> Any:
    async def nack() -> None:
        given_back.set()  # the consumer reconnects before the next batch; the broker redelivers

    return nack


def _item(message: aiomqtt.Message, inputs: TopicInput) -> Item:
    topic = message.topic.value
    payload = message.payload if isinstance(message.payload, bytes | bytearray) else str(message.payload).encode()
    properties = message.properties
    user_properties = {str(k): str(v) for k, v in getattr(properties, "UserProperty", None) or []}
    content_type = getattr(properties, "ContentType", None)
    how = inputs.decode
    if how == "auto" and content_type is None and _looks_like_json(bytes(payload)):
        how = "json"  # MQTT 3.1.1 has no content type: a payload that is a JSON object or array is JSON
    decoded = decode_body(bytes(payload), content_type, how)
    identity: object = None
    if inputs.key_field is not None and "json" in decoded:
        identity = _field(decoded["json"], inputs.key_field)
    if identity is None:
        identity = user_properties.get(inputs.key_property)
    if isinstance(identity, str | int) and not isinstance(identity, bool) and str(identity):
        key = f"{topic}:{identity}"
    else:
        key = f"{topic}:sha256:{content_digest(topic, bytes(payload))}"
    body: dict[str, Json] = {
        "topic": topic,
        "qos": message.qos,
        "retain": bool(message.retain),
        "content_type": content_type,
        "properties": dict(user_properties),
        **decoded,
    }
    return Item(body=body, key=key)


def _looks_like_json(payload: bytes) -> bool:
    if payload.lstrip()[:1] not in (b"{", b"["):
        return False
    try:
        codec.parse_untrusted(payload)
    except errors.PayloadInvalid:
        return False
    return True


def _field(document: Json, path: str) -> Json:
    value = document
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    if isinstance(value, dict | list):
        return codec.dumps_text(value)
    return value


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return errors.redact_text(text, 200)
