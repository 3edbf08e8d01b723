"""The test's database on either backend: a fresh SQLite file or a fresh PostgreSQL database.

The acceptance suite runs once per backend. For PostgreSQL each test gets its own database
(`CREATE DATABASE sf_test_<random>`), dropped at the end of the session; the server under test
and every CLI call find it through `SEAMFLOW_DATABASE_URL`.
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PG_ADMIN_URL = os.environ.get("SEAMFLOW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
_created: list[str] = []


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used for tests, or None if it can."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # any failure means: skip the PostgreSQL variant, saying why
        return f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}"


@dataclass(frozen=True)
class Database:
    """Where a test's store lives."""

    backend: str
    url: str | None = None
    """PostgreSQL URL (None for SQLite)."""
    path: Path | None = None
    """SQLite file (None for PostgreSQL)."""

    @property
    def env(self) -> dict[str, str]:
        """Environment for `seamflow` processes using this database."""
        return {"SEAMFLOW_DATABASE_URL": self.url} if self.url else {}

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (`?` placeholders on both backends)."""
        if self.url:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                cur = conn.execute(sql.replace("?", "%s"), params)
                return list(cur.fetchall()) if cur.description else []
        assert self.path is not None
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            with conn:
                return list(conn.execute(sql, params).fetchall())
        finally:
            conn.close()


def new_database(backend: str, project: Path) -> Database:
    """A fresh database for a project: its SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        return Database("sqlite", path=project / ".seamflow" / "seamflow.db")
    import psycopg

    name = f"sf_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    _created.append(name)
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return Database("postgres", url=f"{base}/{name}")


def current(project: Path) -> Database:
    """The database the current environment points `seamflow` at, for this project."""
    url = os.environ.get("SEAMFLOW_DATABASE_URL")
    if url:
        return Database("postgres", url=url)
    return Database("sqlite", path=project / ".seamflow" / "seamflow.db")


def drop_created() -> None:
    """Drop every PostgreSQL database the tests created; best effort.

    Cleaning up is not what a test checks: a drop that waits too long on a busy server (it
    needs a checkpoint and every session gone) is left for the end of the process, and one
    that still fails is reported on stderr and left behind rather than failing the test.
    """
    if not _created:
        return
    import psycopg

    names, _created[:] = list(_created), []
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute("SET statement_timeout = '20s'")
            for name in names:
                try:
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                except psycopg.errors.QueryCanceled:
                    _left_behind.append(name)
    except psycopg.Error as exc:
        print(f"note: could not drop test databases {names}: {exc}", file=sys.stderr)


_left_behind: list[str] = []


@atexit.register
def _drop_left_behind() -> None:
    if not _left_behind:
        return
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for name in _left_behind:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    except psycopg.Error as exc:
        print(f"note: test databases {_left_behind} are left behind: {exc}", file=sys.stderr)
