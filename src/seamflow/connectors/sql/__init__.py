"""The `sql` connector: reads and writes tables of SQLite, PostgreSQL and MySQL/MariaDB databases.

`connector.py` holds the connector and its engine, `config.py` the connection settings,
`inputs.py` the actions, feeds and their inputs, `tables.py` the reflected tables and value
conversion, `statements.py` the work of each action, `bulk.py` many rows sent with one
prepared statement, `idempotency.py` the table that makes a retried write take effect
once, and `failure.py` the classification of driver errors. The feeds: `rows_feed.py`
(poll new and changed rows, with `position.py` for its cursor) and `notify_feed.py`
(PostgreSQL LISTEN); `stream.py` reads a large query in chunks and `check.py` proves a
connection works. See docs/howto/connectors/sql.md.
"""

from __future__ import annotations

from seamflow.connectors.sql.connector import SqlConnector

__all__ = ["SqlConnector"]
