"""How the store keeps values in rows: JSON with exact numbers, large values as content-addressed
blobs, instants as epoch milliseconds; the base of both backends' SQL.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, LiteralString, TypeVar

from seamflow import clock, codec, errors
from seamflow.ids import EventId, FlowId, Json, RunId
from seamflow.store.appends import AppendBuffer, AppendTable
from seamflow.store.base import (
    JournalEntry,
    RunState,
    RunStatus,
    RunSummary,
    StepStatus,
)
from seamflow.store.group_commit import GroupCommitter

__all__ = ["BLOB_THRESHOLD_BYTES", "JOURNAL_ENTRY_LIMIT_BYTES", "Conn", "Rows", "from_ms", "to_ms"]

BLOB_THRESHOLD_BYTES = 64 * 1024
"""Values larger than this are stored once in `blobs`, by content hash, and referenced."""
JOURNAL_ENTRY_LIMIT_BYTES = 16 * 1024 * 1024
"""The largest step input or output that can be journaled."""
_REF = b"\x00blob:"

T = TypeVar("T")
Conn = Any  # a DB-API connection of the backend


def to_ms(instant: datetime) -> int:
    """An instant as integer milliseconds since the epoch."""
    return int(instant.timestamp() * 1000)


def from_ms(value: int | None) -> datetime | None:
    """Epoch milliseconds back to an aware UTC instant."""
    return None if value is None else datetime.fromtimestamp(value / 1000, UTC)


class Rows(abc.ABC):
    """Statement execution, value packing and row reading shared by every store operation.

    Backends provide `_read` (a reader connection) and may adapt `_sql` (placeholder style).
    """

    _APPEND_TABLES: ClassVar[dict[str, AppendTable]] = {
        "events": AppendTable(
            "INSERT INTO events (id, flow_id, trigger, dedupe_key, body, received_ms) VALUES ",
            "(?, ?, ?, ?, ?, ?)",
            ("text", "text", "text", "text", "bytea", "bigint"),
            tail=" ON CONFLICT (flow_id, dedupe_key) DO NOTHING",
        ),
        "runs": AppendTable(
            "INSERT INTO runs (id, flow_id, flow_version, event_id, status, parent_run_id, parent_path,"
            " created_ms, updated_ms, owner, lease_until_ms, epoch) VALUES ",
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ("text",) * 7 + ("bigint", "bigint", "text", "bigint", "integer"),
        ),
        "event_log": AppendTable(
            "INSERT INTO event_log (at_ms, kind, flow_id, run_id, path, activity, objects, attributes) VALUES ",
            "(?, ?, ?, ?, ?, ?, ?, ?)",
            ("bigint",) + ("text",) * 7,
        ),
        "journal": AppendTable(
            "INSERT INTO journal (run_id, path, attempt, generation, kind, status, input, output, error,"
            " started_ms, finished_ms) VALUES ",
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ("text", "text", "integer", "integer", "text", "text", "bytea", "bytea", "text", "bigint", "bigint"),
        ),
        "run_ends": AppendTable(  # (id, epoch, status, output, error, at_ms)
            "UPDATE runs SET status = v.column3, output = v.column4, error = v.column5, updated_ms = v.column6,"
            " finished_ms = v.column6, owner = NULL, lease_until_ms = 0 FROM (VALUES ",
            "(?, ?, ?, ?, ?, ?)",
            ("text", "integer", "text", "bytea", "text", "bigint"),
            tail=") AS v WHERE runs.id = v.column1 AND runs.epoch = v.column2",
        ),
    }
    """Tables only appended to within a transaction: written once per group commit.

    A new run's row is among them: nothing reads or changes a run in the transaction that
    creates it (it executes after its accept committed); the one read that may look for it —
    a duplicate event's first run — flushes first. So is a new event's: while a batch runs
    optimistically, the event is assumed new, and one insert for the batch's events checks it; a
    seen dedupe key re-runs the batch unit by unit. So is a run's fenced end (`run_ends`): one
    UPDATE for the batch's finished runs, each matched by its id and epoch; a run whose epoch moved
    on (another worker claimed it) re-runs the batch unit by unit, where its unit gets `LeaseLost`.
    The one read of a run's end in a transaction (`RunTx.run_end`) flushes first.
    """

    _APPENDS_EVENTS: ClassVar[bool] = True
    """Whether new events are appended in an optimistic batch: one statement for the batch's events
    instead of one per event (on SQLite each hands the GIL to the event loop and back; on PostgreSQL
    each is parsed, bound and executed by the server and dumped by psycopg in Python)."""

    _SUMMARY_COLUMNS: LiteralString = (
        "id, flow_id, flow_version, status, event_id, created_ms, updated_ms, finished_ms, error"
    )

    def __init__(self) -> None:
        self._writer: GroupCommitter | None = None
        self._appends = AppendBuffer(self._APPEND_TABLES, self._sql, arrays=self._DIALECT == "postgres")
        self._local = threading.local()
        self._readers: list[Any] = []
        self._readers_lock = threading.Lock()

    _DIALECT: ClassVar[str] = "sqlite"
    """Which migrations apply (`migrations/<dialect>/`)."""
    _SHARED: ClassVar[bool] = False
    """Whether several processes may use the database at once."""

    @property
    def is_shared(self) -> bool:
        """True where several processes may use the store at once (PostgreSQL)."""
        return self._SHARED

    _SKIP_LOCKED: ClassVar[LiteralString] = ""
    """Appended to a SELECT that claims rows: `FOR UPDATE SKIP LOCKED` where several processes write."""
    _SKIP_LOCKED_TIMERS: ClassVar[LiteralString] = ""
    _FOR_UPDATE: ClassVar[LiteralString] = ""
    """Appended to a SELECT whose row the transaction will change (a blocking row lock where several write)."""
    """The same for the timer claim, which joins runs but locks only timer rows."""

    def _sql(self, text: LiteralString) -> str:
        """Adapt placeholder style; SQL in this module is written with `?`."""
        return text

    def _one_row(self, conn: Conn, cursor: Any, error: Callable[[], Exception]) -> bool:
        """Whether the statement behind `cursor` changed exactly one row.

        A backend that pipelines a transaction's statements (PostgreSQL) answers True at once
        and checks before the commit instead: if the count is not 1 then, `error()` is raised and
        the group commit re-runs the batch unit by unit without pipelining, where this answers
        for real. So a caller may go on as if the row was changed, and must handle False.
        """
        return bool(cursor.rowcount == 1)

    def _notify_runnable(self, conn: Conn) -> None:  # noqa: B027 - a hook, empty on purpose
        """Tell idle workers of other processes that a run became claimable (on commit).

        Nothing to do for a database only one process uses; PostgreSQL sends a NOTIFY.
        """

    @abc.abstractmethod
    async def open(self) -> None:
        """Create or migrate the schema and start the writer."""

    async def close(self) -> None:
        """Commit what is queued and close every connection."""
        if self._writer is not None:
            await self._writer.stop()
            self._writer = None
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    @abc.abstractmethod
    def _connect(self) -> Any:
        """Open a connection of the backend (raises `errors.StoreError` when it cannot)."""

    @abc.abstractmethod
    def _read_failed(self, exc: Exception) -> errors.StoreError | None:
        """The store error for a driver error raised while reading, or None if it is not one."""

    async def _read(self, fn: Callable[[Conn], T]) -> T:
        """Run a read-only function on this thread's reader connection, in a worker thread."""
        return await asyncio.to_thread(self._read_sync, fn)

    def _read_sync(self, fn: Callable[[Conn], T]) -> T:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(conn, "closed", False) or getattr(conn, "broken", False):
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        try:
            return fn(conn)
        except Exception as exc:  # only driver errors are translated; ours pass through
            failure = self._read_failed(exc)
            if failure is None:
                raise
            raise failure from exc

    async def listen(self, on_wake: Callable[[str], None]) -> None:  # noqa: B027 - a hook, empty on purpose
        """Call `on_wake(channel)` when another process makes work available, until cancelled.

        A store only one process uses has nobody to hear from: this returns at once, and the
        engine relies on its own wake-ups and polling. PostgreSQL listens for NOTIFY.
        """

    async def _write(self, fn: Callable[[Conn], T]) -> T:
        if self._writer is None:
            raise errors.StoreError("the store is not open")
        return await self._writer.run(fn)

    def _x(self, conn: Conn, sql: LiteralString, params: tuple[Any, ...] = ()) -> Any:
        return conn.execute(self._sql(sql), params)

    def _pack(self, conn: Conn, value: Json, what: str) -> bytes:
        data = codec.dumps(value)
        if len(data) > JOURNAL_ENTRY_LIMIT_BYTES:
            raise errors.InvalidInput(
                f"{what} is {len(data)} bytes; expected at most {JOURNAL_ENTRY_LIMIT_BYTES}",
                code="journal.too_large",
            )
        if len(data) <= BLOB_THRESHOLD_BYTES:
            return data
        digest = hashlib.sha256(data).hexdigest()
        self._insert_blob(conn, digest, data)
        return _REF + digest.encode()

    def _insert_blob(self, conn: Conn, digest: str, data: bytes) -> None:
        self._x(
            conn,
            "INSERT INTO blobs (hash, data, created_ms) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING",
            (digest, data, to_ms(clock.now())),
        )

    def _unpack(self, conn: Conn, data: bytes | None) -> Json:
        if data is None:
            return None
        data = bytes(data)
        if data.startswith(_REF):
            row = self._x(conn, "SELECT data FROM blobs WHERE hash = ?", (data[len(_REF) :].decode(),)).fetchone()
            data = bytes(row[0])
        return codec.loads(data)

    def _journal(self, row: tuple[Any, ...]) -> None:
        """Append a journal row (written with the batch, before its commit)."""
        self._appends.add("journal", row)

    _STATE_COLUMNS: LiteralString = (
        "r.id, r.flow_id, r.flow_version, r.status, r.generation, r.event_id, e.body, e.received_ms,"
        " r.parent_run_id, r.epoch"
    )
    _ENTRY_COLUMNS: LiteralString = (
        "run_id, path, attempt, generation, kind, status, input, output, error, started_ms, finished_ms"
    )

    def _load_run(self, conn: Conn, run_id: RunId) -> RunState:
        row = self._x(
            conn,
            "SELECT " + self._STATE_COLUMNS + " FROM runs r JOIN events e ON e.id = r.event_id WHERE r.id = ?",  # noqa: S608 - constants only
            (run_id,),
        ).fetchone()
        if row is None:
            raise errors.NotFound(f"run {run_id} does not exist")
        journal = self._x(
            conn,
            "SELECT " + self._ENTRY_COLUMNS + " FROM journal WHERE run_id = ? ORDER BY started_ms, attempt",  # noqa: S608 - constants only
            (run_id,),
        ).fetchall()
        return self._state(conn, row, [self._entry(conn, j) for j in journal])

    def _load_runs(self, conn: Conn, run_ids: list[RunId]) -> dict[RunId, RunState]:
        """Several runs' states in two statements (a claimed batch); a run that does not exist is left out."""
        marks: LiteralString = ", ".join(["?"] * len(run_ids))
        rows = self._x(
            conn,
            "SELECT " + self._STATE_COLUMNS + " FROM runs r JOIN events e ON e.id = r.event_id"  # noqa: S608 - constants only
            " WHERE r.id IN (" + marks + ")",
            tuple(run_ids),
        ).fetchall()
        entries: dict[str, list[JournalEntry]] = {}
        for j in self._x(
            conn,
            "SELECT " + self._ENTRY_COLUMNS + " FROM journal WHERE run_id IN (" + marks + ")"  # noqa: S608 - constants only
            " ORDER BY run_id, started_ms, attempt",
            tuple(run_ids),
        ).fetchall():
            entries.setdefault(j[0], []).append(self._entry(conn, j))
        return {RunId(row[0]): self._state(conn, row, entries.get(row[0], [])) for row in rows}

    def _entry(self, conn: Conn, j: Any) -> JournalEntry:
        """A journal entry from a row of `_ENTRY_COLUMNS`."""
        return JournalEntry(
            path=j[1],
            attempt=j[2],
            generation=j[3],
            kind=j[4],
            status=StepStatus(j[5]),
            input=self._unpack(conn, j[6]),
            output=self._unpack(conn, j[7]),
            error=None if j[8] is None else codec.loads(j[8]),
            started=from_ms(j[9]),  # type: ignore[arg-type]  # NOT NULL column
            finished=from_ms(j[10]),  # type: ignore[arg-type]  # NOT NULL column
        )

    def _state(self, conn: Conn, row: Any, journal: list[JournalEntry]) -> RunState:
        """A run's state from a row of `_STATE_COLUMNS` and its journal."""
        return RunState(
            run_id=RunId(row[0]),
            flow_id=FlowId(row[1]),
            flow_version=row[2],
            status=RunStatus(row[3]),
            generation=row[4],
            event_id=EventId(row[5]),
            event_body=self._unpack(conn, row[6]),
            received=from_ms(row[7]),  # type: ignore[arg-type]  # NOT NULL column
            journal=journal,
            parent_run_id=None if row[8] is None else RunId(row[8]),
            epoch=row[9],
        )

    @staticmethod
    def _summary(row: Any) -> RunSummary:
        return RunSummary(
            run_id=RunId(row[0]),
            flow_id=FlowId(row[1]),
            flow_version=row[2],
            status=RunStatus(row[3]),
            event_id=EventId(row[4]),
            created=from_ms(row[5]),  # type: ignore[arg-type]  # NOT NULL column
            updated=from_ms(row[6]),  # type: ignore[arg-type]  # NOT NULL column
            finished=from_ms(row[7]),
            error=None if row[8] is None else codec.loads(row[8]),
        )
