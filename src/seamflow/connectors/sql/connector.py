"""The `sql` connector: reads and writes a database from a step, such as `erp_db.upsert`.

Each connection owns one SQLAlchemy engine with a pool of `pool_size` database connections.
SQLAlchemy and its drivers block, so every call runs in a worker thread (`_run`); at most
`pool_size` calls of a connection are in flight at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import ClassVar

import sqlalchemy
from pydantic import BaseModel, ValidationError

from seamflow import errors
from seamflow.connectors.base import Action, Connection
from seamflow.connectors.sql import statements
from seamflow.connectors.sql.config import SqlConfig, open_engine
from seamflow.connectors.sql.failure import classify
from seamflow.connectors.sql.idempotency import Ledger
from seamflow.connectors.sql.inputs import (
    ACTIONS,
    BulkInsertInput,
    CallInput,
    DeleteInput,
    InsertInput,
    QueryInput,
    UpdateInput,
    UpsertInput,
)
from seamflow.connectors.sql.tables import Tables
from seamflow.ids import Json

__all__ = ["SqlConnector"]

_Work = Callable[[sqlalchemy.Connection], Json]


class SqlConnector:
    """Reads and writes SQLite, PostgreSQL and MySQL/MariaDB: `query`, `insert`, `upsert`, `update`,
    `delete`, `bulk_insert`, `call`.

    Every write action is idempotent by key: it runs in one transaction with an insert of
    the step's idempotency key into the table `seamflow_idempotency`, and a key found
    there returns the stored result without writing again. `query` only reads: its
    transaction is rolled back.
    """

    kind: ClassVar[str] = "sql"
    Config: ClassVar[type[BaseModel]] = SqlConfig
    actions: ClassVar[Mapping[str, Action]] = ACTIONS

    def __init__(self) -> None:
        self._engine: sqlalchemy.Engine | None = None
        self._ledger: Ledger | None = None
        self._tables = Tables()
        self._name = "sql"
        self._timeout_s = 30.0
        self._slots = asyncio.Semaphore(1)

    async def open(self, connection: Connection) -> None:
        """Validate the connection's config, remember its password and build its engine.

        No database connection is made until the first call, so a database that is down
        at start-up shows as Transient failures of steps, not as a failed start.

        Raises:
            errors.InvalidInput: the config is wrong; names the connection and field, never the URL.
        """
        engine, config = open_engine(connection)
        await self.close()  # opening again replaces the engine
        self._engine, self._ledger, self._tables = engine, Ledger(engine), Tables()
        self._name = connection.name
        self._slots = asyncio.Semaphore(config.pool_size)
        # The pool and the server bound each statement; this bounds the whole call, pool wait included.
        statement = config.statement_timeout or connection.timeout
        self._timeout_s = connection.timeout.total_seconds() + statement.total_seconds() + 1

    async def close(self) -> None:
        """Close the pool's database connections."""
        engine, self._engine, self._ledger = self._engine, None, None
        if engine is not None:
            await asyncio.to_thread(engine.dispose)

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Perform one action and return its result.

        Args:
            action: `query`, `insert`, `upsert`, `update`, `delete`, `bulk_insert` or `call`.
            params: the step's `with` inputs (see `inputs.py`).
            idempotency_key: recorded with every write in `seamflow_idempotency`, in the same transaction.

        Raises:
            errors.Transient: the database is unreachable, timed out, or broke a deadlock or
                serialization conflict.
            errors.Permanent: bad inputs, an unknown table or column, a syntax error or a
                broken constraint.
        """
        where = f"{self._name}.{action}"
        work = self._work(action, params, where)
        if self._engine is None or self._ledger is None:
            raise errors.SeamflowError(f"{where}: connection not open", code="connector.closed")
        engine, ledger = self._engine, self._ledger

        def run() -> Json:
            if action == "query":
                with engine.connect() as conn:  # closing without commit rolls back
                    return work(conn)
            return ledger.run_once(idempotency_key, work)

        async with self._slots:
            try:
                async with asyncio.timeout(self._timeout_s):
                    return await asyncio.to_thread(_run, run, where)
            except TimeoutError:
                raise errors.Transient(f"no answer within {self._timeout_s:g} s", where=where) from None

    def _work(self, action: str, params: Json, where: str) -> _Work:
        """The validated inputs, bound to the statement function of `action`."""
        spec = ACTIONS.get(action)
        if spec is None:
            raise errors.Permanent(
                f"unknown action {errors.redact(action)}; expected one of {', '.join(ACTIONS)}", where=where
            )
        try:
            inputs = spec.input.model_validate(params)
        except ValidationError as exc:
            problems = "; ".join(
                f"with.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            raise errors.Permanent(f"invalid input: {problems}", where=where) from None
        tables = self._tables
        match inputs:
            case QueryInput():
                return lambda conn: statements.query(conn, inputs, where)
            case InsertInput():
                return lambda conn: statements.insert_rows(conn, tables, inputs, where)
            case UpsertInput():
                return lambda conn: statements.upsert_rows(conn, tables, inputs, where)
            case UpdateInput():
                return lambda conn: statements.update_rows(conn, tables, inputs, where)
            case DeleteInput():
                return lambda conn: statements.delete_rows(conn, tables, inputs, where)
            case BulkInsertInput():
                return lambda conn: statements.bulk_insert(conn, tables, inputs, where)
            case CallInput():
                return lambda conn: statements.call(conn, inputs, where)
        raise AssertionError(f"no statement for {type(inputs).__name__}")


def _run(work: Callable[[], Json], where: str) -> Json:
    """Run blocking database work (in a worker thread); no SQLAlchemy or driver error leaves here."""
    try:
        return work()
    except errors.ConnectorError:
        raise
    except (sqlalchemy.exc.SQLAlchemyError, OSError, ValueError, TypeError) as exc:
        # from None: SQLAlchemy's text carries the statement's parameters; `classify` keeps the driver's message.
        raise classify(exc, where) from None
