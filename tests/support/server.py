"""`seamflow serve` as a real subprocess on a free port, for acceptance tests that kill -9 it and restart it."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx

from tests.support import db

__all__ = ["Server", "free_port", "make_project"]

TOKEN = "sf_test_token_0123456789abcdefghijklmnopqrstuvwxyz"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_project(root: Path, flows: Mapping[str, str], connections: str = "") -> Path:
    """Write a project: `flows/<name>.yaml` files and `connections.yaml`."""
    (root / "flows").mkdir(parents=True, exist_ok=True)
    for name, text in flows.items():
        (root / "flows" / f"{name}.yaml").write_text(text, encoding="utf-8")
    (root / "connections.yaml").write_text(connections or "{}\n", encoding="utf-8")
    return root


def _die_with_the_test() -> None:
    """In the child before exec: SIGKILL when the test process dies (a pytest killed by a timeout
    would otherwise leave its servers running, loading the machine for every later test)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Server:
    """One `seamflow serve` (or `api`, `worker`) process; `restart()` after `kill()` keeps its database."""

    def __init__(
        self,
        project: Path,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        database: db.Database | None = None,
        role: str = "serve",
    ) -> None:
        self.project = project
        self.role = role
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        if database is not None:
            self.env.pop("SEAMFLOW_DATABASE_URL", None)
            self.env.update(database.env)
        self.database = database or db.current(project)
        """Where the server keeps its store (from the environment unless given)."""
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = project / f"{role}-{self.port}.log" if role != "serve" else project / "serve.log"

    async def start(self, timeout_s: float = 60) -> None:
        """Start the process and wait until `/health` answers 200; the bound is generous because a
        loaded 2-core machine can take tens of seconds to start Python (start-up speed is measured
        by benchmarks/startup.py, not here)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "seamflow",
                    self.role,
                    "--project",
                    str(self.project),
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                stdout=log,
                stderr=log,
                env=self.env,
                preexec_fn=_die_with_the_test,  # only prctl, before exec
            )
        try:
            await self.wait_ready(timeout_s)
        except BaseException:
            self.kill()  # a server that never became ready must not outlive its test
            raise
        await self._ensure_token()

    async def wait_ready(self, timeout_s: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        async with httpx.AsyncClient() as client:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"seamflow {self.role} exited with {self.process.returncode}:\n"
                        + self.log_path.read_text()[-3000:]
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.url + "/health", timeout=1)).status_code == 200:
                        return
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(
                        f"seamflow {self.role} not ready in {timeout_s}s:\n{self.log_path.read_text()[-3000:]}"
                    )
                await asyncio.sleep(0.05)

    async def _ensure_token(self) -> None:
        from seamflow import api

        self.database.query(
            "INSERT INTO api_tokens (id, name, hash, created_ms) VALUES ('tok_test', 'test', ?, 0)"
            " ON CONFLICT DO NOTHING",
            (api.hash_token(TOKEN),),
        )

    def pause(self) -> None:
        """SIGSTOP: the process freezes (a long GC pause, a VM stall) without dying."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause()`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    async def stop(self) -> None:
        """Graceful stop (SIGTERM), waiting for the drain."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(self.process.wait, 30)

    async def restart(self) -> None:
        self.kill()
        await self.start()

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


@contextlib.asynccontextmanager
async def serve(project: Path, **kwargs: object) -> AsyncIterator[Server]:
    server = Server(project, **kwargs)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        server.kill()
