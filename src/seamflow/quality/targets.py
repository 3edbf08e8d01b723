"""Where a migration writes: a SQL table (upserts on the key, a batch per transaction) or a
connector action (one call per row, with an idempotency key made from the row's key).

Both are idempotent: a batch written again after a crash changes nothing, so a resumed migration
never doubles a row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from seamflow import errors

if TYPE_CHECKING:
    from seamflow import connectors, flows

__all__ = ["ActionWriter", "SqlWriter", "Writer"]


class Writer(Protocol):
    """Writes one batch of rows; each row holds the values of the target fields, in the mapping's order."""

    async def write(self, rows: Sequence[Sequence[Any]], keys: Sequence[str]) -> None: ...

    async def close(self) -> None: ...


class SqlWriter:
    """Upserts rows into one table of a SQLite, PostgreSQL or MySQL/MariaDB database.

    Args:
        url: the database's SQLAlchemy URL.
        table: the table, optionally `schema.table`.
        columns: the target fields, in order.
        key: the fields a unique key (or the primary key) of the table covers.
        create: create the table when it is missing (text columns, `key` as primary key).
    """

    def __init__(self, url: str, table: str, columns: Sequence[str], key: Sequence[str], *, create: bool) -> None:
        import sqlalchemy

        self._engine = sqlalchemy.create_engine(url)
        self._table, self._columns, self._key, self._create = table, list(columns), list(key), create
        self._is_sqlite = self._engine.dialect.name == "sqlite"
        # psycopg 3 on PostgreSQL: a batch is COPYed into a staging table, then upserted by one statement
        self._copies = self._engine.dialect.name == "postgresql" and self._engine.dialect.driver == "psycopg"
        self._sql: str | None = None
        self._staged: tuple[str, str, str] | None = None

    def _prepare(self) -> str:
        import sqlalchemy

        schema, _, name = self._table.rpartition(".")
        inspector = sqlalchemy.inspect(self._engine)
        if not inspector.has_table(name, schema=schema or None):
            if not self._create:
                raise errors.InvalidInput(
                    f"target table {self._table} does not exist; create it or set `create: true`", code="quality.target"
                )
            metadata = sqlalchemy.MetaData()
            sqlalchemy.Table(
                name,
                metadata,
                *(sqlalchemy.Column(c, sqlalchemy.Text, primary_key=c in self._key) for c in self._columns),
                schema=schema or None,
            ).create(self._engine)
            inspector = sqlalchemy.inspect(self._engine)
        present = {column["name"] for column in inspector.get_columns(name, schema=schema or None)}
        missing = [c for c in self._columns if c not in present]
        if missing:
            raise errors.InvalidInput(
                f"target table {self._table} has no column {', '.join(missing)}; expected the mapping's fields",
                code="quality.target",
            )
        dialect = self._engine.dialect
        quote = dialect.identifier_preparer.quote
        table = ".".join(quote(part) for part in self._table.split("."))
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        names = ", ".join(quote(c) for c in self._columns)
        values = ", ".join(marker for _ in self._columns)
        others = [c for c in self._columns if c not in self._key]
        if dialect.name in ("mysql", "mariadb"):
            update = (
                ", ".join(f"{quote(c)} = VALUES({quote(c)})" for c in others)
                or f"{quote(self._key[0])} = {quote(self._key[0])}"
            )
            # identifiers are the mapping's, checked against the table's columns and quoted by the dialect
            return f"INSERT INTO {table} ({names}) VALUES ({values}) ON DUPLICATE KEY UPDATE {update}"  # noqa: S608
        conflict = ", ".join(quote(c) for c in self._key)
        action = (
            "DO UPDATE SET " + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in others)
            if others
            else "DO NOTHING"
        )
        if self._copies:
            staging = "seamflow_migration_staging"
            self._staged = (
                f"CREATE TEMPORARY TABLE {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP",
                f"COPY {staging} ({names}) FROM STDIN",
                # identifiers as above; one statement upserts the whole staged batch
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} ON CONFLICT ({conflict}) {action}",  # noqa: S608
            )
        return f"INSERT INTO {table} ({names}) VALUES ({values}) ON CONFLICT ({conflict}) {action}"  # noqa: S608

    def _write(self, rows: Sequence[Sequence[Any]]) -> None:
        import sqlalchemy

        if self._sql is None:
            self._sql = self._prepare()
        params = [tuple(map(_sqlite_value, row)) for row in rows] if self._is_sqlite else rows
        try:
            with self._engine.begin() as conn:
                if self._staged is not None:
                    self._copy(conn.connection.dbapi_connection, rows)
                else:
                    conn.exec_driver_sql(self._sql, params)
        except sqlalchemy.exc.OperationalError as exc:  # the database went away or is busy: write the batch again
            detail = str(exc.orig or exc).splitlines()[0]
            raise errors.Transient(
                f"writing to {self._table} failed: {errors.redact(detail)}", where=self._table
            ) from None
        except sqlalchemy.exc.SQLAlchemyError as exc:  # the table does not fit the mapping (no unique key, a type)
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise errors.InvalidInput(
                f"writing to {self._table} failed: {errors.redact(detail)}; expected a unique key on the mapping's key",
                code="quality.target",
            ) from None

    def _copy(self, connection: Any, rows: Sequence[Sequence[Any]]) -> None:
        """COPY `rows` into a staging table that lives until the transaction ends, then upsert them all.

        A key repeated within the batch keeps its last row when rows are updated on conflict (as
        row-by-row upserts would leave it) and its first when they are not; one statement may not
        touch a row twice.
        """
        assert self._staged is not None
        create, copy_sql, upsert = self._staged
        where = [self._columns.index(c) for c in self._key]
        latest = len(self._columns) > len(self._key)
        unique: dict[tuple[Any, ...], Sequence[Any]] = {}
        for row in rows if latest else reversed(rows):
            unique[tuple(row[i] for i in where)] = row
        with connection.cursor() as cursor:
            cursor.execute(create)
            with cursor.copy(copy_sql) as copy:
                for row in unique.values():
                    copy.write_row(row)
            cursor.execute(upsert)

    async def write(self, rows: Sequence[Sequence[Any]], keys: Sequence[str]) -> None:
        """Upsert `rows` (values in the order of `columns`) in one transaction.

        Raises:
            errors.InvalidInput: `quality.target` — the table or a column is missing.
            errors.Transient: the database refused or went away; the batch can be written again.
        """
        if rows:
            await asyncio.to_thread(self._write, rows)

    async def close(self) -> None:
        self._engine.dispose()


def _sqlite_value(value: object) -> object:
    return str(value) if isinstance(value, Decimal) else value


class ActionWriter:
    """Calls a connector action once per row, `parallel` at a time, with the key `migrate:<id>:<row key>`."""

    def __init__(
        self,
        connector: connectors.Connector,
        action: str,
        migration_id: str,
        parallel: int,
        inputs: flows.Template | None = None,
        columns: Sequence[str] = (),
    ) -> None:
        """Args:
        inputs: the action's inputs rendered per row (`{"table": "members", "row": "{{ row }}"}`);
            None: the row itself is the input.
        columns: the target fields, in the order of each row's values.
        """
        self._connector, self._action, self._id, self._inputs = connector, action, migration_id, inputs
        self._columns = list(columns)
        self._gate = asyncio.Semaphore(parallel)

    async def _call(self, row: Sequence[Any], key: str) -> None:
        plain = {
            name: str(value) if isinstance(value, Decimal) else value
            for name, value in zip(self._columns, row, strict=True)
        }
        params = self._inputs.render({"row": plain}) if self._inputs is not None else plain
        async with self._gate:
            await self._connector.call(self._action, params, idempotency_key=f"migrate:{self._id}:{key}")

    async def write(self, rows: Sequence[Sequence[Any]], keys: Sequence[str]) -> None:
        """Call the action for each row; the first failure stops the batch (it is written again on resume)."""
        async with asyncio.TaskGroup() as group:
            for row, key in zip(rows, keys, strict=True):
                group.create_task(self._call(row, key))

    async def close(self) -> None:
        """The connection belongs to the caller's pool, which closes it."""
