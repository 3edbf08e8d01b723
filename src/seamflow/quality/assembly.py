"""A migration put together from its file: the rules, the source and the target, resolved through
the project's connections (a connection's URL carries its password; it is never shown).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from seamflow import errors, flows, store
from seamflow.quality.mapping import Mapping, load_mapping
from seamflow.quality.migration import Migration
from seamflow.quality.rules import RuleSet, load_rules
from seamflow.quality.sources import Table, open_file, open_query
from seamflow.quality.targets import ActionWriter, SqlWriter, Writer

if TYPE_CHECKING:
    from seamflow import engine

__all__ = ["open_migration"]


def _url(pool: engine.Pool | None, connection: str | None, url: str | None, where: str) -> str:
    if url is not None:
        return url
    assert connection is not None  # the spec asks for exactly one
    if pool is None:
        raise errors.InvalidInput(f"{where}: connection {connection!r} needs a project", code="quality.source")
    config = pool.resolve(connection)
    found = config.config.get("url")
    if config.connector != "sql" or not isinstance(found, str):
        raise errors.InvalidInput(
            f"{where}: connection {connection!r} is a {config.connector or 'unknown'} connection; expected a sql one",
            code="quality.source",
        )
    return found


async def open_migration(path: Path, db: store.MigrationStore, pool: engine.Pool | None) -> tuple[Migration, Mapping]:
    """Read a migration file and build its migration (connections of an action target are opened).

    Raises:
        errors.FlowInvalid: the migration or rule file is invalid (file:line:column).
        errors.InvalidInput: a connection is missing or of the wrong kind.
    """
    mapping, _ = load_mapping(path)
    base = path.parent
    rules: RuleSet | None = load_rules(base / mapping.rules, mapping.rules) if mapping.rules else None
    source = mapping.source
    if source.file is not None:
        file = base / source.file

        def open_source(skip: int) -> Table:
            return open_file(file, encoding=source.encoding, sheet=source.sheet, skip=skip)

    else:
        assert source.sql is not None
        query = source.sql
        address = _url(pool, query.connection, query.url, "source.sql")

        def open_source(skip: int) -> Table:
            return open_query(address, query.query, skip=skip, name=query.connection or "source.sql")

    writer: Writer
    target = mapping.target
    if target.sql is not None:
        table = target.sql
        writer = SqlWriter(
            _url(pool, table.connection, table.url, "target.sql"),
            table.table,
            list(mapping.fields),
            mapping.key,
            create=table.create,
        )
    else:
        assert target.action is not None
        if pool is None:
            raise errors.InvalidInput("target.action needs a project with connections.yaml", code="quality.target")
        await pool.open([target.action.connection])
        connector: Any = pool.get(target.action.connection).connector
        inputs = None
        if target.action.with_ is not None:
            inputs = flows.Template.compile(
                target.action.with_, where="target.action.with", extra_names=frozenset({"row"})
            )
        writer = ActionWriter(
            connector, target.action.action, mapping.id, target.action.parallel, inputs, columns=list(mapping.fields)
        )
    if rules is not None and rules.rules.references:
        await load_references(rules, pool)
    return Migration(mapping, rules, open_source, writer, db), mapping


async def load_references(rules: RuleSet, pool: engine.Pool | None) -> None:
    """Read, through each reference's connection and action, the values another system holds.

    The action's answer is a list of records, or an object whose `rows` or `items` is one; each
    record's `key` field is a value the rule's field may take.

    Raises:
        errors.InvalidInput: `quality.reference` — no project, or an answer without records.
    """
    for reference in rules.rules.references:
        if pool is None:
            raise errors.InvalidInput(
                f"references: {reference.field} reads {reference.connection}, which needs a project",
                code="quality.reference",
            )
        await pool.open([reference.connection])
        connector: Any = pool.get(reference.connection).connector
        answer = await connector.call(
            reference.action, dict(reference.with_), idempotency_key=f"reference:{rules.id}:{reference.field}"
        )
        records = answer.get("rows", answer.get("items")) if isinstance(answer, dict) else answer
        if not isinstance(records, list):
            raise errors.InvalidInput(
                f"references: {reference.connection}.{reference.action} answered no list of records"
                " (expected a list, or rows/items holding one)",
                code="quality.reference",
            )
        values = [record.get(reference.key) for record in records if isinstance(record, dict)]
        rules.set_reference_values(reference.field, [value for value in values if value is not None])
