"""Profiling a table (`seamflow data profile`): per column a type guess, null share, distinct count,
top values, pattern classes and the rules its values break.

Rows are taken in batches and each column of a batch is counted with C-level builtins
(`Counter.update`, `str.translate`), so a million rows take seconds. Memory stays flat: the value
and pattern counters are pruned to their most frequent entries when they grow past a bound (top
values are then approximate, and say so), and distinct values are counted from a hash sample that
halves itself when full (exact below 65,536 distinct values, an estimate within a few percent above).
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress, islice, repeat
from operator import not_
from typing import Any

from seamflow.quality.rules import RuleSet
from seamflow.quality.sources import Table
from seamflow.quality.validators import VALIDATORS

__all__ = ["ColumnProfile", "Profile", "profile_table"]

_BATCH = 10_000
_COUNTER_LIMIT = 50_000
_COUNTER_KEEP = 5_000
_SAMPLE_LIMIT = 1 << 16
_TYPE_SAMPLE = 2_000
_TOP = 10
_TEXT = frozenset({str})
_GUESSES = (
    "resident_id",
    "uscc",
    "bank_card",
    "mobile_cn",
    "phone_cn",
    "date",
    "email",
    "province",
    "integer",
    "decimal",
    "amount",
    "boolean",
)
"""Types tried, most specific first; a column gets the first that ≥ 80% of its sampled values pass
(the rest are what to fix)."""

_PATTERN = {ord(c): "9" for c in "0123456789"}
_PATTERN |= {ord(c): "A" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
_PATTERN |= {ord(c): "a" for c in "abcdefghijklmnopqrstuvwxyz"}
_PATTERN |= {code: "９" for code in range(0xFF10, 0xFF1A)}  # full-width digits are a pattern of their own
_PATTERN |= dict.fromkeys(range(0x4E00, 0xA000), "中")
_ASCII_PATTERN = bytes(ord(_PATTERN.get(code, chr(code))) for code in range(256))
"""`_PATTERN` on ASCII, as a `bytes.translate` table (the bytes above 127 never occur: the text is ASCII)."""


@dataclass(slots=True)
class ColumnProfile:
    """What one column holds."""

    name: str
    count: int = 0
    nulls: int = 0
    distinct: int = 0
    is_distinct_estimate: bool = False
    type_guess: str = "string"
    type_share: float = 0.0
    """Share of the sampled values that pass the guessed type's validator."""
    top_values: list[tuple[str, int]] = field(default_factory=list)
    is_top_approximate: bool = False
    patterns: list[tuple[str, int]] = field(default_factory=list)
    min_length: int | None = None
    max_length: int | None = None
    violations: dict[str, int] = field(default_factory=dict)
    """Rows breaking each rule of this column (`mobile.type`: 120)."""

    @property
    def null_share(self) -> float:
        return self.nulls / self.count if self.count else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "count": self.count,
            "nulls": self.nulls,
            "null_share": round(self.null_share, 4),
            "distinct": self.distinct,
            "distinct_is_estimate": self.is_distinct_estimate,
            "type": self.type_guess,
            "type_share": round(self.type_share, 4),
            "top_values": [{"value": v, "count": c} for v, c in self.top_values],
            "top_values_are_approximate": self.is_top_approximate,
            "patterns": [{"pattern": p, "count": c} for p, c in self.patterns],
            "min_length": self.min_length,
            "max_length": self.max_length,
            "violations": dict(sorted(self.violations.items())),
        }


@dataclass(slots=True)
class Profile:
    """The profile of one table."""

    source: str
    rows: int
    columns: list[ColumnProfile]
    encoding: str | None = None
    rules: str | None = None
    rows_breaking_rules: int = 0
    violations: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "encoding": self.encoding,
            "rows": self.rows,
            "rules": self.rules,
            "rows_breaking_rules": self.rows_breaking_rules,
            "violations": dict(sorted(self.violations.items())),
            "columns": [column.as_json() for column in self.columns],
        }


class _Column:
    """The running counts of one column."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = self.nulls = 0
        self.values: Counter[str] = Counter()
        self.is_pruned = False
        self.is_varied = False
        """Whether the last batch's values were mostly distinct (then they are counted without a batch counter)."""
        self.patterns: Counter[str] = Counter()
        self.hashes: set[int] = set()
        self.level = 0
        self.sample: list[str] = []
        self.min_length: int | None = None
        self.max_length: int | None = None

    def add(self, cells: Sequence[Any]) -> None:
        if set(map(type, cells)) <= _TEXT:  # a file's cells: text, "" when empty
            texts: Sequence[str] = cells
        else:
            texts = [cell if isinstance(cell, str) else ("" if cell is None else str(cell)) for cell in cells]
        self.count += len(texts)
        present = list(filter(None, texts))
        self.nulls += len(texts) - len(present)
        if not present:
            return
        distinct: Collection[str]
        if self.is_varied:  # mostly distinct values (numbers, names): counted cell by cell in C
            self.values.update(present)
            self.patterns.update(_shapes(present))
            distinct = set(present)
        else:  # repeated values (dates, levels): each distinct value's shape found once
            distinct = counts = Counter(present)
            self.values.update(counts)
            patterns = self.patterns
            for text, times in counts.items():
                shape = text.translate(_PATTERN)
                patterns[shape] = patterns.get(shape, 0) + times
        self.is_varied = len(distinct) * 2 > len(present)
        if len(self.values) > _COUNTER_LIMIT:
            self.values = Counter(dict(self.values.most_common(_COUNTER_KEEP)))
            self.is_pruned = True
        if len(self.patterns) > _COUNTER_LIMIT:
            self.patterns = Counter(dict(self.patterns.most_common(_COUNTER_KEEP)))
        hashes = list(map(hash, distinct))
        if self.level:
            hashes = list(compress(hashes, map(not_, map(((1 << self.level) - 1).__and__, hashes))))
        self.hashes.update(hashes)
        while len(self.hashes) > _SAMPLE_LIMIT:  # keep the hashes whose next bit is 0 too: half of them
            self.level += 1
            mask = (1 << self.level) - 1
            self.hashes = {h for h in self.hashes if not h & mask}
        lengths = set(map(len, distinct))
        low, high = min(lengths), max(lengths)
        self.min_length = low if self.min_length is None else min(self.min_length, low)
        self.max_length = high if self.max_length is None else max(self.max_length, high)
        if len(self.sample) < _TYPE_SAMPLE:
            self.sample.extend(present[: _TYPE_SAMPLE - len(self.sample)])

    def merge(self, other: _Column) -> None:
        """Add the counts another process kept of other rows of this column (their batches came later)."""
        self.count += other.count
        self.nulls += other.nulls
        self.values.update(other.values)
        self.is_pruned = self.is_pruned or other.is_pruned
        if len(self.values) > _COUNTER_LIMIT:
            self.values = Counter(dict(self.values.most_common(_COUNTER_KEEP)))
            self.is_pruned = True
        self.patterns.update(other.patterns)
        if len(self.patterns) > _COUNTER_LIMIT:
            self.patterns = Counter(dict(self.patterns.most_common(_COUNTER_KEEP)))
        self.level = max(self.level, other.level)  # a forked process hashes text as this one does
        mask = (1 << self.level) - 1
        self.hashes = {h for h in self.hashes | other.hashes if not h & mask}
        while len(self.hashes) > _SAMPLE_LIMIT:
            self.level += 1
            mask = (1 << self.level) - 1
            self.hashes = {h for h in self.hashes if not h & mask}
        lows = [n for n in (self.min_length, other.min_length) if n is not None]
        highs = [n for n in (self.max_length, other.max_length) if n is not None]
        self.min_length, self.max_length = min(lows, default=None), max(highs, default=None)
        if len(self.sample) < _TYPE_SAMPLE:
            self.sample.extend(other.sample[: _TYPE_SAMPLE - len(self.sample)])

    def result(self) -> ColumnProfile:
        guess, share = _guess_type(self.sample)
        return ColumnProfile(
            name=self.name,
            count=self.count,
            nulls=self.nulls,
            distinct=min(len(self.hashes) << self.level, self.count - self.nulls),
            is_distinct_estimate=self.level > 0,
            type_guess=guess,
            type_share=share,
            top_values=self.values.most_common(_TOP),
            is_top_approximate=self.is_pruned,
            patterns=self.patterns.most_common(_TOP),
            min_length=self.min_length,
            max_length=self.max_length,
        )


def _shapes(texts: list[str]) -> list[str]:
    """The pattern of each text, in order: a column of ASCII texts in one `bytes.translate` of them
    joined (a pass in C at a few ns a character), any other column with `str.translate`."""
    if all(map(str.isascii, texts)):  # stops at the first other text
        joined = "\n".join(texts)
        if joined.count("\n") == len(texts) - 1:  # no cell with a line break of its own
            return joined.encode("ascii").translate(_ASCII_PATTERN).decode("ascii").split("\n")
    return list(map(str.translate, texts, repeat(_PATTERN)))


def _guess_type(sample: list[str]) -> tuple[str, float]:
    if not sample:
        return "empty", 0.0
    for name in _GUESSES:
        check = VALIDATORS[name]
        passed = failed = 0
        for text in sample:
            try:
                check(text)
                passed += 1
            except ValueError:
                failed += 1
                if failed > len(sample) // 5:  # more than 20% failed already: not this type
                    break
        share = passed / len(sample)
        if share >= 0.8:
            return name, share
    return "string", 1.0


def profile_table(
    table: Table,
    *,
    rules: RuleSet | None = None,
    fields: dict[str, str] | None = None,
    on_progress: Callable[[int], None] | None = None,
    workers: int = 2,
) -> Profile:
    """Profile every row of `table`, checking `rules` if given.

    A table of more than two batches is shared with a forked second process when `workers` > 1 (and
    no thread runs beside this one): it counts and checks every other batch and its counts are merged
    in at the end, so both cores work and memory stays bounded (three batches in flight: the
    helper runs one batch ahead, and progress counts its rows when it answers).

    Args:
        table: the rows.
        rules: a rule set whose fields are `fields`' keys (or the column names).
        fields: rule field → column, when the rule fields are not named as the columns (a migration's mapping).
        on_progress: called with the rows done after each batch, in order.
        workers: 1 keeps the work in this process.
    """
    columns = [_Column(name) for name in table.columns]
    positions = _rule_positions(table.columns, rules, fields)
    profile = Profile(table.name, 0, [], encoding=table.encoding, rules=rules.id if rules else None)
    rows: Iterable[list[Any]] = table.rows
    helper: _Helper | None = None
    try:
        owed = 0  # rows of the batch the helper was given last and has not answered: it runs one batch ahead
        while batch := list(islice(rows, _BATCH)):
            if helper is None and workers > 1 and profile.rows >= _BATCH * 2 and threading.active_count() == 1:
                helper = _Helper(columns, rules, positions)  # a big table: a second process takes every other batch
            given = list(islice(rows, _BATCH)) if helper is not None else []
            if given and helper is not None:
                helper.give(given)
            _profile_batch(batch, columns, rules, positions, profile)
            _advance(profile, len(batch), on_progress)
            if owed:
                assert helper is not None
                helper.take(profile)
                _advance(profile, owed, on_progress)
            owed = len(given)
        if helper is not None:
            if owed:
                helper.take(profile)
                _advance(profile, owed, on_progress)
            for column, theirs in zip(columns, helper.finish(), strict=True):
                column.merge(theirs)
    finally:
        if helper is not None:
            helper.close()
    profile.columns = [column.result() for column in columns]
    by_column = {column.name: column for column in profile.columns}
    for rule, count in profile.violations.items():
        column_name = dict(positions).get(rule.partition(".")[0], (None, None))
        target = by_column.get(str(column_name[1])) if isinstance(column_name, tuple) else None
        if target is not None:
            target.violations[rule] = count
    return profile


def _advance(profile: Profile, rows: int, on_progress: Callable[[int], None] | None) -> None:
    profile.rows += rows
    if on_progress is not None:
        on_progress(profile.rows)


def _profile_batch(
    batch: list[list[Any]],
    columns: list[_Column],
    rules: RuleSet | None,
    positions: list[tuple[str, tuple[int, str]]],
    profile: Profile,
) -> None:
    cells_of = _columns_of(batch, len(columns))
    for column, cells in zip(columns, cells_of, strict=True):
        column.add(cells)
    if rules is not None:
        _check_rows(cells_of, rules, positions, profile)


class _Helper:
    """A forked process that profiles the batches it is given with its own columns; the rule set is
    the parent's, inherited by the fork (references already read)."""

    def __init__(
        self, columns: list[_Column], rules: RuleSet | None, positions: list[tuple[str, tuple[int, str]]]
    ) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, theirs = context.Pipe()
        names = [column.name for column in columns]
        self._process = context.Process(target=_serve, args=(theirs, names, rules, positions), daemon=True)
        self._process.start()
        theirs.close()

    def give(self, batch: list[list[Any]]) -> None:
        self._conn.send(batch)

    def take(self, profile: Profile) -> None:
        """Add the rule counts of the earliest batch given and not yet taken (the helper answers in order)."""
        breaking, violations = self._receive()
        profile.rows_breaking_rules += breaking
        for rule, count in violations.items():
            profile.violations[rule] = profile.violations.get(rule, 0) + count

    def finish(self) -> list[_Column]:
        self._conn.send(None)
        columns: list[_Column] = self._receive()
        return columns

    def _receive(self) -> Any:
        try:
            return self._conn.recv()
        except EOFError:
            raise RuntimeError(f"the second profiling process ended (exit code {self._process.exitcode})") from None

    def close(self) -> None:
        self._conn.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _serve(conn: Any, names: list[str], rules: RuleSet | None, positions: list[tuple[str, tuple[int, str]]]) -> None:
    """The second process: profile each batch received, answer with its rule counts; at None, the columns."""
    columns = [_Column(name) for name in names]
    while (batch := conn.recv()) is not None:
        counts = Profile("", 0, [])
        _profile_batch(batch, columns, rules, positions, counts)
        conn.send((counts.rows_breaking_rules, counts.violations))
    conn.send(columns)
    conn.close()


def _columns_of(batch: list[list[Any]], width: int) -> list[tuple[Any, ...]]:
    if any(len(row) != width for row in batch):  # a short or long row: pad or cut it to the header
        batch = [row[:width] if len(row) >= width else [*row, *([None] * (width - len(row)))] for row in batch]
    return list(zip(*batch, strict=True)) if batch else [() for _ in range(width)]


def _rule_positions(
    columns: list[str], rules: RuleSet | None, fields: dict[str, str] | None
) -> list[tuple[str, tuple[int, str]]]:
    if rules is None:
        return []
    index = {name: i for i, name in enumerate(columns)}
    found = []
    for name in rules.fields:
        column = (fields or {}).get(name, name)
        if column in index:
            found.append((name, (index[column], column)))
    return found


def _check_rows(
    cells_of: list[tuple[Any, ...]], rules: RuleSet, positions: list[tuple[str, tuple[int, str]]], profile: Profile
) -> None:
    """Check a batch column by column; a cell that is empty or false counts as missing."""
    columns: dict[str, Sequence[object]] = {}
    for name, (at, _) in positions:
        cells = cells_of[at]
        columns[name] = cells if set(map(type, cells)) <= _TEXT else [cell or None for cell in cells]
    size = len(cells_of[0]) if cells_of else 0
    found = rules.check_batch(columns, size, values=False)
    counts = profile.violations
    profile.rows_breaking_rules += len(found.violations)
    for violations in found.violations.values():
        for violation in violations:
            counts[violation.rule] = counts.get(violation.rule, 0) + 1
