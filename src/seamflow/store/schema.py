"""Numbered schema migrations per dialect: `migrations/<dialect>/0001_initial.sql`, applied in order.

A database whose schema is newer than this code refuses to open, with a clear message.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from seamflow import errors

__all__ = ["latest_version", "migrate", "migrations"]

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """Return (number, file name, SQL) for every migration of `dialect`, in order."""
    folder = resources.files("seamflow.store").joinpath("migrations", dialect)
    found = []
    for item in folder.iterdir():
        match = _NAME.match(item.name)
        if match:
            found.append((int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    return sorted(found)


def latest_version(dialect: str) -> int:
    """The schema version this code expects."""
    return migrations(dialect)[-1][0]


def migrate(conn: Any, dialect: str) -> int:
    """Bring the schema up to date in one transaction per migration; return the version.

    Raises:
        errors.StoreError: the database's schema is newer than this code.
    """
    if dialect == "postgres":
        # several processes may start at once: one migrates, the others wait for it
        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(7291002)")
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    current = int(row[0] or 0)
    latest = latest_version(dialect)
    if current > latest:
        if dialect == "postgres":
            conn.execute("ROLLBACK")
        raise errors.StoreError(
            f"the database schema is version {current} but this Seamflow knows up to {latest};"
            " upgrade Seamflow or use a matching database",
            code="store.schema_newer",
        )
    for number, _name, sql in migrations(dialect):
        if number <= current:
            continue
        script = f"{sql}\nINSERT INTO schema_version (version) VALUES ({number});"
        if dialect == "postgres":
            conn.execute(script)  # inside the transaction that holds the migration lock
        else:
            conn.executescript(f"BEGIN;\n{script}\nCOMMIT;")
    if dialect == "postgres":
        conn.execute("COMMIT")
    return latest
