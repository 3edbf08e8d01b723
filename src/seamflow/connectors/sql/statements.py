"""The work of each action, run in a worker thread on one database connection.

Every statement is built by SQLAlchemy from reflected tables, so names are quoted by
the dialect and every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy
from sqlalchemy import Table, and_, delete, insert, text, update
from sqlalchemy.dialects import mysql, postgresql, sqlite

from seamflow import errors
from seamflow.connectors.sql.bulk import execute_many, same_columns
from seamflow.connectors.sql.inputs import (
    BulkInsertInput,
    CallInput,
    DeleteInput,
    InsertInput,
    QueryInput,
    UpdateInput,
    UpsertInput,
)
from seamflow.connectors.sql.tables import Tables, bind_row, to_json
from seamflow.ids import Json

__all__ = [
    "bulk_insert",
    "call",
    "check_params",
    "delete_rows",
    "insert_rows",
    "query",
    "row_json",
    "update_rows",
    "upsert_rows",
]


def query(conn: sqlalchemy.Connection, inputs: QueryInput, where: str) -> Json:
    """Run `inputs.sql` with its named parameters; return `{"rows": [...], "count": n}`."""
    statement = text(inputs.sql)
    check_params(statement, inputs.params, where)
    result = conn.execute(statement, inputs.params)
    if not result.returns_rows:
        return {"rows": [], "count": result.rowcount}
    rows = result.mappings().fetchmany(inputs.max_rows + 1)
    result.close()
    if len(rows) > inputs.max_rows:
        raise errors.Permanent(
            f"the query returned more than max_rows={inputs.max_rows} rows; expected a LIMIT or a larger max_rows",
            where=where,
        )
    return {"rows": [row_json(row) for row in rows], "count": len(rows)}


def check_params(statement: sqlalchemy.TextClause, params: Mapping[str, Json], where: str) -> None:
    """Check that `params` gives a value for each `:name` of `statement`, and no other.

    Raises:
        errors.Permanent: naming each missing and each unused parameter.
    """
    used = set(statement.compile().params)
    missing, unused = sorted(used - set(params)), sorted(set(params) - used)
    if missing or unused:
        problems = [f"no value for :{name}" for name in missing] + [f"params.{name} is not used" for name in unused]
        raise errors.Permanent(
            "; ".join(problems) + "; expected a value in params for each :name in sql, and no other", where=where
        )


def insert_rows(conn: sqlalchemy.Connection, tables: Tables, inputs: InsertInput, where: str) -> Json:
    """Insert each row; return `{"count": n, "keys": [primary key of each row]}`."""
    rows = inputs.all_rows()
    table = tables.get(conn, inputs.table, same_columns(rows, where), where)
    keys: list[Json] = []
    for row in rows:
        result = conn.execute(insert(table).values(bind_row(table, row, where)))
        primary = result.inserted_primary_key or ()
        keys.append({c.name: to_json(v) for c, v in zip(table.primary_key.columns, primary, strict=False)})
    return {"count": len(rows), "keys": keys}


def bulk_insert(conn: sqlalchemy.Connection, tables: Tables, inputs: BulkInsertInput, where: str) -> Json:
    """Insert the rows in chunks of `chunk_size` (one executemany each); return `{"count": n}`."""
    columns = same_columns(inputs.rows, where)
    table = tables.get(conn, inputs.table, columns, where)
    execute_many(conn, insert(table), inputs.rows, inputs.chunk_size, where)
    return {"count": len(inputs.rows)}


def upsert_rows(conn: sqlalchemy.Connection, tables: Tables, inputs: UpsertInput, where: str) -> Json:
    """Insert the rows, updating the other given columns of a row whose key exists; return `{"count": n}`.

    One prepared statement runs for every row (`executemany`, `chunk_size` rows per call), so a
    key that appears twice in `rows` is simply written twice: the later row wins.
    """
    rows = inputs.all_rows()
    columns = same_columns(rows, where)
    missing = [k for k in inputs.key if k not in columns]
    if missing:
        raise errors.Permanent(f"key column {', '.join(map(repr, missing))} is not in the rows", where=where)
    table = tables.get(conn, inputs.table, columns, where)
    changed = [c for c in columns if c not in inputs.key]
    execute_many(conn, _upsert(conn.dialect.name, table, inputs.key, changed), rows, inputs.chunk_size, where)
    return {"count": len(rows)}


def _upsert(dialect: str, table: Table, key: Sequence[str], changed: Sequence[str]) -> sqlalchemy.Insert:
    """`INSERT … ON CONFLICT (key) DO UPDATE` (PostgreSQL, SQLite) or `… ON DUPLICATE KEY UPDATE` (MySQL)."""
    if dialect in ("postgresql", "sqlite"):
        stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        index = [table.c[k] for k in key]
        if not changed:
            return stmt.on_conflict_do_nothing(index_elements=index)
        return stmt.on_conflict_do_update(index_elements=index, set_={c: stmt.excluded[c] for c in changed})
    # MySQL/MariaDB match any unique key; with nothing to change, setting a key column to itself is a no-op.
    my = mysql.insert(table)
    return my.on_duplicate_key_update({c: my.inserted[c] for c in changed} or {key[0]: table.c[key[0]]})


def update_rows(conn: sqlalchemy.Connection, tables: Tables, inputs: UpdateInput, where: str) -> Json:
    """Set `values` on the rows matching `where`; return `{"count": rows matched}`."""
    table = tables.get(conn, inputs.table, [*inputs.values, *inputs.where], where)
    condition = _matching(table, inputs.where, where)
    result = conn.execute(update(table).where(condition).values(bind_row(table, inputs.values, where)))
    return {"count": result.rowcount}


def delete_rows(conn: sqlalchemy.Connection, tables: Tables, inputs: DeleteInput, where: str) -> Json:
    """Delete the rows matching `where`; return `{"count": rows deleted}`."""
    table = tables.get(conn, inputs.table, list(inputs.where), where)
    result = conn.execute(delete(table).where(_matching(table, inputs.where, where)))
    return {"count": result.rowcount}


def call(conn: sqlalchemy.Connection, inputs: CallInput, where: str) -> Json:
    """`CALL procedure(args…)`; return the rows it answers, `{"rows": [...], "count": n}`."""
    if conn.dialect.name == "sqlite":
        raise errors.Permanent("stored procedures are not supported by SQLite", where=where)
    quote = conn.dialect.identifier_preparer
    schema, _, name = inputs.procedure.rpartition(".")
    target = (quote.quote_schema(schema) + "." if schema else "") + quote.quote(name)
    names = [f"arg{i}" for i in range(len(inputs.args))]
    # The procedure name was checked against IDENTIFIER and is quoted by the dialect; arguments are bound.
    statement = text(f"CALL {target}({', '.join(':' + n for n in names)})")
    result = conn.execute(statement, dict(zip(names, inputs.args, strict=True)))
    rows = [row_json(row) for row in result.mappings()] if result.returns_rows else []
    result.close()
    return {"rows": rows, "count": len(rows)}


def _matching(table: Table, equal: Mapping[str, Json], where: str) -> sqlalchemy.ColumnElement[bool]:
    bound = bind_row(table, equal, where)
    return and_(*(table.c[name] == value for name, value in bound.items()))


def row_json(row: sqlalchemy.RowMapping) -> Json:
    """A row read by a statement as a JSON object (see `tables.to_json`)."""
    return {str(name): to_json(value) for name, value in row.items()}
