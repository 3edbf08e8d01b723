"""A local idempotent HTTP target: it records requests and counts effects per Idempotency-Key.

Any path but `/_sink/...` is a target. The first request with an `Idempotency-Key` creates
an effect (201); repeats get 200 with the same body and create nothing; a request without
the header is always a new effect. The body is `{"effect": n, "idempotency_key": k,
"method": m, "path": p, "echo": the request's JSON (exact numbers) or text}`.

In-process: `async with Sink.start() as sink:` gives `sink.url`, `sink.requests`,
`sink.stats()`; set `sink.behaviour = Behaviour(fail_next=2)` to provoke failures. As a
subprocess that keeps counting while the engine under test is killed: `python -m
tests.support.sink --port 0` prints `SINK_URL http://127.0.0.1:PORT`; `async with spawn()
as remote:` does that from a test. Control endpoints: `GET /_sink/stats` (`Sink.stats`),
`POST /_sink/behaviour` (JSON object of `Behaviour` fields to change), `POST /_sink/reset`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from seamflow import codec
from seamflow.ids import Json

__all__ = ["Behaviour", "Recorded", "RemoteSink", "Sink", "spawn"]

_ROOT = Path(__file__).resolve().parents[2]
_Message = dict[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_Answer = tuple[int, dict[str, str], bytes]  # status, extra headers, JSON body


@dataclass(slots=True)
class Behaviour:
    """How the sink answers target requests; change it to provoke failures."""

    fail_next: int = 0  # fail this many coming requests (-1: all); a failure is no effect
    fail_status: int = 503  # status of a failure: 503, 429, 400, …
    fail_body: Json = None  # JSON body of a failure; default {"error": "sink failure <status>"}
    retry_after: str | None = None  # Retry-After header sent with failures
    echo_headers: bool = False  # copy the request's headers into failure bodies as "headers"
    delay_ms: int = 0  # wait this long before answering a target request
    pad_bytes: int = 0  # add a "pad" string of this many characters to effect bodies
    chunked: bool = False  # send bodies in two chunks, without Content-Length


@dataclass(frozen=True, slots=True)
class Recorded:
    """One target request as the sink received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    idempotency_key: str | None
    arrived_at: float  # time.monotonic()


@dataclass(slots=True)
class Sink:
    """The sink's state and its ASGI app; `Sink.start()` serves it on 127.0.0.1."""

    record: bool = True  # keep every request in `requests` (off in the subprocess)
    url: str = ""
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[Recorded] = field(default_factory=list)
    total: int = 0
    effects: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    per_key: dict[str, int] = field(default_factory=dict)
    _results: dict[str, bytes] = field(default_factory=dict)
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Sink]:
        """Serve a new sink in this event loop until the block ends."""
        sink = cls()
        sock = _listen(host, port)
        server = _InProcessServer(_config(sink, host))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:  # polling uvicorn's start flag; it has no event
                if task.done():
                    await task
                await asyncio.sleep(0.005)
            sink.url = f"http://{host}:{sock.getsockname()[1]}"
            yield sink
        finally:
            sink._closing.set()  # wakes delayed handlers so shutdown does not wait
            server.should_exit = True
            await task
            sock.close()

    def stats(self) -> dict[str, Json]:
        """Return `requests` (target requests, failures included), `effects`, `keys` (distinct
        idempotency keys), `per_key` (requests per key, failures included), `in_flight` and
        `max_in_flight` (the most target requests in progress at once)."""
        return {
            "requests": self.total,
            "effects": self.effects,
            "keys": len(self.per_key),
            "per_key": dict(self.per_key),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
        }

    def reset(self) -> None:
        """Forget every request, effect and behaviour."""
        self.behaviour = Behaviour()
        self.requests.clear()
        self.per_key.clear()
        self._results.clear()
        self.total = self.effects = self.max_in_flight = 0

    async def __call__(self, scope: _Message, receive: _Receive, send: _Send) -> None:
        """The ASGI app."""
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["path"].startswith("/_sink/"):
            answer = self._control(scope["method"], scope["path"], body)
        else:
            self.total += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                answer = await self._target(scope, headers, body)
            finally:
                self.in_flight -= 1
        await _respond(send, answer, is_chunked=self.behaviour.chunked)

    def _control(self, method: str, path: str, body: bytes) -> _Answer:
        if (method, path) == ("GET", "/_sink/stats"):
            return 200, {}, codec.dumps(self.stats())
        if (method, path) == ("POST", "/_sink/reset"):
            self.reset()
            return 200, {}, b"{}"
        if (method, path) == ("POST", "/_sink/behaviour"):
            return self._change_behaviour(body)
        return 404, {}, codec.dumps({"error": f"no control endpoint {method} {path}"})

    def _change_behaviour(self, body: bytes) -> _Answer:
        try:
            changes: dict[str, Any] = dict(codec.loads(body))  # type: ignore[arg-type]  # dict() refuses non-objects
            self.behaviour = dataclasses.replace(self.behaviour, **changes)
        except (TypeError, ValueError) as exc:  # not an object, or an unknown field
            return 400, {}, codec.dumps({"error": f"expected an object of Behaviour fields: {exc}"})
        return 200, {}, codec.dumps(dataclasses.asdict(self.behaviour))

    async def _target(self, scope: _Message, headers: dict[str, str], body: bytes) -> _Answer:
        key = headers.get("idempotency-key")
        if key is not None:
            self.per_key[key] = self.per_key.get(key, 0) + 1
        if self.record:
            method, path, query = scope["method"], scope["path"], scope["query_string"]
            arrived = Recorded(method, path, query.decode(), headers, body, key, time.monotonic())
            self.requests.append(arrived)
        plan = self.behaviour
        if plan.delay_ms:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), plan.delay_ms / 1000)
        if plan.fail_next:
            if plan.fail_next > 0:
                plan.fail_next -= 1
            return _failure(plan, headers)
        if key is not None and key in self._results:
            return 200, {}, self._results[key]
        self.effects += 1
        result: dict[str, Json] = {
            "effect": self.effects,
            "idempotency_key": key,
            "method": scope["method"],
            "path": scope["path"],
            "echo": _echo(headers, body),
        }
        if plan.pad_bytes:
            result["pad"] = "x" * plan.pad_bytes
        payload = codec.dumps(result)
        if key is not None:
            self._results[key] = payload
        return 201, {}, payload


def _failure(plan: Behaviour, headers: dict[str, str]) -> _Answer:
    default: Json = {"error": f"sink failure {plan.fail_status}"}
    body = default if plan.fail_body is None else plan.fail_body
    if plan.echo_headers and isinstance(body, dict):
        body = {**body, "headers": dict(headers)}
    extra = {"retry-after": plan.retry_after} if plan.retry_after is not None else {}
    return plan.fail_status, extra, codec.dumps(body)


def _echo(headers: dict[str, str], body: bytes) -> Json:
    if headers.get("content-type", "").startswith("application/json"):
        with contextlib.suppress(ValueError):
            return codec.loads(body)
    return body.decode("utf-8", errors="replace") or None


async def _read_body(receive: _Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: _Send, answer: _Answer, *, is_chunked: bool) -> None:
    status, extra, payload = answer
    headers = [(b"content-type", b"application/json")]
    headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    if not is_chunked:
        headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if is_chunked:
        half = len(payload) // 2
        await send({"type": "http.response.body", "body": payload[:half], "more_body": True})
        payload = payload[half:]
    await send({"type": "http.response.body", "body": payload})


class _InProcessServer(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C must still stop the test run."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _config(sink: Sink, host: str) -> uvicorn.Config:
    return uvicorn.Config(
        sink, host=host, lifespan="off", ws="none", log_config=None, log_level="warning",
        access_log=False, timeout_graceful_shutdown=5,
    )  # fmt: skip


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)  # listening before the URL is announced, so no early client is refused
    return sock


@dataclass(slots=True)
class RemoteSink:
    """A sink running in a subprocess (see `spawn`)."""

    url: str
    process: asyncio.subprocess.Process
    client: httpx.AsyncClient

    async def stats(self) -> dict[str, Any]:
        """Return the subprocess sink's `Sink.stats()`."""
        response = await self.client.get("/_sink/stats")
        response.raise_for_status()
        return dict(response.json())

    async def set_behaviour(self, **fields: Json) -> None:
        """Change the named `Behaviour` fields."""
        (await self.client.post("/_sink/behaviour", content=codec.dumps(fields))).raise_for_status()

    async def reset(self) -> None:
        """Forget every request, effect and behaviour."""
        (await self.client.post("/_sink/reset")).raise_for_status()


@contextlib.asynccontextmanager
async def spawn(*, port: int = 0) -> AsyncIterator[RemoteSink]:
    """Run `python -m tests.support.sink` as a subprocess until the block ends."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.sink", "--port", str(port),
        cwd=_ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=15)).decode()
        if not line.startswith("SINK_URL "):
            raise RuntimeError(f"sink subprocess did not start: {line!r}")
        url = line.split()[1]
        async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=10) as client:
            yield RemoteSink(url, process, client)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


def main(argv: list[str] | None = None) -> None:
    """Serve a sink until SIGTERM/SIGINT, after printing `SINK_URL <url>` on stdout."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    sock = _listen(args.host, args.port)
    print(f"SINK_URL http://{args.host}:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(_config(Sink(record=False), args.host)).run(sockets=[sock])


if __name__ == "__main__":
    main()
