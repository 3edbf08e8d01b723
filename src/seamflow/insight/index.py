"""The process index: the object-centric log kept queryable in DuckDB as it grows.

Activities, object types and objects are integer-coded once. Each appended batch of events
updates, for the objects it touched only, the flattened steps (each event of an object with
the activity and time of the object's previous event: the directly-follows edges) and the
case summaries (start, end, variant). A process map is then one aggregate over ready edges —
nothing is re-read or re-sorted per request. Order within an object follows pm4py's: by
timestamp, then by the ingest sequence number; an event that arrives late (an earlier
timestamp than the object's last) is placed where it belongs, because the touched objects'
steps are derived again from all their events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString, TypeVar

import duckdb
import numpy as np

from seamflow import errors
from seamflow.insight.model import Event

__all__ = ["ProcessIndex"]

_T = TypeVar("_T")
_MEMO_SIZE = 64

_SCHEMA: tuple[LiteralString, ...] = (
    "CREATE TABLE IF NOT EXISTS activities (code INTEGER PRIMARY KEY, name VARCHAR NOT NULL)",
    "CREATE TABLE IF NOT EXISTS object_types (code SMALLINT PRIMARY KEY, name VARCHAR NOT NULL)",
    "CREATE TABLE IF NOT EXISTS objects (code INTEGER PRIMARY KEY, otype SMALLINT NOT NULL, id VARCHAR NOT NULL)",
    "CREATE TABLE IF NOT EXISTS object_attributes (obj INTEGER, name VARCHAR, value VARCHAR, seq BIGINT)",
    "CREATE TABLE IF NOT EXISTS events (seq BIGINT, ts_ms BIGINT, act INTEGER, resource VARCHAR)",
    "CREATE TABLE IF NOT EXISTS e2o (seq BIGINT, obj INTEGER, otype SMALLINT, qualifier VARCHAR)",
    "CREATE TABLE IF NOT EXISTS o2o (src INTEGER, dst INTEGER, qualifier VARCHAR)",
    "CREATE TABLE IF NOT EXISTS steps (otype SMALLINT, obj INTEGER, seq BIGINT, ts_ms BIGINT, act INTEGER,"
    " prev_act INTEGER, prev_ts_ms BIGINT, resource VARCHAR)",
    "CREATE TABLE IF NOT EXISTS cases (otype SMALLINT, obj INTEGER, start_ms BIGINT, end_ms BIGINT,"
    " events INTEGER, start_act INTEGER, end_act INTEGER, variant VARCHAR, end_seq BIGINT)",
    "CREATE TABLE IF NOT EXISTS watermark (last_seq BIGINT)",
    # Added after the first release: where an event happened and whether a person typed it (diagnosis).
    "ALTER TABLE events ADD COLUMN IF NOT EXISTS system VARCHAR",
    "ALTER TABLE events ADD COLUMN IF NOT EXISTS is_manual BOOLEAN",
)

_TABLES = (
    "activities",
    "object_types",
    "objects",
    "object_attributes",
    "events",
    "e2o",
    "o2o",
    "steps",
    "cases",
    "watermark",
)

_EXTEND: tuple[LiteralString, ...] = (
    # The batch's relations, found through the zone maps of the seq columns (appended in order).
    "CREATE OR REPLACE TEMP TABLE fresh AS SELECT x.otype, x.obj, e.seq, e.ts_ms, e.act, e.resource"
    " FROM e2o x JOIN events e ON e.seq = x.seq WHERE x.seq >= ? AND e.seq >= ?",
    # Late: an object with a new event before its case's last step; derived again from all its events.
    "CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT f.obj FROM fresh f JOIN cases c ON c.obj = f.obj"
    " WHERE f.ts_ms < c.end_ms OR (f.ts_ms = c.end_ms AND f.seq < c.end_seq)",
    # In order: the steps continue from the case's last one, the case grows at its end.
    "INSERT INTO steps SELECT f.otype, f.obj, f.seq, f.ts_ms, f.act, coalesce(lag(f.act) OVER w, c.end_act),"
    " coalesce(lag(f.ts_ms) OVER w, c.end_ms), f.resource FROM fresh f LEFT JOIN cases c ON c.obj = f.obj"
    " WHERE f.obj NOT IN (SELECT obj FROM touched) WINDOW w AS (PARTITION BY f.obj ORDER BY f.ts_ms, f.seq)",
    "CREATE OR REPLACE TEMP TABLE grown AS SELECT otype, obj, min(ts_ms) AS start_ms, max(ts_ms) AS end_ms,"
    " count(*)::INTEGER AS n, arg_min(act, (ts_ms, seq)) AS first_act, arg_max(act, (ts_ms, seq)) AS last_act,"
    " string_agg(act::VARCHAR, ',' ORDER BY ts_ms, seq) AS variant, arg_max(seq, (ts_ms, seq)) AS end_seq"
    " FROM fresh WHERE obj NOT IN (SELECT obj FROM touched) GROUP BY otype, obj",
    "UPDATE cases SET end_ms = g.end_ms, events = cases.events + g.n, end_act = g.last_act,"
    " variant = cases.variant || ',' || g.variant, end_seq = g.end_seq FROM grown g WHERE cases.obj = g.obj",
    "INSERT INTO cases SELECT g.* FROM grown g WHERE g.obj NOT IN (SELECT obj FROM cases)",
)

_DERIVE: tuple[LiteralString, ...] = (
    "DELETE FROM steps WHERE obj IN (SELECT obj FROM touched)",
    "INSERT INTO steps SELECT e2o.otype, e2o.obj, e.seq, e.ts_ms, e.act,"
    " lag(e.act) OVER w, lag(e.ts_ms) OVER w, e.resource"
    " FROM e2o JOIN events e USING (seq) WHERE e2o.obj IN (SELECT obj FROM touched)"
    " WINDOW w AS (PARTITION BY e2o.obj ORDER BY e.ts_ms, e.seq)",
    "DELETE FROM cases WHERE obj IN (SELECT obj FROM touched)",
    "INSERT INTO cases SELECT otype, obj, min(ts_ms), max(ts_ms), count(*)::INTEGER,"
    " arg_min(act, (ts_ms, seq)), arg_max(act, (ts_ms, seq)),"
    " string_agg(act::VARCHAR, ',' ORDER BY ts_ms, seq), arg_max(seq, (ts_ms, seq))"
    " FROM steps WHERE obj IN (SELECT obj FROM touched) GROUP BY otype, obj",
)


@dataclass(slots=True)
class _Batch:
    """Columns of one appended batch, integer-coded."""

    seq: list[int]
    ts: list[int]
    act: list[int]
    resource: list[str | None]
    system: list[str | None]
    is_manual: list[bool]
    e2o_seq: list[int]
    e2o_obj: list[int]
    e2o_type: list[int]
    e2o_qualifier: list[str]
    attr_obj: list[int]
    attr_name: list[str]
    attr_value: list[str]
    attr_seq: list[int]
    links: list[tuple[int, int, str]]


class ProcessIndex:
    """The object-centric log in DuckDB, with its directly-follows edges and cases kept up to date.

    One index serves one process; its methods may be called from several threads (appends take
    turns; queries run beside them, each on a cursor of its own). `path=None` keeps it in memory; a
    file keeps it across restarts.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        try:
            self._db = duckdb.connect(str(path) if path is not None else ":memory:")
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():  # DuckDB: one process writes a database file at a time
                raise errors.Conflict(
                    f"the insight index {path} is open in another process", code="insight.index_busy"
                ) from exc
            raise errors.StoreError(f"opening the insight index {path} failed: {exc}") from exc
        except duckdb.Error as exc:
            raise errors.StoreError(f"opening the insight index {path} failed: {exc}") from exc
        self.path = path
        """The DuckDB file the index is kept in (None: in memory)."""
        self._create()
        self.version = 0
        """Grows with every append: a result computed at one version is valid until the next."""
        self._memo: dict[str, object] = {}

    def _create(self) -> None:
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._load_codes()
        row = self._db.execute("SELECT max(last_seq) FROM watermark").fetchone()
        self._last_seq: int = 0 if row is None or row[0] is None else int(row[0])

    def clear(self) -> None:
        """Forget every event: the index is empty again (a kept index that is not of this log)."""
        with self._lock:
            try:
                for table in _TABLES:
                    self._db.execute("DROP TABLE IF EXISTS " + table)
                self._create()
            except duckdb.Error as exc:
                raise errors.StoreError(f"clearing the insight index failed: {exc}") from exc
            self.version += 1
            self._memo.clear()

    def time_of(self, seq: int) -> int | None:
        """The time (ms since the epoch, UTC) of the event appended with `seq`, or None if there is none."""
        row = self.query("SELECT ts_ms FROM events WHERE seq = ?", [seq])
        return int(row[0][0]) if row else None

    @property
    def last_seq(self) -> int:
        """The ingest sequence number of the last event appended (0: none)."""
        return self._last_seq

    def close(self) -> None:
        """Close the DuckDB connection."""
        with self._lock:
            self._db.close()

    def append(self, events: Iterable[Event]) -> int:
        """Add events and bring the edges and cases of the objects they touch up to date.

        Events at or below `last_seq` were appended already and are skipped, so reading the
        store's log again from an older point does no harm.

        Returns:
            How many events were added.
        """
        with self._lock:
            batch = self._encode(events)
            if not batch.seq:
                return 0
            try:
                self._write(batch)
            except BaseException as exc:
                self._load_codes()  # the codes handed out for the failed batch were not stored
                if isinstance(exc, duckdb.Error):
                    raise errors.StoreError(f"updating the insight index failed: {exc}") from exc
                raise
            self._last_seq = max(self._last_seq, max(batch.seq))
            self.version += 1
            self._memo.clear()
            return len(batch.seq)

    def remembered(self, key: str, compute: Callable[[], _T]) -> _T:
        """`compute()`, or its result from an earlier call with the same key if no event was appended since.

        A map asked for again while the log did not grow is answered from memory; the first
        append after it forgets every remembered result.
        """
        with self._lock:
            version = self.version
            if key in self._memo:
                return self._memo[key]  # type: ignore[return-value]  # stored by the call with this key
        value = compute()
        with self._lock:
            if self.version == version:
                if len(self._memo) >= _MEMO_SIZE:
                    self._memo.clear()
                self._memo[key] = value
        return value

    def archive(self, folder: Path) -> None:
        """Write the index as Parquet files into `folder` (one per table), for keeping a pruned log queryable.

        `load_archive` reads them back into an empty index; KPIs and maps then answer as before.
        """
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                for table in _TABLES:
                    self._db.table(table).write_parquet(str(folder / f"{table}.parquet"))
            except duckdb.Error as exc:
                raise errors.StoreError(f"writing the insight archive to {folder} failed: {exc}") from exc

    def load_archive(self, folder: Path) -> None:
        """Read an archive written by `archive` into this index, which must be empty.

        Raises:
            errors.Conflict: the index holds events already (`insight.index_not_empty`).
            errors.InvalidInput: the folder is not an insight archive (`insight.archive_invalid`).
        """
        with self._lock:
            if self._last_seq or self._activities:
                raise errors.Conflict(
                    f"the insight index holds events up to seq {self._last_seq}; an archive loads into an empty one",
                    code="insight.index_not_empty",
                )
            missing = [t for t in _TABLES if not (folder / f"{t}.parquet").is_file()]
            if missing:
                raise errors.InvalidInput(
                    f"{folder}: not an insight archive: no {', '.join(t + '.parquet' for t in missing)}",
                    code="insight.archive_invalid",
                )
            try:
                self._db.execute("BEGIN")
                for table in _TABLES:
                    # By name: an archive written before a column was added still loads (the column stays NULL).
                    self._db.execute(
                        "INSERT INTO " + table + " BY NAME SELECT * FROM read_parquet(?)",  # noqa: S608  # constant names
                        [str(folder / f"{table}.parquet")],
                    )
                self._db.execute("COMMIT")
            except duckdb.Error as exc:
                self._db.execute("ROLLBACK")
                raise errors.InvalidInput(
                    f"{folder}: not an insight archive: {exc}", code="insight.archive_invalid"
                ) from exc
            self._load_codes()
            row = self._db.execute("SELECT max(last_seq) FROM watermark").fetchone()
            self._last_seq = 0 if row is None or row[0] is None else int(row[0])
            self.version += 1
            self._memo.clear()

    def query(
        self, sql: LiteralString, params: Sequence[object] = (), lookup: dict[str, list[str]] | None = None
    ) -> list[tuple[Any, ...]]:
        """Rows of a read-only query over the index's tables (see docs/howto/insight.md).

        `lookup` (columns `key`, `value`) is the table `_lookup` during the query: e.g. people's departments.

        A query runs on a cursor of its own, beside appends and other queries (each sees the index as
        of an append): a diagnosis recomputed in the background does not hold up a map or a catch-up.
        """
        with self._lock:
            cursor = self._db.cursor()
        try:
            if lookup is not None:
                _register(cursor, "_lookup", {"key": lookup["key"], "value": lookup["value"]})
            return cursor.execute(sql, list(params)).fetchall()
        except duckdb.Error as exc:
            raise errors.StoreError(f"querying the insight index failed: {exc}") from exc
        finally:
            cursor.close()

    def each_chunk(
        self,
        sql: LiteralString,
        consume: Callable[[list[tuple[Any, ...]]], None],
        size: int = 20_000,
        params: Sequence[object] | dict[str, object] = (),
    ) -> None:
        """Hand the rows of a read-only query to `consume` a chunk at a time (an export of the whole log)."""
        with self._lock:
            try:
                result = self._db.execute(sql, params if isinstance(params, dict) else list(params))
                while rows := result.fetchmany(size):
                    consume(rows)
            except duckdb.Error as exc:
                raise errors.StoreError(f"querying the insight index failed: {exc}") from exc

    def activity_names(self) -> dict[int, str]:
        """Activity code -> name."""
        with self._lock:
            return {c: n for n, c in self._activities.items()}

    def object_type_code(self, name: str) -> int | None:
        """The code of an object type, or None if no event touched an object of that type."""
        with self._lock:
            return self._types.get(name)

    def object_types(self) -> list[str]:
        """The object types seen, in order of first appearance."""
        with self._lock:
            return sorted(self._types, key=self._types.__getitem__)

    def _load_codes(self) -> None:
        self._activities: dict[str, int] = dict(
            self._db.execute("SELECT name, code FROM activities ORDER BY code").fetchall()
        )
        self._types: dict[str, int] = dict(
            self._db.execute("SELECT name, code FROM object_types ORDER BY code").fetchall()
        )
        self._objects_loaded: dict[tuple[int, str], int] | None = None  # read at the first append

    @property
    def _objects(self) -> dict[tuple[int, str], int]:
        # Object codes are needed only to append: a process that only asks questions never reads them.
        if self._objects_loaded is None:
            rows = self._db.execute("SELECT code, otype, id FROM objects ORDER BY code").fetchall()
            self._objects_loaded = {(t, i): c for c, t, i in rows}
        return self._objects_loaded

    def _code(self, table: dict[Any, int], key: Any) -> int:
        code = table.get(key)
        if code is None:
            code = table[key] = len(table)
        return code

    def _encode(self, events: Iterable[Event]) -> _Batch:
        b = _Batch([], [], [], [], [], [], [], [], [], [], [], [], [], [], [])
        new_acts = len(self._activities)
        new_types = len(self._types)
        new_objs = len(self._objects)
        for ev in events:
            if ev.seq <= self._last_seq:
                continue
            b.seq.append(ev.seq)
            b.ts.append(ev.at_ms)
            b.act.append(self._code(self._activities, ev.activity))
            b.resource.append(ev.resource)
            b.system.append(ev.system)
            b.is_manual.append(ev.is_manual)
            seen: set[int] = set()
            for o in ev.objects:
                t = self._code(self._types, o.type)
                obj = self._code(self._objects, (t, o.id))
                if obj in seen:  # one relation per object and event, as in a flattened log
                    continue
                seen.add(obj)
                b.e2o_seq.append(ev.seq)
                b.e2o_obj.append(obj)
                b.e2o_type.append(t)
                b.e2o_qualifier.append(o.qualifier)
                for name, value in o.attributes.items():
                    b.attr_obj.append(obj)
                    b.attr_name.append(name)
                    b.attr_value.append(value)
                    b.attr_seq.append(ev.seq)
            for link in ev.links:
                src = self._code(self._objects, (self._code(self._types, link.source_type), link.source_id))
                dst = self._code(self._objects, (self._code(self._types, link.target_type), link.target_id))
                b.links.append((src, dst, link.qualifier))
        self._pending = (new_acts, new_types, new_objs)
        return b

    def _derive(self, b: _Batch) -> None:
        """Steps and cases of the batch's objects: extended in place when in order, derived again when late."""
        first = min(b.seq)
        for statement in _EXTEND:
            self._db.execute(statement, [first, first] if "?" in statement else [])
        for statement in _DERIVE:
            self._db.execute(statement)

    def _write(self, b: _Batch) -> None:
        db = self._db
        new_acts, new_types, new_objs = self._pending
        db.execute("BEGIN")
        try:
            _insert(
                db,
                "activities",
                {"c": list(range(new_acts, len(self._activities))), "n": list(self._activities)[new_acts:]},
            )
            _insert(
                db, "object_types", {"c": list(range(new_types, len(self._types))), "n": list(self._types)[new_types:]}
            )
            objs = list(self._objects)[new_objs:]
            _insert(
                db,
                "objects",
                {"c": list(range(new_objs, len(self._objects))), "t": [t for t, _ in objs], "i": [i for _, i in objs]},
            )
            _insert(
                db,
                "events",
                {"s": b.seq, "t": b.ts, "a": b.act, "r": b.resource, "y": b.system, "m": b.is_manual},
            )
            _insert(db, "e2o", {"s": b.e2o_seq, "o": b.e2o_obj, "t": b.e2o_type, "q": b.e2o_qualifier})
            _insert(db, "object_attributes", {"o": b.attr_obj, "n": b.attr_name, "v": b.attr_value, "s": b.attr_seq})
            if b.links:
                _insert(
                    db,
                    "o2o",
                    {"s": [x[0] for x in b.links], "d": [x[1] for x in b.links], "q": [x[2] for x in b.links]},
                )
            self._derive(b)
            db.execute("DELETE FROM watermark")
            db.execute("INSERT INTO watermark VALUES (?)", [max(self._last_seq, max(b.seq))])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _register(db: duckdb.DuckDBPyConnection, name: str, columns: dict[str, list[Any]]) -> None:
    """Columns as a DuckDB view over numpy arrays (text and nullable columns as objects)."""

    def array(values: list[Any]) -> np.ndarray[Any, Any]:
        is_object = any(v is None or isinstance(v, str) for v in values)
        return np.asarray(values, dtype=object if is_object else None)

    db.register(name, {k: array(v) for k, v in columns.items()})


def _insert(db: duckdb.DuckDBPyConnection, table: LiteralString, columns: dict[str, list[Any]]) -> None:
    """Append columns to a table in one scan (numpy arrays: no row-by-row Python)."""
    first = next(iter(columns.values()))
    if not first:
        return
    _register(db, "_batch", columns)
    try:
        db.execute("INSERT INTO " + table + " SELECT * FROM _batch")  # noqa: S608  # table names are constants
    finally:
        db.unregister("_batch")
