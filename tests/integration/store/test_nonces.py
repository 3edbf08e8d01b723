"""OA callback nonces in the store: claimed once across processes until they expire, on both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from seamflow import store
from tests.support.db import Database

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)


async def test_a_nonce_is_claimed_once_until_it_expires(db: store.SqlStore) -> None:
    key = "dingtalk:nEXhMP4r:1765101600000"
    assert await db.claim_nonce(key, NOW, NOW + WINDOW)
    assert not await db.claim_nonce(key, NOW + timedelta(minutes=1), NOW + timedelta(minutes=1) + WINDOW)
    assert await db.claim_nonce("dingtalk:other:1765101600000", NOW, NOW + WINDOW), "another nonce is free"
    later = NOW + WINDOW + timedelta(seconds=1)
    assert await db.claim_nonce(key, later, later + WINDOW), "an expired claim may be taken again"


async def test_two_stores_claiming_the_same_nonce_at_once_get_one_claim(db: store.SqlStore, database: Database) -> None:
    other = store.PostgresStore(database.url) if database.url else store.SqliteStore(database.path)
    await other.open()
    try:
        claims = await asyncio.gather(
            *(s.claim_nonce("wecom:263014780:1765101600", NOW, NOW + WINDOW) for s in (db, other, db, other))
        )
    finally:
        await other.close()
    assert sorted(claims) == [False, False, False, True]
