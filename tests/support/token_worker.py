"""One worker process of a sign-in race: opens a connection over the shared PostgreSQL store and calls it.

`python -m tests.support.token_worker DATABASE_URL BASE_URL FOLDER NAME [oauth2]`: for each round
`n` from 1, waits until `FOLDER/go<n>` exists, calls DingTalk's user API (or, with `oauth2`, the
test authorization server's `/api/me`) once through its own connector (its own `StoredTokens`
over its own store connection, as a `seamflow serve` process on another machine would), and
writes `FOLDER/<NAME>.<n>` with `ok` or the error. Stops after `FOLDER/stop` appears. The Fernet
key comes from `SEAMFLOW_SECRET_KEY`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

from seamflow import connectors, engine, errors, store
from seamflow.ids import Json
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET
from tests.support.open_platforms import APPS

_POLL_S = 0.005


async def _wait_for(path: Path, stop: Path) -> bool:
    deadline = time.monotonic() + 60
    while not path.exists():
        if stop.exists() or time.monotonic() > deadline:
            return False
        await asyncio.sleep(_POLL_S)
    return True


def _oauth2(base: str) -> dict[str, Json]:
    oauth2: dict[str, Json] = {
        "authorize_url": f"{base}/authorize",
        "token_url": f"{base}/token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    return {"base_url": f"{base}/api", "auth": {"oauth2": oauth2}}


async def main(url: str, base: str, folder: Path, name: str, kind: str) -> None:
    db = store.PostgresStore(url)
    await db.open()
    key = engine.secrets.SecretKey(MultiFernet([Fernet(os.environ["SEAMFLOW_SECRET_KEY"])]), "env")
    tokens = engine.StoredTokens(db, lambda: key)
    appkey, appsecret = APPS["dingtalk"]
    config = {
        "base_url": f"{base}/dingtalk",
        "auth": {
            "token_endpoint": {
                "request": {
                    "method": "GET",
                    "url": f"{base}/dingtalk/gettoken",
                    "query": {"appkey": appkey, "appsecret": appsecret},
                },
                "send": {"query": "access_token"},
                "error_code": "errcode",
                "revoked_codes": [40014, 42001],
            }
        },
    }
    if kind == "oauth2":
        config = _oauth2(base)
    connector = connectors.HttpConnector()
    connection = connectors.Connection(kind, "http", config, timeout=timedelta(seconds=10), tokens=tokens)
    await connector.open(connection)
    (folder / f"{name}.ready").write_text("ready")
    try:
        n = 1
        while await _wait_for(folder / f"go{n}", folder / "stop"):
            try:
                if kind == "oauth2":
                    await connector.call("get", {"path": "me"}, idempotency_key=f"{name}-{n}")
                else:
                    params = {"path": "topapi/v2/user/get", "json": {"userid": "manager4220"}}
                    await connector.call("post", params, idempotency_key=f"{name}-{n}")
                outcome = "ok"
            except errors.SeamflowError as exc:
                outcome = f"{exc.code}: {exc}"
            (folder / f"{name}.{n}").write_text(outcome)
            n += 1
    finally:
        await connector.close()
        await db.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4], (sys.argv[5:] or ["dingtalk"])[0]))
