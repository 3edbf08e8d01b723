"""The benchmark's HTTP target: a minimal, fast sink that times each arriving effect.

A raw asyncio protocol on uvloop with httptools' parser (no ASGI framework, so the sink
spends as little of the machine's CPU as possible). Every request to a path outside
`/_bench/` is an effect: the sink notes `time.time_ns()` when the request has fully
arrived and the `sent_ns` number from its JSON body (the load generator's send time),
counts repeated `Idempotency-Key`s and answers `201 {}`.

Control endpoints (same port):
- `GET /_bench/window?start_ns=A&end_ns=B`: effects that arrived in [A, B): count and
  end-to-end latency percentiles (arrival − sent_ns) in ms.
- `GET /_bench/count`: effects since the last reset, and duplicates (a key seen again).
- `POST /_bench/reset`: forget everything.

Run: `python benchmarks/sink.py --port 0`; it prints `SINK_URL http://127.0.0.1:PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import time
from array import array
from urllib.parse import parse_qs

import httptools
import uvloop

_SENT = re.compile(rb'"sent_ns"\s*:\s*"?(\d+)')
_CREATED = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class Recorder:
    """Arrival and send times of every effect since the last reset."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.arrived = array("q")
        self.sent = array("q")  # 0 when the body had no sent_ns
        self.keys: set[bytes] = set()
        self.duplicates = 0

    def note(self, arrived_ns: int, body: bytes, key: bytes | None) -> None:
        found = _SENT.search(body, 0, 4096) or (_SENT.search(body) if len(body) > 4096 else None)
        self.arrived.append(arrived_ns)
        self.sent.append(int(found.group(1)) if found else 0)
        if key is not None:
            if key in self.keys:
                self.duplicates += 1
            else:
                self.keys.add(key)

    def window(self, start_ns: int, end_ns: int) -> dict[str, object]:
        latencies = sorted(
            (a - s) / 1e6 for a, s in zip(self.arrived, self.sent, strict=True) if start_ns <= a < end_ns and s
        )
        count = sum(1 for a in self.arrived if start_ns <= a < end_ns)
        return {"count": count, "timed": len(latencies), "latency_ms": summarize(latencies)}


def summarize(ordered: list[float]) -> dict[str, float] | None:
    """p50/p90/p95/p99/max/mean of sorted values (nearest-rank)."""
    if not ordered:
        return None

    def rank(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(-(-p * len(ordered) // 100)) - 1))], 3)

    return {
        "p50": rank(50), "p90": rank(90), "p95": rank(95), "p99": rank(99),
        "max": round(ordered[-1], 3), "mean": round(sum(ordered) / len(ordered), 3),
    }  # fmt: skip


class SinkProtocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection to the sink."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.key: bytes | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []
        self.key = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"idempotency-key":
            self.key = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        arrived = time.time_ns()
        assert self.transport is not None
        body = b"".join(self.body)
        if self.url.startswith(b"/_bench/"):
            self.transport.write(self.control(body))
        else:
            self.recorder.note(arrived, body, self.key)
            self.transport.write(_CREATED)
        if not self.parser.should_keep_alive():
            self.transport.close()

    def control(self, body: bytes) -> bytes:
        parsed = httptools.parse_url(self.url)
        query = {k: v[0] for k, v in parse_qs((parsed.query or b"").decode()).items()}
        path = parsed.path.decode()
        rec = self.recorder
        if path == "/_bench/reset":
            rec.reset()
            answer: object = {"ok": True}
        elif path == "/_bench/count":
            answer = {
                "count": len(rec.arrived),
                "duplicates": rec.duplicates,
                "last_ns": rec.arrived[-1] if rec.arrived else 0,
            }
        elif path == "/_bench/window":
            answer = rec.window(int(query.get("start_ns", 0)), int(query.get("end_ns", 2**62)))
        else:
            return b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
        data = json.dumps(answer).encode()
        return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(data), data)


async def serve(host: str, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    recorder = Recorder()
    server = await asyncio.get_running_loop().create_server(lambda: SinkProtocol(recorder), sock=sock)
    print(f"SINK_URL http://{host}:{sock.getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
