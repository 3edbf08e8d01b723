"""The resolver: batch resolution of every source record of one entity type, the real-time match of
one new record, and `explain`.

A batch run reads the sources, prepares the records, blocks, scores the candidate pairs, joins the
links into clusters (honouring a steward's merges and splits), keeps each cluster's unified ID
from the last run, builds the golden records and stores it all in one transaction. A real-time
match looks up the new record's blocking keys in the store (an index lookup each, with the found
records' clusters, in one read), scores the few records found, and joins the best linked cluster or
starts a new one (one write).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seamflow import clock, errors, store
from seamflow.identity import cluster as clusters
from seamflow.identity.blocking import block_keys, candidate_pairs
from seamflow.identity.golden import Survivor, golden_record
from seamflow.identity.model import Explanation, MatchModel
from seamflow.identity.prepare import Prepared, Preparer
from seamflow.identity.sources import read_source
from seamflow.identity.spec import Resolution
from seamflow.ids import Json

__all__ = ["MatchResult", "ResolveReport", "Resolver", "settings_of"]

Progress = Callable[[str, int, int | None], None]
"""(phase, done, total) while a batch runs."""


@dataclass(slots=True)
class ResolveReport:
    """What a batch run did."""

    entity: str
    records: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    pairs: int = 0
    links: int = 0
    by_rule: int = 0
    clusters: int = 0
    kept_ids: int = 0
    new_ids: int = 0
    changed: int = 0
    """Records whose unified ID is new or differs from the last run's."""
    skipped_keys: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    """Per phase, the CPU seconds of the process (every thread): on a shared machine, the figure to compare."""
    assignments: dict[str, str] = field(default_factory=dict)
    """`source:key` → unified ID (kept for the caller; not in `as_json`)."""
    changes: dict[str, str] = field(default_factory=dict)
    """The records whose unified ID is new or changed (what `write_back` writes)."""

    def as_json(self) -> dict[str, Json]:
        """The report as JSON."""
        return {
            "entity": self.entity,
            "records": self.records,
            "by_source": dict(self.by_source),
            "pairs": self.pairs,
            "links": self.links,
            "by_rule": self.by_rule,
            "clusters": self.clusters,
            "kept_ids": self.kept_ids,
            "new_ids": self.new_ids,
            "changed": self.changed,
            "skipped_keys": list(self.skipped_keys),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }

    def lap(self, phase: str, since: tuple[float, float]) -> tuple[float, float]:
        """Record the wall and CPU seconds of `phase`, begun at `since` (as `lap` returns it); return now."""
        now = (time.perf_counter(), time.process_time())
        self.seconds[phase] = now[0] - since[0]
        self.cpu_seconds[phase] = now[1] - since[1]
        return now


@dataclass(frozen=True, slots=True)
class MatchResult:
    """A real-time match: the record's unified ID, whether it is new, and the best candidate (`explain` says why)."""

    unified_id: str
    is_new: bool
    candidates: int
    matched: str | None
    """The linked record (`source:key`) whose member the record joined; None for a new member."""
    probability: float | None
    """The best candidate's match probability (1.0 where a rule held); None without candidates."""

    def as_json(self) -> dict[str, Json]:
        """The result as JSON (a step's output)."""
        return {
            "unified_id": self.unified_id,
            "is_new": self.is_new,
            "candidates": self.candidates,
            "matched": self.matched,
            "probability": None if self.probability is None else round(self.probability, 6),
        }


def settings_of(resolution: Resolution) -> dict[str, Json]:
    """What merges, splits and matches need without the file: ID prefix, golden rules, fields, trust."""
    return {
        "id_prefix": resolution.id_prefix,
        "fields": list(resolution.fields),
        "golden": {name: str(rule) for name, rule in resolution.golden.items()},
        "updated": resolution.updated,
    }


class Resolver:
    """Resolves one resolution file's entity over a store (`store.IdentityStore`).

    Args:
        db: where the records, clusters and decisions are kept.
        resolution: the resolution file.
        base: the folder of the resolution file (its sources' files are relative to it).
        resolve_url: a `sql` connection's name → its database URL.
    """

    def __init__(
        self,
        db: store.IdentityStore,
        resolution: Resolution,
        *,
        base: Path = Path(),
        resolve_url: Callable[[str], str] | None = None,
    ) -> None:
        self.db = db
        self.resolution = resolution
        self.model = MatchModel(resolution)
        self._base = base
        self._resolve_url = resolve_url
        self._preparer = Preparer(resolution)
        # built once, not per match: the golden-record rules, the fields, the settings stored with a record
        self._rules = {k: str(v) for k, v in resolution.golden.items()}
        self._fields = list(resolution.fields)
        self._settings = settings_of(resolution)

    def prepare(self, source: str, key: str, fields: dict[str, Any]) -> Prepared:
        """A record made comparable (normalised values, comparison forms)."""
        return self._preparer.prepare(source, key, fields)

    async def resolve(self, on_progress: Progress | None = None) -> ResolveReport:
        """Resolve every record of the sources (and the stored records of other sources); store the result."""
        with _cyclic_gc_paused():
            return await self._resolve_all(on_progress)

    async def _resolve_all(self, on_progress: Progress | None) -> ResolveReport:
        report = ResolveReport(self.resolution.entity)
        started = mark = (time.perf_counter(), time.process_time())
        stored = await self.db.list_identity_records(self.resolution.entity)
        settings = await self.db.get_identity_settings(self.resolution.entity)
        decisions = await self.db.list_identity_decisions(self.resolution.entity)
        records = await asyncio.to_thread(self._read_all, stored, report, on_progress)
        mark = report.lap("read", mark)
        run, members = await asyncio.to_thread(self._resolve, records, stored, settings, decisions, report, on_progress)
        await self._store_run(run, members, report)
        report.lap("total", started)
        return report

    async def _store_run(
        self, run: store.IdentityRun, members: dict[str, list[Survivor]], report: ResolveReport
    ) -> None:
        """Store the run while its golden records are built: the store writes the records, keys and their indexes
        (SQLite's work releases the GIL) and waits for the clusters only then."""
        assert isinstance(run.clusters, Future)
        mark = (time.perf_counter(), time.process_time())
        saving = asyncio.create_task(self.db.save_identity_run(run, clock.now()))
        try:
            found = await asyncio.to_thread(self._golden, members, report)
        except BaseException as exc:
            run.clusters.set_exception(exc)  # the store's transaction rolls back
            await asyncio.gather(saving, return_exceptions=True)
            raise
        run.clusters.set_result(found)
        await saving
        report.lap("store", mark)

    def _read_all(
        self, stored: Sequence[store.IdentityRecord], report: ResolveReport, on_progress: Progress | None
    ) -> list[Prepared]:
        records: list[Prepared] = []
        seen: set[tuple[str, str]] = set()
        for name, spec in self.resolution.sources.items():
            count = 0
            for key, fields in read_source(name, spec, self._base, self._resolve_url):
                if (name, key) in seen:
                    continue  # a key twice in one export: the first row counts
                seen.add((name, key))
                records.append(self._preparer.prepare(name, key, fields))
                count += 1
                if on_progress is not None and count % 20_000 == 0:
                    on_progress(f"reading {name}", len(records), None)
            report.by_source[name] = count
        for kept in stored:  # records of other sources (matched in real time) stay in the picture
            if kept.source not in self.resolution.sources:
                records.append(self._preparer.prepare(kept.source, kept.key, dict(kept.data)))
                report.by_source[kept.source] = report.by_source.get(kept.source, 0) + 1
        report.records = len(records)
        return records

    def _resolve(
        self,
        records: list[Prepared],
        stored: Sequence[store.IdentityRecord],
        settings: tuple[int, Json] | None,
        decisions: Sequence[store.IdentityDecision],
        report: ResolveReport,
        on_progress: Progress | None,
    ) -> tuple[store.IdentityRun, dict[str, list[Survivor]]]:
        res = self.resolution
        mark = (time.perf_counter(), time.process_time())
        if on_progress is not None:
            on_progress("blocking", 0, len(records))
        record_keys = [block_keys(r, res.blocking) for r in records]
        left, right, report.skipped_keys = candidate_pairs(record_keys, res.max_block)
        report.pairs = len(left)
        mark = report.lap("block", mark)
        if on_progress is not None:
            on_progress("scoring", 0, report.pairs)
        scored = self.model.score(self.model.columns(records), left, right)
        strength = np.where(scored.by_rule, np.inf, scored.score)[scored.is_match]
        order = np.argsort(-strength, kind="stable")
        linked_left, linked_right = left[scored.is_match][order], right[scored.is_match][order]
        report.links, report.by_rule = len(linked_left), int(scored.by_rule.sum())
        mark = report.lap("score", mark)
        index = {(r.source, r.key): i for i, r in enumerate(records)} if decisions else {}
        forced, separations = _decisions(decisions, index)
        links = forced + list(zip(linked_left.tolist(), linked_right.tolist(), strict=True))
        found = clusters.connect(len(records), links, separations)
        before = {(r.source, r.key): r for r in stored}
        previous = _previous_ids(records, before)
        first = settings[0] if settings is not None else 1
        ids, next_number = clusters.assign_ids(found, previous, res.id_prefix, first)
        mark = report.lap("cluster", mark)
        refs = [r.ref for r in records]  # built once: a million f-strings cost
        rows, keys, members = self._rows(records, refs, record_keys, ids, before)
        report.clusters, report.new_ids = len(members), next_number - first
        report.kept_ids = report.clusters - report.new_ids
        report.assignments = dict(zip(refs, ids, strict=True))
        report.changes = {ref: new for ref, old, new in zip(refs, previous, ids, strict=True) if old != new}
        report.changed = len(report.changes)
        report.lap("rows", mark)
        return store.IdentityRun(res.entity, next_number, self._settings, rows, keys, Future()), members

    def _rows(
        self,
        records: list[Prepared],
        refs: list[str],
        record_keys: list[list[str]],
        ids: list[str],
        before: dict[tuple[str, str], store.IdentityRecord],
    ) -> tuple[list[store.IdentityRecord], list[tuple[str, str, str]], dict[str, list[Survivor]]]:
        """The records and keys to store, and each cluster's members as survivorship sees them."""
        res = self.resolution
        stored: list[store.IdentityRecord] = []
        keys: list[tuple[str, str, str]] = []
        members: dict[str, list[Survivor]] = {}
        trusts = {name: res.trust(name) for name in res.sources}
        updated = res.updated
        for record, ref, found_keys, unified in zip(records, refs, record_keys, ids, strict=True):
            source, key, values = record.source, record.key, record.values
            trust = trusts.get(source, 0)
            old = before.get((source, key)) if before else None
            origin = old.origin_id if old is not None and old.unified_id == unified else None
            stored.append(store.IdentityRecord(source, key, unified, trust, values, origin))
            keys += [(k, source, key) for k in found_keys]
            survivor = Survivor(ref, trust, str(values.get(updated) or "") if updated else "", values)
            group = members.get(unified)
            if group is None:
                members[unified] = [survivor]
            else:
                group.append(survivor)
        return stored, keys, members

    def _golden(self, members: dict[str, list[Survivor]], report: ResolveReport) -> list[store.IdentityCluster]:
        mark = (time.perf_counter(), time.process_time())
        fields, rules = self._fields, self._rules
        found = [
            store.IdentityCluster(unified, golden_record(group, rules, fields), len(group))
            for unified, group in members.items()
        ]
        report.lap("golden", mark)
        return found

    def _survivor(self, record: Prepared, trust: int) -> Survivor:
        updated = record.values.get(self.resolution.updated) if self.resolution.updated else None
        return Survivor(record.ref, trust, str(updated or ""), record.values)

    async def match(self, source: str, key: str, fields: dict[str, Any]) -> MatchResult:
        """Match one record on arrival; store it with its unified ID and refresh its cluster's golden record.

        A record already known keeps its unified ID (its values are updated).
        """
        res = self.resolution
        record = self._preparer.prepare(source, key, fields)
        keys = block_keys(record, res.blocking)
        near = await self.db.find_identity_neighbours(res.entity, keys, source, key)
        others = near.candidates
        matched: str | None = None
        probability: float | None = None
        target: str | None = near.known.unified_id if near.known is not None else None
        if others:
            prepared = [self._preparer.prepare(r.source, r.key, dict(r.data)) for r in others]
            columns = self.model.columns([record, *prepared])
            right = np.arange(1, len(prepared) + 1, dtype=np.int64)
            scored = self.model.score(columns, np.zeros(len(prepared), dtype=np.int64), right)
            strength = np.where(scored.by_rule, np.inf, scored.score)
            top = int(np.argmax(strength))
            probability = 1.0 if bool(scored.by_rule[top]) else self.model.probability(float(scored.score[top]))
            if bool(scored.is_match[top]):
                matched = prepared[top].ref
                target = target or others[top].unified_id
        members = near.members.get(target, []) if target is not None else []
        unified = await self._store_match(record, target, keys, members)
        return MatchResult(unified, unified != target, len(others), matched, probability)

    async def _store_match(
        self, record: Prepared, target: str | None, keys: list[str], members: list[store.IdentityRecord]
    ) -> str:
        res = self.resolution
        trust = res.trust(record.source)
        group: list[Survivor] = [self._survivor(record, trust)]
        group += [
            Survivor(f"{m.source}:{m.key}", m.trust, str(m.data.get(res.updated or "") or ""), m.data)
            for m in members
            if (m.source, m.key) != (record.source, record.key)
        ]
        golden = golden_record(group, self._rules, self._fields)
        update = store.IdentityUpdate(
            res.entity,
            records=[store.IdentityRecord(record.source, record.key, target or "", trust, record.values)],
            keys=[(k, record.source, record.key) for k in keys],
            clusters=[store.IdentityCluster(target or "", golden, len(group))],
            new_id_prefix=None if target is not None else res.id_prefix,
            settings=self._settings,
        )
        return await self.db.save_identity_update(update, clock.now()) or target or ""

    async def explain(self, left: str, right: str) -> Explanation:
        """Why the stored records `left` and `right` (`source:key`) are, or are not, the same.

        Raises:
            errors.NotFound: either record is not stored (`identity.record_unknown`).
        """
        refs = [_split_ref(left), _split_ref(right)]
        found = {(r.source, r.key): r for r in await self.db.get_identity_records(self.resolution.entity, refs)}
        prepared = []
        for ref in refs:
            record = found.get(ref)
            if record is None:
                raise errors.NotFound(
                    f"record {ref[0]}:{ref[1]} of {self.resolution.entity} is not stored; run identity resolve first",
                    code="identity.record_unknown",
                )
            prepared.append(self._preparer.prepare(record.source, record.key, dict(record.data)))
        return self.model.explain(prepared[0], prepared[1])


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch run builds millions of objects that live until it
    ends and form no cycles: each full collection would walk them all again (a quarter of the run's CPU at
    200,000 records). Reference counting still frees everything as usual.

    At the end the objects still alive move to the permanent generation (`gc.freeze`): re-enabled, the collector
    would otherwise walk all of them at the next allocation (0.7 s at 200,000 records) and again in each older
    generation later, stalling whatever runs then (a real-time match). Frozen objects are still freed by
    reference counting; only a cycle among them would be kept, and a batch run makes none.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _previous_ids(records: Sequence[Prepared], before: dict[tuple[str, str], store.IdentityRecord]) -> list[str | None]:
    """Each record's unified ID from the last run; None for a record that is new (every record, on a first run)."""
    if not before:
        return [None] * len(records)
    found = (before.get((r.source, r.key)) for r in records)
    return [old.unified_id if old is not None else None for old in found]


def _split_ref(ref: str) -> tuple[str, str]:
    source, sep, key = ref.partition(":")
    if not sep or not source or not key:
        raise errors.InvalidInput(f"{ref!r} is not a record; expected source:key, as pos:M0001", code="identity.ref")
    return source, key


def _decisions(
    decisions: Sequence[store.IdentityDecision], index: dict[tuple[str, str], int]
) -> tuple[list[tuple[int, int]], list[clusters.Separation]]:
    forced: list[tuple[int, int]] = []
    separations: list[clusters.Separation] = []
    for decision in decisions:
        left = [index[r] for r in map(_split_ref, decision.left) if r in index]
        right = [index[r] for r in map(_split_ref, decision.right) if r in index]
        if not left or not right:
            continue
        if decision.kind == "merge":
            forced += [(left[0], other) for other in left[1:] + right]
        else:
            separations.append(clusters.Separation(left, right))
    return forced, separations
