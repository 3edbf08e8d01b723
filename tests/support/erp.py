"""A stand-in ERP database for feed tests: a separate SQLite file or a fresh PostgreSQL or MariaDB database.

`with erp_database("sqlite", folder) as erp:` gives `erp.url` (for a `sql` connection in
`connections.yaml`) and `erp.execute(sql, params)` with `?` placeholders on every backend. A
PostgreSQL or MariaDB database is created as `sf_erp_<random>` and dropped when the block ends;
a server that cannot be reached skips the test, saying why.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import db

__all__ = ["MARIADB_HOST", "MARIADB_PORT", "Erp", "erp_database"]

MARIADB_HOST = os.environ.get("SEAMFLOW_TEST_MARIADB_HOST", "127.0.0.1")
MARIADB_PORT = int(os.environ.get("SEAMFLOW_TEST_MARIADB_PORT", "3306"))
MARIADB_USER = os.environ.get("SEAMFLOW_TEST_MARIADB_USER", "root")


@dataclass(frozen=True)
class Erp:
    """Where the ERP's tables live."""

    kind: str
    """`sqlite`, `postgres` or `mariadb`."""
    url: str
    """The SQLAlchemy URL a `sql` connection uses."""
    dsn: str | Path
    """The psycopg connection string, the MariaDB database's name, or the SQLite file."""

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in its own committed transaction and return its rows."""
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(str(self.dsn), autocommit=True) as conn:
                cur = conn.execute(sql.replace("?", "%s"), params)
                return list(cur.fetchall()) if cur.description else []
        if self.kind == "mariadb":
            conn = _mariadb(str(self.dsn))
            try:
                with conn.cursor() as cur:
                    cur.execute(sql.replace("?", "%s"), params)
                    return list(cur.fetchall()) if cur.description else []
            finally:
                conn.close()
        lite = sqlite3.connect(self.dsn, timeout=30)
        try:
            with lite:
                return list(lite.execute(sql, params).fetchall())
        finally:
            lite.close()


@contextlib.contextmanager
def erp_database(kind: str, folder: Path) -> Iterator[Erp]:
    """A fresh, empty ERP database; skips the test (saying why) if its server is not reachable."""
    if kind == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "erp.db"
        yield Erp("sqlite", f"sqlite:///{path}", path)
        return
    import pytest

    if kind == "mariadb":
        with _mariadb_database() as name:
            url = f"mysql+pymysql://{MARIADB_USER}@{MARIADB_HOST}:{MARIADB_PORT}/{name}"
            yield Erp("mariadb", url, name)
        return

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


def _mariadb(database: str | None = None) -> Any:
    """A PyMySQL connection (autocommit, utf8mb4) to the test's MariaDB, as the passwordless admin user."""
    import pymysql

    return pymysql.connect(
        host=MARIADB_HOST,
        port=MARIADB_PORT,
        user=MARIADB_USER,
        password="",
        database=database,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=3,
    )


@contextlib.contextmanager
def _mariadb_database() -> Iterator[str]:
    """Create `sf_erp_<random>` on MariaDB (utf8mb4) and drop it afterwards; skip if MariaDB is not reachable."""
    import pytest

    try:
        admin = _mariadb()
    except Exception as exc:  # any failure means: skip the MariaDB variant, saying why
        print(f"MariaDB at {MARIADB_HOST}:{MARIADB_PORT} is not reachable: {exc}")
        pytest.skip(f"MariaDB at {MARIADB_HOST}:{MARIADB_PORT} is not reachable: {exc}")
    name = f"sf_erp_{uuid.uuid4().hex[:12]}"
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        admin.close()
    try:
        yield name
    finally:
        admin = _mariadb()
        try:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {name}")
        finally:
            admin.close()
