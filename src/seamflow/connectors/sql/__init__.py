"""The `sql` connector: reads and writes tables of SQLite, PostgreSQL and MySQL/MariaDB databases.

`connector.py` holds the connector and its engine, `config.py` the connection settings,
`inputs.py` the actions and their inputs, `tables.py` the reflected tables and value
conversion, `statements.py` the work of each action, `idempotency.py` the table that
makes a retried write take effect once, and `failure.py` the classification of driver
errors. See docs/howto/connectors/sql.md.
"""

from __future__ import annotations

from seamflow.connectors.sql.connector import SqlConnector

__all__ = ["SqlConnector"]
