"""The store: events, runs, journal, timers and the event log, on SQLite or PostgreSQL."""

from __future__ import annotations

from seamflow.store.base import (
    Accepted,
    BusinessEvent,
    Claimed,
    DueTimer,
    FeedState,
    JournalEntry,
    Lease,
    LogEntry,
    NewEvent,
    RunFilter,
    RunFinish,
    RunState,
    RunStatus,
    RunSummary,
    StepRecord,
    StepStatus,
    Store,
    SyncConflict,
    SyncLink,
    SyncState,
    Timer,
    TimerKind,
    Wait,
    WorkerInfo,
)
from seamflow.store.postgres import PostgresStore, is_postgres_url
from seamflow.store.sql import BLOB_THRESHOLD_BYTES, JOURNAL_ENTRY_LIMIT_BYTES, SqlStore
from seamflow.store.sqlite import SqliteStore
from seamflow.store.syncs import SyncLoad

__all__ = [
    "BLOB_THRESHOLD_BYTES",
    "JOURNAL_ENTRY_LIMIT_BYTES",
    "Accepted",
    "BusinessEvent",
    "Claimed",
    "DueTimer",
    "FeedState",
    "JournalEntry",
    "Lease",
    "LogEntry",
    "NewEvent",
    "PostgresStore",
    "RunFilter",
    "RunFinish",
    "RunState",
    "RunStatus",
    "RunSummary",
    "SqlStore",
    "SqliteStore",
    "StepRecord",
    "StepStatus",
    "Store",
    "SyncConflict",
    "SyncLink",
    "SyncLoad",
    "SyncState",
    "Timer",
    "TimerKind",
    "Wait",
    "WorkerInfo",
    "is_postgres_url",
]
