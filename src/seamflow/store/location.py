"""Where a store lives: a SQLite file, or a PostgreSQL database named by a URL."""

from __future__ import annotations

__all__ = ["is_postgres_url"]


def is_postgres_url(url: str) -> bool:
    """True for `postgresql://` and `postgres://` connection URLs."""
    return url.startswith(("postgresql://", "postgres://"))
