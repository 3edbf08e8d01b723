"""A small cluster of `seamflow` processes over one PostgreSQL database, for tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.support import db
from tests.support.server import Server

__all__ = ["Cluster", "fire", "started"]


class Cluster:
    """One `seamflow api` process and N `seamflow worker` processes (each with a health port)."""

    def __init__(self, project: Path, database: db.Database, workers: int, *, lease: str = "3s") -> None:
        self.project = project
        self.database = database
        self.env = {"SEAMFLOW_LEASE": lease}
        self.api = Server(project, database=database, role="api", env=self.env)
        self.workers = [self.new_worker() for _ in range(workers)]

    def new_worker(self) -> Server:
        return Server(self.project, database=self.database, role="worker", env=self.env)

    async def start(self) -> None:
        await asyncio.gather(self.api.start(), *(w.start() for w in self.workers))

    async def replace(self, index: int) -> Server:
        """kill -9 worker `index` and start a new one in its place."""
        self.workers[index].kill()
        fresh = self.new_worker()
        await fresh.start()
        self.workers[index] = fresh
        return fresh

    def busiest(self) -> int:
        """The index of the worker holding the most unfinished runs right now."""
        held = dict(
            self.database.query(
                "SELECT owner, COUNT(*) FROM runs WHERE status IN ('queued', 'running') AND owner IS NOT NULL"
                " GROUP BY owner"
            )
        )
        by_pid = {int(owner.split(":")[1]): count for owner, count in held.items()}
        counts = [by_pid.get(w.process.pid if w.process else -1, 0) for w in self.workers]
        return counts.index(max(counts))

    def kill_all(self) -> None:
        for process in [self.api, *self.workers]:
            with contextlib.suppress(Exception):
                process.resume()
            process.kill()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.project.glob("*.log"))


@contextlib.asynccontextmanager
async def started(project: Path, database: db.Database, workers: int, **kw: str) -> AsyncIterator[Cluster]:
    cluster = Cluster(project, database, workers, **kw)
    try:
        await cluster.start()
        yield cluster
    finally:
        cluster.kill_all()


async def fire(client: httpx.AsyncClient, numbers: list[int], accepted: dict[str, str]) -> None:
    """Post orders; remember the ones answered 2xx (a cut request is sent again later by the test)."""
    for n in numbers:
        order_no = f"SO-{n:05d}"
        with contextlib.suppress(httpx.HTTPError):
            answer = await client.post(
                "/hooks/orders", json={"order_no": order_no, "amount": "9.90", "customer": "钱七"}
            )
            if answer.status_code in (200, 202):
                accepted[order_no] = answer.json()["run_id"]
