"""Migrating an empty database gives exactly the declared schema, on SQLite and on PostgreSQL.

The declared schema is `expected_schema_<dialect>.txt` beside this file: one block per table
with its columns (type, nullability, default), primary key, unique constraints, indexes (with
their `WHERE` for partial ones), foreign keys and checks; then views and triggers. A migration
that changes the schema changes that file in the same commit. To write the file from what the
migrations produce (then read the diff before committing it):

    SEAMFLOW_WRITE_EXPECTED_SCHEMA=1 pytest tests/integration/store/test_schema.py
"""

from __future__ import annotations

import difflib
import os
import re
import sqlite3
from pathlib import Path

import pytest

from seamflow.store import schema
from tests.support.db import Database

HERE = Path(__file__).parent


def _squash(sql: str) -> str:
    """One line, single spaces: the text of a definition without its layout."""
    return re.sub(r"\s+", " ", sql).strip()


# --- SQLite ------------------------------------------------------------------------------------


def _sqlite_checks(create_table: str) -> list[str]:
    """The CHECK clauses of a CREATE TABLE statement (SQLite keeps no catalog of them)."""
    found = []
    for match in re.finditer(r"\bCHECK\s*\(", create_table, re.IGNORECASE):
        depth, end = 1, match.end()
        while depth and end < len(create_table):
            depth += {"(": 1, ")": -1}.get(create_table[end], 0)
            end += 1
        found.append(_squash(create_table[match.end() : end - 1]))
    return found


def _sqlite_table(conn: sqlite3.Connection, table: str, create_table: str) -> list[str]:
    lines = [f"table {table}"]
    columns = conn.execute(f"PRAGMA table_xinfo({table})").fetchall()
    for _cid, name, kind, notnull, default, _pk, _hidden in columns:
        null = "NOT NULL" if notnull else "NULL"
        lines.append(f"  column {name} {kind or '(no type)'} {null}" + (f" DEFAULT {default}" if default else ""))
    key = [name for _cid, name, _kind, _nn, _d, pk, _h in sorted(columns, key=lambda c: c[5]) if pk]
    if key:
        lines.append(f"  primary key ({', '.join(key)})")
    indexes = sorted(conn.execute(f"PRAGMA index_list({table})").fetchall(), key=lambda row: row[1])
    for _seq, index, unique, origin, partial in indexes:
        names = [row[2] for row in conn.execute(f"PRAGMA index_info({index})").fetchall()]
        if origin == "pk":
            continue
        if origin == "u":
            lines.append(f"  unique ({', '.join(names)})")
            continue
        [(sql,)] = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (index,)).fetchall()
        where = f" WHERE {_squash(sql.split(' WHERE ', 1)[1])}" if partial else ""
        lines.append(f"  {'unique ' if unique else ''}index {index} ({', '.join(map(str, names))}){where}")
    for fk in sorted(conn.execute(f"PRAGMA foreign_key_list({table})").fetchall()):
        _id, _seq, target, column, to, on_update, on_delete, _match = fk
        lines.append(f"  foreign key ({column}) references {target} ({to}) on update {on_update} on delete {on_delete}")
    lines += [f"  check ({check})" for check in _sqlite_checks(create_table)]
    return lines


def sqlite_schema(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        assert schema.migrate(conn, "sqlite") == schema.latest_version("sqlite")
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
        ).fetchall()
        lines: list[str] = []
        for kind, name, _table, sql in rows:
            if kind == "table":
                lines += _sqlite_table(conn, name, sql)
        lines += [f"{kind} {name}: {_squash(sql)}" for kind, name, _t, sql in rows if kind in ("view", "trigger")]
        return lines
    finally:
        conn.close()


# --- PostgreSQL --------------------------------------------------------------------------------

_PG_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""
_PG_CONSTRAINTS = """
SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE k.connamespace = current_schema()::regnamespace
ORDER BY c.relname, k.contype, k.conname
"""
_PG_INDEXES = """
SELECT i.tablename, i.indexname, i.indexdef FROM pg_indexes i
WHERE i.schemaname = current_schema() AND NOT EXISTS (
    SELECT 1 FROM pg_constraint k WHERE k.conindid = (quote_ident(i.indexname))::regclass)
ORDER BY i.tablename, i.indexname
"""
_PG_OTHERS = """
SELECT 'view', viewname, definition FROM pg_views WHERE schemaname = current_schema()
UNION ALL
SELECT 'trigger', t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal
UNION ALL
SELECT 'sequence', sequencename, data_type::text FROM pg_sequences WHERE schemaname = current_schema()
ORDER BY 1, 2
"""
_CONSTRAINT_KINDS = {"p": "primary key", "u": "unique", "f": "foreign key", "c": "check", "x": "exclude"}


def _pg_index(definition: str) -> str:
    """`CREATE UNIQUE INDEX x ON public.t USING btree (a, b) WHERE …` → `unique index x (a, b) WHERE …`."""
    match = re.fullmatch(r"CREATE (UNIQUE )?INDEX (\S+) ON \S+ USING (\w+) (.*)", _squash(definition))
    assert match is not None, definition
    unique, name, method, rest = match.groups()
    return f"{'unique ' if unique else ''}index {name} {rest}" + ("" if method == "btree" else f" using {method}")


def postgres_schema(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        assert schema.migrate(conn, "postgres") == schema.latest_version("postgres")
        tables: dict[str, list[str]] = {}
        for table, name, kind, notnull, default, identity, generated in conn.execute(_PG_COLUMNS).fetchall():
            column = f"  column {name} {kind} {'NOT NULL' if notnull else 'NULL'}"
            column += f" DEFAULT {default}" if default and not generated else ""
            column += f" GENERATED {identity} AS IDENTITY" if identity else ""
            column += f" GENERATED ALWAYS AS {default} STORED" if generated else ""
            tables.setdefault(table, [f"table {table}"]).append(column)
        for table, name, kind, definition in conn.execute(_PG_CONSTRAINTS).fetchall():
            tables[table].append(f"  {_CONSTRAINT_KINDS.get(kind, kind)} {name}: {definition}")
        for table, _name, definition in conn.execute(_PG_INDEXES).fetchall():
            tables[table].append(f"  {_pg_index(definition)}")
        lines = [line for table in sorted(tables) for line in tables[table]]
        others = conn.execute(_PG_OTHERS).fetchall()
        return lines + [f"{kind} {name}: {_squash(str(text))}" for kind, name, text in others]


_HEADER = """\
# The schema the migrations give on {dialect} from an empty database (tests/integration/store/test_schema.py).
# A migration that changes the schema changes this file in the same commit; lines starting with # are ignored.
"""


# --- the test ----------------------------------------------------------------------------------


def test_migrating_an_empty_database_gives_exactly_the_declared_schema(database: Database) -> None:
    if database.url:
        actual = postgres_schema(database.url)
    else:
        assert database.path is not None
        database.path.parent.mkdir(parents=True, exist_ok=True)
        actual = sqlite_schema(database.path)
    expected_file = HERE / f"expected_schema_{database.backend}.txt"
    if os.environ.get("SEAMFLOW_WRITE_EXPECTED_SCHEMA"):
        header = _HEADER.format(dialect=database.backend)
        expected_file.write_text(header + "\n".join(actual) + "\n", encoding="utf-8")
    text = expected_file.read_text(encoding="utf-8")
    expected = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if actual != expected:
        diff = difflib.unified_diff(expected, actual, str(expected_file.name), "migrated from empty", lineterm="")
        pytest.fail(
            f"the migrations give a schema other than {expected_file.name} (- declared, + migrated):\n"
            + "\n".join(diff),
            pytrace=False,
        )
