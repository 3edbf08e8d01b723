"""Broker messages in and out: the body a step publishes, the event body a feed hands over, keys, batches.

A step publishes `json:` (sent as `application/json`, numbers exact) or `text:` (UTF-8).
A consumed message becomes `{"json": …}` when it is JSON, `{"text": …}` when it is other
UTF-8 text and `{"base64": …}` otherwise, so a message that cannot be read is still handed
over (and can be dead-lettered by the flow) instead of blocking the queue forever.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, model_validator

from seamflow import codec, errors
from seamflow.connectors.brokers.settings import STRICT
from seamflow.ids import Json

__all__ = ["Content", "Decode", "Inbox", "content_digest", "decode_body", "with_deadline"]

T = TypeVar("T")

Decode = Literal["auto", "json", "text"]
"""How a feed reads message bodies: `auto` (JSON when the content type says so), `json` or `text`."""


class Content(BaseModel):
    """The body of a published message: exactly one of `json` and `text`."""

    model_config = STRICT
    json_body: Any = Field(None, alias="json")
    """`json:` in the step: sent as `application/json`, numbers exact."""
    text: str | None = None
    """A text body, sent as UTF-8 `text/plain`."""

    @model_validator(mode="after")
    def _one_body(self) -> Content:
        if ("json_body" in self.model_fields_set) == (self.text is not None):
            raise ValueError("give exactly one of json or text")
        return self

    def encoded(self) -> tuple[bytes, str]:
        """The bytes to send and their content type.

        Raises:
            errors.PayloadInvalid: the JSON holds NaN/Infinity or a lone surrogate.
        """
        if self.text is not None:
            return self.text.encode(), "text/plain; charset=utf-8"
        return codec.dumps(self.json_body), "application/json"


def decode_body(data: bytes, content_type: str | None, how: Decode) -> dict[str, Json]:
    """Read a received body as `{"json": …}`, `{"text": …}` or `{"base64": …}`.

    With `json` (or `auto` and a JSON content type), a body that is not JSON is handed over as
    text or base64 with `error` saying what is wrong, never dropped and never raised.
    """
    is_json = how == "json" or (how == "auto" and content_type is not None and "json" in content_type.lower())
    problem: str | None = None
    if is_json:
        try:
            return {"json": codec.parse_untrusted(data)}
        except errors.PayloadInvalid as exc:
            problem = f"the body is not JSON: {exc.message}"
    try:
        shown: dict[str, Json] = {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        shown = {"base64": base64.b64encode(data).decode("ascii")}
    if problem is not None:
        shown["error"] = problem
    return shown


def content_digest(*parts: bytes | str) -> str:
    """A SHA-256 over the parts (length-prefixed, so no two splits of the same bytes collide)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()[:32]


class Inbox(Generic[T]):
    """Messages a broker client pushes from its callbacks, taken by the feed in batches.

    Taking is safe to cancel: messages leave the inbox only in the synchronous step that
    returns them. A failure of the broker connection is raised once the messages that came
    before it have been taken.
    """

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._failure: BaseException | None = None
        self._changed = asyncio.Event()

    def put(self, item: T) -> None:
        """Add a received message."""
        self._items.append(item)
        self._changed.set()

    def fail(self, failure: BaseException) -> None:
        """Record that the connection failed (the first failure counts)."""
        if self._failure is None:
            self._failure = failure
        self._changed.set()

    async def take(self, limit: int, linger: timedelta) -> list[T]:
        """Wait for one message, then for more until there are `limit` or `linger` has passed.

        Raises:
            BaseException: the recorded failure, when no message is left before it.
        """
        while not self._items:
            if self._failure is not None:
                raise self._failure
            self._changed.clear()
            await self._changed.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + linger.total_seconds()
        while len(self._items) < limit and self._failure is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._changed.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
            except TimeoutError:
                break
        return [self._items.popleft() for _ in range(min(limit, len(self._items)))]


async def with_deadline(work: Awaitable[T], within: timedelta, on_timeout: Callable[[], BaseException]) -> T:
    """Await `work` for at most `within`; raise `on_timeout()` after it."""
    try:
        async with asyncio.timeout(within.total_seconds()):
            return await work
    except TimeoutError:
        raise on_timeout() from None
