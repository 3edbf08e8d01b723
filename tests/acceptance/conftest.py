"""The acceptance suite runs on both backends: every test once on SQLite, once on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import db


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        reason = db.postgres_unavailable()
        if reason:
            pytest.skip(reason)
    return str(request.param)


@pytest.fixture(autouse=True)
def database(backend: str, project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[db.Database]:
    """A fresh database for this test, found by every `seamflow` process it starts."""
    fresh = db.new_database(backend, project_dir)
    for key, value in fresh.env.items():
        monkeypatch.setenv(key, value)
    if backend == "sqlite":
        monkeypatch.delenv("SEAMFLOW_DATABASE_URL", raising=False)
    yield fresh


@pytest.fixture(scope="session", autouse=True)
def drop_test_databases() -> Iterator[None]:
    yield
    db.drop_created()
