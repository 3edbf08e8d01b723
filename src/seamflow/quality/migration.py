"""A data migration (`seamflow migrate`): source rows through the rules into the target, in batches,
resumable, with every bad row quarantined with the rule it broke.

Each batch is read, checked, written to the target (upserts on the key, so writing a batch twice
changes nothing), and then its checkpoint — the position after it, its counts and its quarantined
rows — commits in one store transaction. After a Ctrl-C, a crash or `kill -9`, the next run starts
after the last checkpoint; the batch that was in flight is written again, without doubles. One
process runs a migration at a time: it holds the migration's lease and renews it per batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import compress, count, islice, repeat
from operator import is_, not_
from typing import Any

from seamflow import clock, errors, store
from seamflow.quality.mapping import Mapping
from seamflow.quality.rules import RuleSet, Violation
from seamflow.quality.sources import Table
from seamflow.quality.targets import Writer

__all__ = ["Migration", "MigrationOptions", "MigrationReport", "ResubmitReport"]

_LEASE = timedelta(minutes=5)


@dataclass(slots=True)
class MigrationReport:
    """What a migration did, in all (across resumed runs) and in this run."""

    migration_id: str
    read: int = 0
    """Source rows settled in all: loaded + quarantined."""
    loaded: int = 0
    fixed: int = 0
    """Loaded rows that a normaliser changed."""
    quarantined: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    """Quarantined rows per broken rule (a row may break several)."""
    read_now: int = 0
    """Source rows read by this run."""
    resumed_at: int = 0
    """The position this run started from (0: from the start)."""
    total: int | None = None
    """The source's rows, when known (files: estimated from their lines)."""
    is_dry_run: bool = False
    already_finished: bool = False
    finished: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "migration": self.migration_id,
            "read": self.read,
            "loaded": self.loaded,
            "fixed": self.fixed,
            "quarantined": self.quarantined,
            "by_rule": dict(sorted(self.by_rule.items())),
            "read_now": self.read_now,
            "resumed_at": self.resumed_at,
            "dry_run": self.is_dry_run,
            "finished": self.finished,
        }


@dataclass(slots=True)
class ResubmitReport:
    """What a re-submission of quarantined rows did."""

    loaded: int = 0
    still_quarantined: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MigrationOptions:
    """How a migration runs."""

    is_dry_run: bool = False
    """Read and check every row, write nothing and store nothing."""
    restart: bool = False
    """Start from the first row again (the checkpoint, counts and open quarantine are dropped)."""
    on_progress: Callable[[MigrationReport], None] | None = None
    """Called after each batch."""


@dataclass(slots=True)
class _Batch:
    good: list[tuple[Any, ...]] = field(default_factory=list)
    """The good rows' values in the mapping's field order."""
    keys: list[str] = field(default_factory=list)
    fixed: int = 0
    bad: list[store.QuarantinedRow] = field(default_factory=list)
    by_rule: dict[str, int] = field(default_factory=dict)


class Migration:
    """One migration: a mapping, its rules, a way to open the source at a position, a target and the store.

    Args:
        mapping: the migration file.
        rules: its rule set (None: only the key is required).
        open_source: opens the source after its first `skip` rows.
        writer: the target.
        db: where checkpoints and the quarantine are kept.
    """

    def __init__(
        self,
        mapping: Mapping,
        rules: RuleSet | None,
        open_source: Callable[[int], Table],
        writer: Writer,
        db: store.MigrationStore,
    ) -> None:
        self._mapping, self._rules, self._open, self._writer, self._db = mapping, rules, open_source, writer, db
        self._owner = store.local_holder("migrate")

    async def run(self, options: MigrationOptions) -> MigrationReport:
        """Migrate every row the checkpoint has not passed.

        Raises:
            errors.Conflict: `quality.migration_running` — another live process runs this migration.
            errors.InvalidInput: the source lacks a mapped column, or the target does not fit.
            errors.Transient: the target stayed unreachable; the checkpoint is kept.
        """
        report = MigrationReport(self._mapping.id, is_dry_run=options.is_dry_run)
        if options.is_dry_run:
            state = None
        else:
            state = await self._claim(options.restart)
            _take_counts(report, state)
            if state.finished is not None:
                report.already_finished = report.finished = True
                await self._db.finish_migration(self._mapping.id, self._owner, clock.now())
                return report
        report.resumed_at = report.read
        table = await asyncio.to_thread(self._open, report.read)
        try:
            report.total = table.total_rows
            await self._run_batches(table, report, options)
        except BaseException:
            if not options.is_dry_run:
                await asyncio.shield(self._db.release_migration(self._mapping.id, self._owner))
            raise
        finally:
            await asyncio.to_thread(table.close)
        if not options.is_dry_run:
            await self._db.finish_migration(self._mapping.id, self._owner, clock.now())
        report.finished = True
        return report

    async def _run_batches(self, table: Table, report: MigrationReport, options: MigrationOptions) -> None:
        """Read, check and commit batch after batch; a batch's commit (target write, then checkpoint)
        runs while the next batch is read and checked, and commits stay in order."""
        positions = self._positions(table)
        size = self._mapping.batch
        pending: asyncio.Task[None] | None = None
        try:
            while True:
                cells = await asyncio.to_thread(lambda: list(islice(table.rows, size)))
                if not cells:
                    break
                batch = self._check(cells, positions, report.read)
                start = report.read
                report.read += len(cells)  # the position this batch's checkpoint stores
                if pending is not None:
                    await pending
                pending = asyncio.create_task(self._commit(batch, start, len(cells), report, options))
            if pending is not None:
                await pending
                pending = None
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    async def _commit(
        self, batch: _Batch, start: int, count: int, report: MigrationReport, options: MigrationOptions
    ) -> None:
        if not options.is_dry_run:
            await self._writer.write(batch.good, batch.keys)
            checkpoint = store.MigrationCheckpoint(
                position=start + count,
                loaded=len(batch.good),
                fixed=batch.fixed,
                quarantined=batch.bad,
                by_rule=batch.by_rule,
                lease_until=clock.now() + _LEASE,
            )
            if not await self._db.save_migration_batch(self._mapping.id, self._owner, checkpoint, clock.now()):
                raise errors.Conflict(
                    f"migration {self._mapping.id} was taken over by another process",
                    code="quality.migration_running",
                )
        report.read_now += count
        report.loaded += len(batch.good)
        report.fixed += batch.fixed
        report.quarantined += len(batch.bad)
        for rule, count_of_rule in batch.by_rule.items():
            report.by_rule[rule] = report.by_rule.get(rule, 0) + count_of_rule
        if options.on_progress is not None:
            options.on_progress(report)

    def _positions(self, table: Table) -> list[tuple[str, int]]:
        index = {name: position for position, name in enumerate(table.columns)}
        missing = [column for column in self._mapping.fields.values() if column not in index]
        if missing:
            raise errors.InvalidInput(
                f"source {table.name} has no column {', '.join(map(repr, missing))};"
                f" its columns are {', '.join(table.columns)}",
                code="quality.source",
            )
        return [(target, index[column]) for target, column in self._mapping.fields.items()]

    def _check(self, cells: Sequence[list[Any]], positions: list[tuple[str, int]], start: int) -> _Batch:
        """Settle a batch column by column: the rules' verdicts, the key, the good rows as tuples in
        the mapping's field order, the bad rows with what they broke."""
        size = len(cells)
        columns = _columns(cells, positions)
        if self._rules is not None:
            found = self._rules.check_batch(columns, size)
            values, bad, fixed = found.values, found.violations, found.fixed
        else:
            values, bad, fixed = dict(columns), {}, set()
        for name in self._mapping.key:
            for index in compress(count(), map(is_, values[name], repeat(None))):
                broken = bad.setdefault(index, [])
                if not any(v.rule.startswith(f"{name}.") for v in broken):
                    broken.append(Violation(f"{name}.required", "is missing (a key field)"))
        key = self._mapping.key
        if len(key) == 1:
            keys = list(map(str, values[key[0]]))
        else:
            keys = list(map(_joined, zip(*(values[k] for k in key), strict=True)))
        rows = zip(*(values[name] for name in self._mapping.fields), strict=True)
        batch = _Batch()
        if not bad:
            batch.good, batch.keys = list(rows), keys
        else:
            keep = list(map(not_, map(bad.__contains__, range(size))))
            batch.good, batch.keys = list(compress(rows, keep)), list(compress(keys, keep))
            batch.fixed = len(fixed.difference(bad))
            for index in sorted(bad):
                self._quarantine(
                    start + index + 1, keys[index], {n: c[index] for n, c in columns.items()}, bad[index], batch
                )
            return batch
        batch.fixed = len(fixed)
        return batch

    @staticmethod
    def _quarantine(number: int, key: str, record: dict[str, Any], violations: list[Violation], batch: _Batch) -> None:
        batch.bad.append(
            store.QuarantinedRow(
                number, key, {name: _json(value) for name, value in record.items()}, [v.as_json() for v in violations]
            )
        )
        for rule in {v.rule for v in violations}:
            batch.by_rule[rule] = batch.by_rule.get(rule, 0) + 1

    def _settle(self, record: dict[str, Any], number: int, batch: _Batch) -> None:
        fields = self._mapping.fields
        if self._rules is not None:
            outcome = self._rules.check(record)
            values, violations, fixed = outcome.values, outcome.violations, bool(outcome.fixed)
        else:
            values, violations, fixed = record, [], False
        for name in self._mapping.key:
            if values.get(name) is None and not any(v.rule.startswith(f"{name}.") for v in violations):
                violations.append(Violation(f"{name}.required", "is missing (a key field)"))
        key = "|".join(str(values.get(name)) for name in self._mapping.key)
        if violations:
            self._quarantine(number, key, record, violations, batch)
            return
        batch.good.append(tuple(values.get(name) for name in fields))
        batch.keys.append(key)
        batch.fixed += fixed

    async def resubmit(self, fixes: dict[int, dict[str, Any]] | None = None) -> ResubmitReport:
        """Check the open quarantined rows again, with the fixes given (row number → fields), and load the good ones.

        Rows without a fix are checked as they are (the rules may have changed). Rows still bad stay
        in the quarantine with their new data and reasons.
        """
        report = ResubmitReport()
        batch = _Batch()
        loaded_numbers: list[int] = []
        for item in await self._db.list_quarantine(self._mapping.id):
            record = dict(item.row) if isinstance(item.row, dict) else {}
            record.update((fixes or {}).get(item.row_number, {}))
            good_before = len(batch.good)
            self._settle({name: record.get(name) for name in self._mapping.fields}, item.row_number, batch)
            if len(batch.good) > good_before:
                loaded_numbers.append(item.row_number)
        for start in range(0, len(batch.good), self._mapping.batch):
            end = start + self._mapping.batch
            await self._writer.write(batch.good[start:end], batch.keys[start:end])
        await self._db.settle_quarantine(self._mapping.id, loaded_numbers, batch.bad, clock.now())
        report.loaded, report.still_quarantined, report.by_rule = len(loaded_numbers), len(batch.bad), batch.by_rule
        return report

    async def close(self) -> None:
        """Let the target go (its database connections)."""
        await self._writer.close()

    async def _claim(self, restart: bool) -> store.MigrationState:
        now = clock.now()
        state = await self._db.claim_migration(self._mapping.id, self._owner, now, now + _LEASE, start_over=restart)
        if state is None:
            held = await self._db.get_migration(self._mapping.id)
            if held is not None and held.owner and store.is_dead_local(held.owner):
                await self._db.release_migration(self._mapping.id, held.owner)
                state = await self._db.claim_migration(
                    self._mapping.id, self._owner, now, now + _LEASE, start_over=restart
                )
        if state is None:
            raise errors.Conflict(
                f"migration {self._mapping.id} is already running in another process", code="quality.migration_running"
            )
        return state


def _take_counts(report: MigrationReport, state: store.MigrationState) -> None:
    report.read, report.loaded, report.fixed = state.position, state.loaded, state.fixed
    report.quarantined, report.by_rule = state.quarantined, dict(state.by_rule)


def _columns(cells: Sequence[list[Any]], positions: list[tuple[str, int]]) -> dict[str, list[Any]]:
    """The mapped columns of a batch of source rows; an empty cell ("") and a cell past a short row are None."""
    width = 1 + max((at for _, at in positions), default=-1)
    if any(len(row) < width for row in cells):
        cells = [row if len(row) >= width else [*row, *([None] * (width - len(row)))] for row in cells]
    # a row longer than `width`: its cells past it are not read
    transposed = list(zip(*cells, strict=False)) if cells else [() for _ in range(width)]
    columns: dict[str, list[Any]] = {}
    for name, at in positions:
        column = transposed[at]
        try:
            columns[name] = list(map(_EMPTY_IS_NONE.get, column, column))  # "" -> None, in C
        except TypeError:  # an unhashable cell (a JSON value from a query)
            columns[name] = [None if cell == "" else cell for cell in column]
    return columns


def _joined(parts: Sequence[object]) -> str:
    return "|".join(map(str, parts))


_EMPTY_IS_NONE: dict[object, None] = {"": None}


def _json(value: object) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
