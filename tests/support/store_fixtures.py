"""The store under test on both backends: a fresh SQLite file or a fresh PostgreSQL database per test.

Shared by the conftests of tests/integration/store and tests/integration/insight.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from seamflow import engine, store
from tests.support.db import Database, drop_created, new_database, postgres_unavailable


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "postgres" and (reason := postgres_unavailable()):
        pytest.skip(reason)
    return new_database(request.param, tmp_path)


@pytest.fixture
async def db(database: Database) -> AsyncIterator[store.SqlStore]:
    s = store.PostgresStore(database.url) if database.url else store.SqliteStore(database.path)
    await s.open()
    yield s
    await s.close()


@pytest.fixture(scope="module", autouse=True)
def drop_test_databases() -> Iterator[None]:
    yield
    drop_created()


@pytest.fixture
def journal(db: store.SqlStore) -> engine.Journal:
    """The engine's journal over the store under test: run lifecycle and approval writes go through it."""
    return engine.Journal(db)
