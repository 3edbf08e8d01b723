"""A stand-in ERP database for feed tests: a separate SQLite file or a fresh PostgreSQL database.

`async with erp_database("sqlite", folder) as erp:` gives `erp.url` (for a `sql` connection in
`connections.yaml`) and `erp.execute(sql, params)` with `?` placeholders on both backends. A
PostgreSQL database is created as `sf_erp_<random>` and dropped when the block ends.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import db

__all__ = ["Erp", "erp_database"]


@dataclass(frozen=True)
class Erp:
    """Where the ERP's tables live."""

    kind: str
    """`sqlite` or `postgres`."""
    url: str
    """The SQLAlchemy URL a `sql` connection uses."""
    dsn: str | Path
    """The psycopg connection string, or the SQLite file."""

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in its own committed transaction and return its rows."""
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(str(self.dsn), autocommit=True) as conn:
                cur = conn.execute(sql.replace("?", "%s"), params)
                return list(cur.fetchall()) if cur.description else []
        lite = sqlite3.connect(self.dsn, timeout=30)
        try:
            with lite:
                return list(lite.execute(sql, params).fetchall())
        finally:
            lite.close()


@contextlib.contextmanager
def erp_database(kind: str, folder: Path) -> Iterator[Erp]:
    """A fresh, empty ERP database; skips the test (saying why) if PostgreSQL is not reachable."""
    if kind == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "erp.db"
        yield Erp("sqlite", f"sqlite:///{path}", path)
        return
    import pytest

    reason = db.postgres_unavailable()
    if reason:
        pytest.skip(reason)
    import psycopg

    name = f"sf_erp_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(db.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base = db.PG_ADMIN_URL.rsplit("/", 1)[0]
    dsn = f"{base}/{name}"
    try:
        yield Erp("postgres", dsn.replace("postgresql://", "postgresql+psycopg://", 1), dsn)
    finally:
        with psycopg.connect(db.PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
