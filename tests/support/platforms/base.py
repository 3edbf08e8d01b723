"""What every platform stand-in shares: a server on a free port, recorded requests, tokens, knobs."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from aiohttp import web

__all__ = ["Platform", "Recorded"]


@dataclass(frozen=True)
class Recorded:
    """One request the stand-in received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    """The JSON body (parsed), the raw text when it is not JSON, or None."""


@dataclass
class Platform:
    """The state and knobs of a stand-in; subclasses add their routes in `routes`."""

    name: ClassVar[str] = ""
    token_lifetime_s: int = 7200
    """What the token endpoint answers as the lifetime; a token stops working after it."""
    per_second: float | None = None
    """Refuse API calls beyond this many in any second (None: no limit), with the platform's code."""
    base_url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    token_requests: int = 0
    issued: list[str] = field(default_factory=list)
    """Every token (or session id) handed out, valid or not."""
    _valid: dict[str, float] = field(default_factory=dict)
    _failures: deque[tuple[int | str, str, str]] = field(default_factory=deque)
    _recent: deque[float] = field(default_factory=deque)

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working (an app secret reset, a session that timed out)."""
        self._valid.clear()

    def fail_next(self, code: int | str, message: str, path_end: str = "") -> None:
        """The next API call (not a sign-in) to a path ending with `path_end` answers error `code` with
        `message`, then all is normal again."""
        self._failures.append((code, message, path_end))

    def api_calls(self, path_end: str = "") -> list[Recorded]:
        """The recorded requests to API paths ending with `path_end` (sign-ins excluded)."""
        return [r for r in self.requests if r.path.endswith(path_end) and not self.is_sign_in(r.path)]

    def is_sign_in(self, path: str) -> bool:
        raise NotImplementedError

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def issue_token(self) -> str:
        self.token_requests += 1
        token = f"{self.name}-{secrets.token_hex(16)}"
        self._valid[token] = time.monotonic() + self.token_lifetime_s
        self.issued.append(token)
        return token

    def is_valid(self, token: str | None) -> bool:
        return token is not None and self._valid.get(token, 0.0) > time.monotonic()

    def has_expired(self, token: str | None) -> bool:
        """Whether `token` was valid once and outlived its lifetime (not revoked, not unknown)."""
        return token is not None and token in self._valid and not self.is_valid(token)

    def take_failure(self, path: str) -> tuple[int | str, str] | None:
        """The failure planted for a call to `path`, if any (each is taken once)."""
        for planted in list(self._failures):
            if path.endswith(planted[2]):
                self._failures.remove(planted)
                return planted[0], planted[1]
        return None

    def is_too_frequent(self) -> bool:
        """Count this call; whether it exceeds `per_second` in the last second."""
        now = time.monotonic()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if self.per_second is not None and len(self._recent) >= self.per_second:
            return True
        self._recent.append(now)
        return False

    @web.middleware
    async def _record(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        self.requests.append(Recorded(request.method, request.path, dict(request.query), dict(request.headers), body))
        response: web.StreamResponse = await handler(request)
        return response

    @classmethod
    @asynccontextmanager
    async def start(cls, **knobs: Any) -> AsyncIterator[Self]:
        """Serve the stand-in on 127.0.0.1 at a free port until the block ends."""
        platform = cls(**knobs)
        app = web.Application(middlewares=[platform._record])
        platform.routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # bound by start()
        platform.base_url = f"http://127.0.0.1:{port}"
        try:
            yield platform
        finally:
            await runner.cleanup()

    @classmethod
    @contextmanager
    def in_thread(cls, **knobs: Any) -> Iterator[Self]:
        """Serve the stand-in from a thread with its own event loop until the block ends.

        For tests whose own loop may block: a synchronous write to a `seamflow serve` database
        waits for its lock, which the server may hold while it signs in here.
        """
        loop = asyncio.new_event_loop()
        started: asyncio.Future[Self] = loop.create_future()
        stop = asyncio.Event()

        async def serve() -> None:
            try:
                async with cls.start(**knobs) as platform:
                    started.set_result(platform)
                    await stop.wait()
            except Exception as exc:
                if not started.done():
                    started.set_exception(exc)
                raise

        thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
        thread.start()
        try:
            yield asyncio.run_coroutine_threadsafe(_wait(started), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(timeout=10)
            loop.close()


async def _wait(future: asyncio.Future[Any]) -> Any:
    return await future
