"""The store under test on both backends (fixtures in tests/support/store_fixtures.py)."""

from tests.support.store_fixtures import database, db, drop_test_databases

__all__ = ["database", "db", "drop_test_databases"]
