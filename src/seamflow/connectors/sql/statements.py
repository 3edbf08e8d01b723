"""The work of each action, run in a worker thread on one database connection.

Every statement is built by SQLAlchemy from reflected tables, so names are quoted by
the dialect and every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy
from sqlalchemy import Table, and_, delete, insert, text, update
from sqlalchemy.dialects import mysql, postgresql, sqlite

from seamflow import errors
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

__all__ = ["bulk_insert", "call", "delete_rows", "insert_rows", "query", "update_rows", "upsert_rows"]

_UPSERT_CHUNK = 500
"""Rows per multi-row `INSERT … ON CONFLICT` statement."""


def query(conn: sqlalchemy.Connection, inputs: QueryInput, where: str) -> Json:
    """Run `inputs.sql` with its named parameters; return `{"rows": [...], "count": n}`."""
    statement = text(inputs.sql)
    used = set(statement.compile().params)
    missing, unused = sorted(used - set(inputs.params)), sorted(set(inputs.params) - used)
    if missing or unused:
        problems = [f"no value for :{name}" for name in missing] + [f"params.{name} is not used" for name in unused]
        raise errors.Permanent(
            "; ".join(problems) + "; expected a value in params for each :name in sql, and no other", where=where
        )
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
    return {"rows": [_row_json(row) for row in rows], "count": len(rows)}


def insert_rows(conn: sqlalchemy.Connection, tables: Tables, inputs: InsertInput, where: str) -> Json:
    """Insert each row; return `{"count": n, "keys": [primary key of each row]}`."""
    rows = inputs.all_rows()
    table = tables.get(conn, inputs.table, _columns(rows, where), where)
    keys: list[Json] = []
    for row in rows:
        result = conn.execute(insert(table).values(bind_row(table, row, where)))
        primary = result.inserted_primary_key or ()
        keys.append({c.name: to_json(v) for c, v in zip(table.primary_key.columns, primary, strict=False)})
    return {"count": len(rows), "keys": keys}


def bulk_insert(conn: sqlalchemy.Connection, tables: Tables, inputs: BulkInsertInput, where: str) -> Json:
    """Insert the rows in chunks of `chunk_size` (one executemany each); return `{"count": n}`."""
    table = tables.get(conn, inputs.table, _columns(inputs.rows, where), where)
    bound = [bind_row(table, row, where) for row in inputs.rows]
    for start in range(0, len(bound), inputs.chunk_size):
        conn.execute(insert(table), bound[start : start + inputs.chunk_size])
    return {"count": len(bound)}


def upsert_rows(conn: sqlalchemy.Connection, tables: Tables, inputs: UpsertInput, where: str) -> Json:
    """Insert the rows, updating the other given columns of a row whose key exists; return `{"count": n}`."""
    rows = inputs.all_rows()
    columns = _columns(rows, where)
    missing = [k for k in inputs.key if k not in columns]
    if missing:
        raise errors.Permanent(f"key column {', '.join(map(repr, missing))} is not in the rows", where=where)
    table = tables.get(conn, inputs.table, columns, where)
    changed = [c for c in columns if c not in inputs.key]
    bound = [bind_row(table, row, where) for row in rows]
    for start in range(0, len(bound), _UPSERT_CHUNK):
        conn.execute(_upsert(conn.dialect.name, table, bound[start : start + _UPSERT_CHUNK], inputs.key, changed))
    return {"count": len(bound)}


def _upsert(
    dialect: str, table: Table, rows: list[dict[str, Any]], key: Sequence[str], changed: Sequence[str]
) -> sqlalchemy.Executable:
    """`INSERT … ON CONFLICT (key) DO UPDATE` (PostgreSQL, SQLite) or `… ON DUPLICATE KEY UPDATE` (MySQL)."""
    if dialect in ("postgresql", "sqlite"):
        stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).values(rows)
        index = [table.c[k] for k in key]
        if not changed:
            return stmt.on_conflict_do_nothing(index_elements=index)
        return stmt.on_conflict_do_update(index_elements=index, set_={c: stmt.excluded[c] for c in changed})
    # MySQL/MariaDB match any unique key; with nothing to change, setting a key column to itself is a no-op.
    my = mysql.insert(table).values(rows)
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
    rows = [_row_json(row) for row in result.mappings()] if result.returns_rows else []
    result.close()
    return {"rows": rows, "count": len(rows)}


def _matching(table: Table, equal: Mapping[str, Json], where: str) -> sqlalchemy.ColumnElement[bool]:
    bound = bind_row(table, equal, where)
    return and_(*(table.c[name] == value for name, value in bound.items()))


def _columns(rows: Sequence[Mapping[str, Json]], where: str) -> list[str]:
    """The columns shared by all rows, which must all name the same ones."""
    first = list(rows[0])
    if not first:
        raise errors.Permanent("a row has no columns; expected at least one column: value", where=where)
    for index, row in enumerate(rows):
        if set(row) != set(first):
            raise errors.Permanent(
                f"rows[{index}] has columns {sorted(row)}; expected the same columns as rows[0]: {sorted(first)}",
                where=where,
            )
    return first


def _row_json(row: sqlalchemy.RowMapping) -> Json:
    return {str(name): to_json(value) for name, value in row.items()}
