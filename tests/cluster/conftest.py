"""Cluster tests: several `seamflow` processes over one fresh PostgreSQL database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import db
from tests.support.sink import RemoteSink, spawn


@pytest.fixture
def database(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[db.Database]:
    reason = db.postgres_unavailable()
    if reason:
        pytest.skip(reason)
    fresh = db.new_database("postgres", project_dir)
    for key, value in fresh.env.items():
        monkeypatch.setenv(key, value)
    yield fresh


@pytest.fixture
async def remote_sink() -> AsyncIterator[RemoteSink]:
    """The idempotent sink in its own process, so it keeps counting whatever the test kills."""
    async with spawn() as running:
        yield running


@pytest.fixture(scope="session", autouse=True)
def drop_test_databases() -> Iterator[None]:
    yield
    db.drop_created()
