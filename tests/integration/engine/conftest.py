"""The engine's journal against the store on both backends: the store suite's fixtures, shared."""

from __future__ import annotations

from tests.integration.store.conftest import database, db, drop_test_databases, journal

__all__ = ["database", "db", "drop_test_databases", "journal"]
