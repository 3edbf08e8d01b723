"""The naive durable peer: a Python forwarder that commits every event and every step one by one.

The same ASGI app as `bare_forwarder.py` (uvicorn with httptools and uvloop, one reused aiohttp
pool, the same mapping), plus what a careful developer writes first when told "nothing may be
lost": a SQLite database in WAL mode with `PRAGMA synchronous=FULL` (every commit survives power
loss, Seamflow's default durability) and no batching. For each `POST /hooks/orders`:

1. insert the event (its `order_no` is the dedupe key; a repeat answers 200 and stops) → commit,
2. insert the `order` step's result (the mapped order) → commit,
3. POST the mapped order to the sink,
4. insert the `post` step's result and the run's end → commit (three commits per event, as in
   Seamflow: accept, `order` step, `post` step with the run's end),
5. answer 202.

SQLite allows one writer at a time, so the careful way to keep the event loop free is one
writer thread that owns the connection: every statement+commit is handed to it
(`loop.run_in_executor` on a one-thread pool) and the request awaits it. Commits of different
requests therefore queue behind each other, each with its own fsync — there is no group commit.
That is the point of the comparison: Seamflow's group commit should beat it (target ≥ 1.5×).

Run: `python benchmarks/naive_forwarder.py --port P --sink http://127.0.0.1:S --db PATH`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import uvicorn
from bare_forwarder import _answer, map_order

_Scope = dict[str, Any]

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, dedupe_key TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS steps (event_id INTEGER NOT NULL, step TEXT NOT NULL, output TEXT NOT NULL,
                                  PRIMARY KEY (event_id, step));
CREATE TABLE IF NOT EXISTS runs (event_id INTEGER PRIMARY KEY, status TEXT NOT NULL);
"""


class Journal:
    """One SQLite connection, used only from its own writer thread; each call is one commit."""

    def __init__(self, path: str) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self.path = path
        self.conn: sqlite3.Connection | None = None

    def _open(self) -> None:
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.pool, self._open)

    async def commit(self, *statements: tuple[str, tuple[Any, ...]]) -> int:
        """Run the statements in one transaction of their own (BEGIN … COMMIT, one fsync).

        Returns the first statement's new row id, or 0 if it inserted nothing.
        """
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._commit, statements)

    def _commit(self, statements: tuple[tuple[str, tuple[Any, ...]], ...]) -> int:
        assert self.conn is not None
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            first = self.conn.execute(*statements[0])
            row_id = first.lastrowid if first.rowcount > 0 else 0
            for sql, params in statements[1:]:
                self.conn.execute(sql, params)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return row_id or 0

    def close(self) -> None:
        if self.conn is not None:
            self.pool.submit(self.conn.close).result()
        self.pool.shutdown()


class NaiveForwarder:
    """The ASGI app: journal, forward, journal, answer."""

    def __init__(self, sink_url: str, db_path: str) -> None:
        self.target = sink_url.rstrip("/") + "/orders"
        self.journal = Journal(db_path)
        self.session: aiohttp.ClientSession | None = None
        self.ids = itertools.count(1)

    async def __call__(self, scope: _Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/health":
            await _answer(send, 200, b'{"ready":true}')
            return
        try:
            event = json.loads(body)
            mapped = map_order(event)
        except (ValueError, KeyError, TypeError) as exc:
            await _answer(send, 400, json.dumps({"error": str(exc)}).encode())
            return
        status = await self.forward(event, mapped, body)
        await _answer(send, status, b'{"forwarded":true}' if status in (200, 202) else b'{"forwarded":false}')

    async def forward(self, event: dict[str, Any], mapped: dict[str, Any], body: bytes) -> int:
        event_id = await self.journal.commit(
            ("INSERT OR IGNORE INTO events (dedupe_key, body) VALUES (?, ?)", (str(event["order_no"]), body.decode()))
        )
        if not event_id:
            return 200  # the same dedupe key again: already accepted
        payload = json.dumps(mapped)
        await self.journal.commit(("INSERT INTO steps VALUES (?, 'order', ?)", (event_id, payload)))
        assert self.session is not None
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"naive:{event_id}:post"}
        try:
            async with self.session.post(self.target, data=payload, headers=headers) as answer:
                answer_text = await answer.text()
                if answer.status >= 400:
                    return 502
        except aiohttp.ClientError:
            return 502
        result = json.dumps({"status": answer.status, "body": answer_text})
        await self.journal.commit(
            ("INSERT INTO steps VALUES (?, 'post', ?)", (event_id, result)),
            ("INSERT INTO runs VALUES (?, 'completed')", (event_id,)),
        )
        return 202

    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.journal.open()
                connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=60)
                self.session = aiohttp.ClientSession(
                    connector=connector,
                    timeout=aiohttp.ClientTimeout(total=5),
                    skip_auto_headers=("User-Agent",),
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                self.journal.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sink", required=True, help="the sink's base URL")
    parser.add_argument("--db", required=True, help="the SQLite file (created)")
    args = parser.parse_args()
    uvicorn.run(
        NaiveForwarder(args.sink, args.db), host=args.host, port=args.port, loop="uvloop", http="httptools",
        lifespan="on", access_log=False, log_level="warning", backlog=4096,
    )  # fmt: skip


if __name__ == "__main__":
    main()
