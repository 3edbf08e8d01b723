"""Durable state of identity resolution: records with their unified IDs, blocking keys, golden
records and a data steward's merges and splits.

The identity capability decides; the store keeps. A batch run replaces an entity's records, keys
and clusters in one transaction (a crash leaves the previous run whole); a real-time match adds
or updates one record, its keys and its cluster together; a merge or split moves records, rewrites
the clusters it touches and keeps the decision with its reason, with its event-log row, at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, LiteralString

from seamflow import codec
from seamflow.ids import Json
from seamflow.store.rows import Conn, Rows, from_ms, to_ms
from seamflow.store.run_tx import LogRow

__all__ = [
    "IdentityCandidates",
    "IdentityCluster",
    "IdentityDecision",
    "IdentityOps",
    "IdentityRecord",
    "IdentityRun",
    "IdentityUpdate",
]


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """A source record as resolved: its unified ID and its normalised values."""

    source: str
    key: str
    unified_id: str
    trust: int
    data: dict[str, Json]
    origin_id: str | None = None
    """The unified ID the record had before a steward merged its cluster into another (a split gives it back)."""


@dataclass(frozen=True, slots=True)
class IdentityCandidates:
    """What a real-time match reads, in one read: the records sharing a blocking key with the new record,
    the record itself if it is stored already, and the members of every cluster either belongs to."""

    candidates: list[IdentityRecord]
    """The records sharing a blocking key, without the record itself."""
    known: IdentityRecord | None
    members: dict[str, list[IdentityRecord]]
    """Unified ID → its records (by source and key), for the candidates' and the known record's clusters."""


@dataclass(frozen=True, slots=True)
class IdentityCluster:
    """One unified ID with its golden record and its number of records."""

    unified_id: str
    golden: dict[str, Json]
    size: int


@dataclass(frozen=True, slots=True)
class IdentityDecision:
    """A data steward's merge or split, honoured by every later run."""

    id: str
    kind: str
    """`merge` (the two groups are one) or `split` (the two groups are never one)."""
    left: list[str]
    right: list[str]
    """The records of each side, as `source:key`."""
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True, slots=True)
class IdentityRun:
    """Everything a batch run stores for one entity type, replacing what the last run stored."""

    entity: str
    next_number: int
    settings: Json
    """What a merge, split or match needs without the resolution file: the golden-record rules, trust."""
    records: Sequence[IdentityRecord]
    keys: Sequence[tuple[str, str, str]]
    """(blocking key, source, source key)."""
    clusters: Sequence[IdentityCluster] | Future[Sequence[IdentityCluster]]
    """The clusters, or their future: the store writes the records and keys (and builds their indexes) first
    and waits for it only then, so the golden records are built on the other core meanwhile; a future that
    ends in an exception rolls the whole run back."""


@dataclass(frozen=True, slots=True)
class IdentityUpdate:
    """A change to a few records and clusters: a real-time match, a merge or a split."""

    entity: str
    records: Sequence[IdentityRecord] = ()
    """Records added or moved (their keys are replaced when `keys` names them)."""
    keys: Sequence[tuple[str, str, str]] = ()
    clusters: Sequence[IdentityCluster] = ()
    """Clusters written as given; a cluster of size 0 is removed."""
    next_number: int | None = None
    decision: IdentityDecision | None = None
    dropped_decisions: Sequence[str] = ()
    log: Sequence[LogRow] = field(default_factory=tuple)
    new_id_prefix: str | None = None
    """Take the entity's next ID number for the records and cluster whose unified ID is "" (a new member)."""
    settings: Json = None
    """The entity's settings, stored if the entity has none yet (a match before any batch run)."""


_RECORD: LiteralString = "source, source_key, unified_id, trust, data, origin_id"
_ONE_RECORD: LiteralString = (
    "SELECT " + _RECORD + " FROM identity_records WHERE entity = ? AND source = ? AND source_key = ?"  # noqa: S608
)
_CLUSTER_RECORDS: LiteralString = (
    "SELECT " + _RECORD + " FROM identity_records WHERE entity = ? AND unified_id = ?"  # noqa: S608 - constants only
)
"""A cluster's records, sorted in Python: with `ORDER BY source, source_key` SQLite walks the primary key
over every record of the entity instead of looking the cluster up in `identity_records_unified`."""
_CHUNK = 20_000
_RUN_CACHE_KIB = -262_144
"""SQLite's page cache while a batch run is stored (negative: KiB), 256 MiB; the default is given back after."""
_RUN_INDEXES: tuple[tuple[LiteralString, LiteralString], ...] = (
    ("identity_records_unified", "CREATE INDEX identity_records_unified ON identity_records (entity, unified_id)"),
    ("identity_keys_lookup", "CREATE INDEX identity_keys_lookup ON identity_keys (entity, block_key)"),
    ("identity_keys_record", "CREATE INDEX identity_keys_record ON identity_keys (entity, source, source_key)"),
)
"""The secondary indexes (as migration 0014 declares them) that a batch run on SQLite drops and builds again
in its transaction: building an index from sorted rows costs less CPU than a million random inserts into it
(700,000 keys: 3.4 → 1.9 CPU s)."""
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_DECODE = partial(json.loads, parse_float=Decimal)
"""The stdlib's C JSON codec, built once: records and golden records are small objects of text, integers and
nulls, written a million at a time, and `codec.dumps_text`/`loads` (simplejson, an encoder per call) cost
about twice as much per object (≈ 11 → 6 µs)."""


def _dumps(value: Json) -> str:
    """`codec.dumps_text`'s JSON for identity data; values the stdlib cannot encode (Decimal) go through codec."""
    try:
        return _ENCODE(value)
    except (TypeError, ValueError):
        return codec.dumps_text(value)


class IdentityOps(Rows):
    """Identity resolution's state; see the module docstring."""

    async def save_identity_run(self, run: IdentityRun, now: datetime) -> None:
        """Replace an entity's records, keys and clusters with a batch run's, in one transaction."""

        def unit(conn: Conn) -> None:
            if self._DIALECT != "sqlite":
                replace_records(conn)
                return insert_clusters(conn)
            # a run rewrites a million rows and their indexes: in SQLite's default 2 MB page cache the
            # transaction spills to the WAL and reads index pages back (200,000 records: 11.5 → 7.5–8.3 CPU s)
            before = conn.execute("PRAGMA cache_size").fetchone()[0]
            conn.execute(f"PRAGMA cache_size = {_RUN_CACHE_KIB}")
            try:
                for name, _ in _RUN_INDEXES:
                    conn.execute("DROP INDEX IF EXISTS " + name)
                replace_records(conn)
                for _, create in _RUN_INDEXES:
                    conn.execute(create)
                insert_clusters(conn)
            finally:
                conn.execute(f"PRAGMA cache_size = {int(before)}")

        def insert_clusters(conn: Conn) -> None:
            clusters = run.clusters.result() if isinstance(run.clusters, Future) else run.clusters
            self._insert_clusters(conn, run.entity, clusters, to_ms(now))

        def replace_records(conn: Conn) -> None:
            self._x(conn, "DELETE FROM identity_records WHERE entity = ?", (run.entity,))
            self._x(conn, "DELETE FROM identity_keys WHERE entity = ?", (run.entity,))
            self._x(conn, "DELETE FROM identity_clusters WHERE entity = ?", (run.entity,))
            self._x(
                conn,
                "INSERT INTO identity_entities (entity, next_number, settings, resolved_ms) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (entity) DO UPDATE SET next_number = excluded.next_number,"
                " settings = excluded.settings, resolved_ms = excluded.resolved_ms",
                (run.entity, run.next_number, codec.dumps_text(run.settings), to_ms(now)),
            )
            self._insert_records(conn, run.entity, run.records, to_ms(now))
            self._insert_keys(conn, run.entity, run.keys)

        await self._write(unit)

    async def save_identity_update(self, update: IdentityUpdate, now: datetime) -> str | None:
        """Store a real-time match, a merge or a split: records, keys, clusters and the decision together.

        Returns:
            The unified ID taken for a new member (`new_id_prefix`), else None.
        """

        def unit(conn: Conn) -> str | None:
            entity, at = update.entity, to_ms(now)
            taken = self._take_number(conn, update, at) if update.new_id_prefix is not None else None
            records = [r if r.unified_id or taken is None else replace(r, unified_id=taken) for r in update.records]
            clusters = [c if c.unified_id or taken is None else replace(c, unified_id=taken) for c in update.clusters]
            for record in update.records:
                self._x(
                    conn,
                    "DELETE FROM identity_records WHERE entity = ? AND source = ? AND source_key = ?",
                    (entity, record.source, record.key),
                )
            for source, key in {(s, k) for _, s, k in update.keys}:
                self._x(
                    conn,
                    "DELETE FROM identity_keys WHERE entity = ? AND source = ? AND source_key = ?",
                    (entity, source, key),
                )
            self._insert_records(conn, entity, records, at)
            self._insert_keys(conn, entity, update.keys)
            for cluster in clusters:
                self._x(
                    conn,
                    "DELETE FROM identity_clusters WHERE entity = ? AND unified_id = ?",
                    (entity, cluster.unified_id),
                )
            self._insert_clusters(conn, entity, [c for c in clusters if c.size > 0], at)
            if update.next_number is not None:
                self._x(
                    conn,
                    "UPDATE identity_entities SET next_number = ? WHERE entity = ? AND next_number < ?",
                    (update.next_number, entity, update.next_number),
                )
            self._save_decision(conn, entity, update)
            return taken

        return await self._write(unit)

    def _take_number(self, conn: Conn, update: IdentityUpdate, at: int) -> str:
        self._x(
            conn,
            "INSERT INTO identity_entities (entity, next_number, settings, resolved_ms) VALUES (?, 1, ?, ?)"
            " ON CONFLICT (entity) DO NOTHING",
            (update.entity, codec.dumps_text(update.settings), at),
        )
        row = self._x(
            conn,
            "SELECT next_number FROM identity_entities WHERE entity = ?" + self._FOR_UPDATE,  # noqa: S608 - constants only
            (update.entity,),
        ).fetchone()
        number = int(row[0])
        self._x(conn, "UPDATE identity_entities SET next_number = ? WHERE entity = ?", (number + 1, update.entity))
        return f"{update.new_id_prefix}{number:08d}"

    def _save_decision(self, conn: Conn, entity: str, update: IdentityUpdate) -> None:
        for decision_id in update.dropped_decisions:
            self._x(conn, "DELETE FROM identity_decisions WHERE id = ?", (decision_id,))
        d = update.decision
        if d is not None:
            self._x(
                conn,
                "INSERT INTO identity_decisions (id, entity, kind, left_refs, right_refs, reason, actor, created_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    d.id,
                    entity,
                    d.kind,
                    codec.dumps_text(list(d.left)),
                    codec.dumps_text(list(d.right)),
                    d.reason,
                    d.actor,
                    to_ms(d.at),
                ),
            )
        for r in update.log:
            objects = None if r.objects is None else codec.dumps_text(r.objects)
            attributes = None if r.attributes is None else codec.dumps_text(r.attributes)
            self._appends.add(
                "event_log", (to_ms(r.at), r.kind, r.flow_id, r.run_id, r.path, r.activity, objects, attributes)
            )

    async def get_identity_settings(self, entity: str) -> tuple[int, Json] | None:
        """The entity's next free ID number and stored settings; None if it was never resolved."""

        def read(conn: Conn) -> tuple[int, Json] | None:
            row = self._x(
                conn, "SELECT next_number, settings FROM identity_entities WHERE entity = ?", (entity,)
            ).fetchone()
            return None if row is None else (int(row[0]), codec.loads(row[1]))

        return await self._read(read)

    async def list_identity_records(self, entity: str) -> list[IdentityRecord]:
        """Every record of an entity type, as the last run or match left it."""
        return await self._read(
            lambda conn: self._records(
                conn,
                "SELECT " + _RECORD + " FROM identity_records WHERE entity = ?",  # noqa: S608 - constants only
                (entity,),
            )
        )

    async def find_identity_neighbours(
        self, entity: str, block_keys: Sequence[str], source: str, key: str
    ) -> IdentityCandidates:
        """The records sharing any of `block_keys`, the record (source, key) if stored, and their clusters'
        members: index lookups in one read (a match then needs no other read before it writes)."""

        def read(conn: Conn) -> IdentityCandidates:
            found = {(r.source, r.key): r for r in self._candidates(conn, entity, block_keys)}
            known = found.pop((source, key), None)
            if known is None:
                known = next(iter(self._records(conn, _ONE_RECORD, (entity, source, key))), None)
            clusters = {r.unified_id for r in found.values()} | ({known.unified_id} if known is not None else set())
            members = {unified: self._cluster_records(conn, entity, unified) for unified in clusters}
            return IdentityCandidates(list(found.values()), known, members)

        return await self._read(read)

    def _candidates(self, conn: Conn, entity: str, block_keys: Sequence[str]) -> list[IdentityRecord]:
        found: dict[tuple[str, str], IdentityRecord] = {}
        for block_key in block_keys:
            for record in self._records(
                conn,
                "SELECT r.source, r.source_key, r.unified_id, r.trust, r.data, r.origin_id FROM identity_keys k"
                " JOIN identity_records r ON r.entity = k.entity AND r.source = k.source"
                " AND r.source_key = k.source_key WHERE k.entity = ? AND k.block_key = ?",
                (entity, block_key),
            ):
                found[(record.source, record.key)] = record
        return list(found.values())

    async def get_identity_records(self, entity: str, refs: Sequence[tuple[str, str]]) -> list[IdentityRecord]:
        """The records named (source, key) that exist, in the order given."""

        def read(conn: Conn) -> list[IdentityRecord]:
            found = []
            for source, key in refs:
                found += self._records(
                    conn,
                    _ONE_RECORD,
                    (entity, source, key),
                )
            return found

        return await self._read(read)

    async def get_identity_cluster(
        self, entity: str, unified_id: str
    ) -> tuple[IdentityCluster | None, list[IdentityRecord]]:
        """A cluster's golden record and its records (None and [] for an unknown ID)."""

        def read(conn: Conn) -> tuple[IdentityCluster | None, list[IdentityRecord]]:
            row = self._x(
                conn,
                "SELECT golden, size FROM identity_clusters WHERE entity = ? AND unified_id = ?",
                (entity, unified_id),
            ).fetchone()
            records = self._cluster_records(conn, entity, unified_id)
            cluster = None if row is None else IdentityCluster(unified_id, codec.loads(row[0]), int(row[1]))  # type: ignore[arg-type]  # a JSON object
            return cluster, records

        return await self._read(read)

    async def list_identity_clusters(self, entity: str, *, limit: int = 1000, offset: int = 0) -> list[IdentityCluster]:
        """Clusters by unified ID, a page at a time."""

        def read(conn: Conn) -> list[IdentityCluster]:
            rows = self._x(
                conn,
                "SELECT unified_id, golden, size FROM identity_clusters WHERE entity = ?"
                " ORDER BY unified_id LIMIT ? OFFSET ?",
                (entity, limit, offset),
            ).fetchall()
            return [IdentityCluster(r[0], codec.loads(r[1]), int(r[2])) for r in rows]  # type: ignore[arg-type]  # JSON objects

        return await self._read(read)

    async def list_identity_decisions(self, entity: str) -> list[IdentityDecision]:
        """A steward's merges and splits, oldest first."""

        def read(conn: Conn) -> list[IdentityDecision]:
            rows = self._x(
                conn,
                "SELECT id, kind, left_refs, right_refs, reason, actor, created_ms FROM identity_decisions"
                " WHERE entity = ? ORDER BY created_ms, id",
                (entity,),
            ).fetchall()
            return [
                IdentityDecision(r[0], r[1], codec.loads(r[2]), codec.loads(r[3]), r[4], r[5], from_ms(r[6]))  # type: ignore[arg-type]  # lists; NOT NULL
                for r in rows
            ]

        return await self._read(read)

    def _cluster_records(self, conn: Conn, entity: str, unified_id: str) -> list[IdentityRecord]:
        records = self._records(conn, _CLUSTER_RECORDS, (entity, unified_id))
        return sorted(records, key=lambda r: (r.source, r.key))

    def _records(self, conn: Conn, sql: LiteralString, params: tuple[Any, ...]) -> list[IdentityRecord]:
        return [
            IdentityRecord(r[0], r[1], r[2], int(r[3]), _DECODE(r[4]), r[5])
            for r in self._x(conn, sql, params).fetchall()
        ]

    def _insert_records(self, conn: Conn, entity: str, records: Sequence[IdentityRecord], at: int) -> None:
        rows = [(entity, r.source, r.key, r.unified_id, r.origin_id, r.trust, _dumps(r.data), at) for r in records]
        self._insert_many(
            conn,
            "identity_records (entity, source, source_key, unified_id, origin_id, trust, data, updated_ms)",
            ("text", "text", "text", "text", "text", "bigint", "text", "bigint"),
            rows,
        )

    def _insert_keys(self, conn: Conn, entity: str, keys: Sequence[tuple[str, str, str]]) -> None:
        self._insert_many(
            conn,
            "identity_keys (entity, block_key, source, source_key)",
            ("text",) * 4,
            [(entity, *k) for k in keys],
        )

    def _insert_clusters(self, conn: Conn, entity: str, clusters: Sequence[IdentityCluster], at: int) -> None:
        self._insert_many(
            conn,
            "identity_clusters (entity, unified_id, golden, size, updated_ms)",
            ("text", "text", "text", "bigint", "bigint"),
            [(entity, c.unified_id, _dumps(c.golden), c.size, at) for c in clusters],
        )

    def _insert_many(
        self, conn: Conn, into: LiteralString, types: tuple[LiteralString, ...], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Many rows at once: `unnest` of arrays on PostgreSQL, `executemany` on SQLite."""
        if not rows:
            return
        if self._DIALECT == "postgres":
            columns = ", ".join(f"?::{t}[]" for t in types)
            sql = "INSERT INTO " + into + " SELECT * FROM unnest(" + columns + ")"  # noqa: S608 - constants only
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                conn.execute(self._sql(sql), [list(column) for column in zip(*chunk, strict=True)])
            return
        marks = ", ".join("?" * len(types))
        conn.executemany("INSERT INTO " + into + " VALUES (" + marks + ")", rows)  # noqa: S608 - constants only
