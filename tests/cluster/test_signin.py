"""Three worker processes on one PostgreSQL database sign in to DingTalk at the same moment: one token request.

Each process has its own store connection and token cache (`StoredTokens`), as `seamflow serve`
processes on three machines would; they share only the database. The stand-in's token endpoint
is slow, so without the store's renewal lock all three would ask for a token.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from cryptography.fernet import Fernet, MultiFernet

from seamflow import connectors, engine, store
from tests.support import db
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, AuthServer
from tests.support.open_platforms import OpenPlatforms
from tests.support.wait import eventually

WORKERS = ("worker-a", "worker-b", "worker-c")
ROOT = Path(__file__).parents[2]


@asynccontextmanager
async def workers(
    database: db.Database, base_url: str, folder: Path, kind: str = "dingtalk", key: str | None = None
) -> AsyncIterator[None]:
    key = key or Fernet.generate_key().decode()
    env = {**os.environ, "SEAMFLOW_SECRET_KEY": key, "PYTHONPATH": str(ROOT)}
    assert database.url is not None
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.token_worker",
            database.url,
            base_url,
            str(folder),
            name,
            kind,
            env=env,
            cwd=ROOT,
        )
        for name in WORKERS
    ]
    try:
        yield
    finally:
        (folder / "stop").write_text("stop")
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), timeout=20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def until(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    async def check() -> None:
        assert predicate(), what

    await eventually(check, timeout=timeout)


def outcomes(folder: Path, n: int) -> dict[str, str]:
    return {name: (folder / f"{name}.{n}").read_text() for name in WORKERS if (folder / f"{name}.{n}").exists()}


async def test_three_processes_renewing_at_once_make_one_token_request(database: db.Database, tmp_path: Path) -> None:
    async with OpenPlatforms.start() as platforms, workers(database, platforms.base_url, tmp_path):
        platforms.token_delay_s = 0.3
        await until(lambda: all((tmp_path / f"{name}.ready").exists() for name in WORKERS), "workers ready")
        (tmp_path / "go1").write_text("go")  # no token yet: all three need one at once
        await until(lambda: len(outcomes(tmp_path, 1)) == 3, "round 1 done")
        assert set(outcomes(tmp_path, 1).values()) == {"ok"}, outcomes(tmp_path, 1)
        assert platforms.token_requests["dingtalk"] == 1
        assert len({token for _, token in platforms.calls}) == 1, "all three used the one token"

        platforms.revoke()  # all three find their token refused (errcode 40014) at once
        platforms.calls.clear()
        (tmp_path / "go2").write_text("go")
        await until(lambda: len(outcomes(tmp_path, 2)) == 3, "round 2 done")
    assert set(outcomes(tmp_path, 2).values()) == {"ok"}, outcomes(tmp_path, 2)
    assert platforms.token_requests["dingtalk"] == 2, "one renewal for the three refusals"
    accepted = [token for _, token in platforms.calls if token in platforms.valid]
    assert len(accepted) == 3 and len(set(accepted)) == 1, "every retry carried the renewed token"


async def test_three_processes_refreshing_an_oauth2_token_at_once_send_one_refresh_request(
    database: db.Database, tmp_path: Path
) -> None:
    """Rotation makes this strict: a second refresh with the same refresh token would be refused (invalid_grant)."""
    key = Fernet.generate_key().decode()
    async with AuthServer.start() as server:
        await authorize(server, database, key)
        async with workers(database, server.base_url, tmp_path, "oauth2", key):
            await until(lambda: all((tmp_path / f"{name}.ready").exists() for name in WORKERS), "workers ready")
            server.expire_access_tokens()  # all three are refused (401) and refresh at once
            server.refresh_delay_s = 0.3
            (tmp_path / "go1").write_text("go")
            await until(lambda: len(outcomes(tmp_path, 1)) == 3, "round 1 done")
    assert set(outcomes(tmp_path, 1).values()) == {"ok"}, outcomes(tmp_path, 1)
    assert server.refreshes == 1


async def authorize(server: AuthServer, database: db.Database, key: str) -> None:
    """Store the connection's first tokens, as `seamflow connections authorize` does."""
    assert database.url is not None
    s = store.PostgresStore(database.url)
    await s.open()
    tokens = engine.StoredTokens(s, lambda: engine.secrets.SecretKey(MultiFernet([Fernet(key)]), "test"))
    config = {
        "base_url": f"{server.base_url}/api",
        "auth": {
            "oauth2": {
                "authorize_url": f"{server.base_url}/authorize",
                "token_url": f"{server.base_url}/token",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            }
        },
    }
    connector = connectors.HttpConnector()
    await connector.open(connectors.Connection("oauth2", "http", config, tokens=tokens))
    try:
        pending = connector.begin_authorization("http://127.0.0.1:9/callback")
        async with httpx.AsyncClient() as browser:
            consent = await browser.get(pending.url)
        await connector.finish_authorization(pending, consent.headers["location"])
    finally:
        await connector.close()
        await s.close()
