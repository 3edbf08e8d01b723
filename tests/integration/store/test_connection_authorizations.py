"""Connections' OAuth2 authorizations in progress: taken once, by any process, until they expire; on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from seamflow import store

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def begun(state: str, until: datetime) -> store.ConnectionAuthorization:
    return store.ConnectionAuthorization(
        state, "crm", "verifier-" + state, "https://seamflow.example.cn/api/v1/connections/oauth/callback",
        "li.na", "session", until,
    )  # fmt: skip


async def test_an_authorization_is_taken_once(db: store.SqlStore) -> None:
    await db.save_connection_authorization(begun("s1", NOW + timedelta(minutes=10)), NOW)
    taken = await db.take_connection_authorization("s1", NOW + timedelta(minutes=1))
    assert taken == begun("s1", NOW + timedelta(minutes=10))
    assert await db.take_connection_authorization("s1", NOW + timedelta(minutes=1)) is None, "reused state"
    assert await db.take_connection_authorization("unknown", NOW) is None


async def test_an_expired_authorization_is_not_taken_and_later_saves_drop_it(db: store.SqlStore) -> None:
    await db.save_connection_authorization(begun("old", NOW + timedelta(minutes=10)), NOW)
    assert await db.take_connection_authorization("old", NOW + timedelta(minutes=11)) is None
    await db.save_connection_authorization(begun("stale", NOW + timedelta(minutes=10)), NOW)
    await db.save_connection_authorization(begun("new", NOW + timedelta(minutes=30)), NOW + timedelta(minutes=20))
    assert await db.take_connection_authorization("stale", NOW) is None, "dropped by the later save"
    assert (await db.take_connection_authorization("new", NOW + timedelta(minutes=21))) is not None
