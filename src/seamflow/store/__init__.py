"""The store: events, runs, journal, timers and the event log, on SQLite or PostgreSQL.

It persists what it is told; what happens to a run is decided by the engine's journal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seamflow.store.audit import AuditRow, ChainEnd
from seamflow.store.authorizations import ConnectionAuthorization
from seamflow.store.base import (
    Accepted,
    BusinessEvent,
    Claimed,
    DueTimer,
    FeedState,
    FlowVersion,
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
    SyncConflict,
    SyncLink,
    SyncState,
    Timer,
    TimerKind,
    Wait,
    WorkerInfo,
)
from seamflow.store.directory import (
    DirectoryEntries,
    SignInState,
    StoredDepartment,
    StoredPosition,
    StoredSession,
    StoredToken,
    StoredUser,
)
from seamflow.store.feedback import FeedbackFilter, StoredFeedback
from seamflow.store.grants import SignInRequest, StoredGrant
from seamflow.store.holders import is_dead_local, local_holder
from seamflow.store.identity import (
    IdentityCandidates,
    IdentityCluster,
    IdentityDecision,
    IdentityRecord,
    IdentityRun,
    IdentityUpdate,
)
from seamflow.store.lifecycle import Deployment, LiveShadow, ShadowResult
from seamflow.store.location import is_postgres_url
from seamflow.store.notices import NewNotice, Notice
from seamflow.store.protocols import (
    AdminStore,
    AuditStore,
    AuthorizationStore,
    DirectoryStore,
    EventLogPruning,
    EventLogReads,
    FeedbackStore,
    FeedStore,
    FlowVersions,
    IdentityStore,
    LeaseStore,
    LifecycleStore,
    MigrationStore,
    NonceStore,
    RunReads,
    RunWrites,
    ScheduleStore,
    SlotStore,
    Store,
    SyncStore,
    TaskStore,
    TokenStore,
    WebhookStore,
)
from seamflow.store.quality import MigrationCheckpoint, MigrationState, QuarantinedRow
from seamflow.store.run_tx import LogRow, NewRun, ParkedRun, PendingSignal, RunEnd, RunTx, TimerRow, lease_lost
from seamflow.store.sql import BLOB_THRESHOLD_BYTES, JOURNAL_ENTRY_LIMIT_BYTES, SqlStore
from seamflow.store.sqlite import SqliteStore
from seamflow.store.syncs import SyncLoad
from seamflow.store.tasks import ApprovalRow, Delegation, NewApproval, NewTask, StoredTask, TaskFilter
from seamflow.store.tokens import ConnectionToken, Obtain

if TYPE_CHECKING:
    from seamflow.store.postgres import PostgresStore


def __getattr__(name: str) -> object:
    """`PostgresStore` is imported on first use: psycopg costs SQLite users start-up time for nothing."""
    if name == "PostgresStore":
        from seamflow.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BLOB_THRESHOLD_BYTES",
    "JOURNAL_ENTRY_LIMIT_BYTES",
    "Accepted",
    "AdminStore",
    "ApprovalRow",
    "AuditRow",
    "AuditStore",
    "AuthorizationStore",
    "BusinessEvent",
    "ChainEnd",
    "Claimed",
    "ConnectionAuthorization",
    "ConnectionToken",
    "Delegation",
    "Deployment",
    "DirectoryEntries",
    "DirectoryStore",
    "DueTimer",
    "EventLogPruning",
    "EventLogReads",
    "FeedState",
    "FeedStore",
    "FeedbackFilter",
    "FeedbackStore",
    "FlowVersion",
    "FlowVersions",
    "IdentityCandidates",
    "IdentityCluster",
    "IdentityDecision",
    "IdentityRecord",
    "IdentityRun",
    "IdentityStore",
    "IdentityUpdate",
    "JournalEntry",
    "Lease",
    "LeaseStore",
    "LifecycleStore",
    "LiveShadow",
    "LogEntry",
    "LogRow",
    "MigrationCheckpoint",
    "MigrationState",
    "MigrationStore",
    "NewApproval",
    "NewEvent",
    "NewNotice",
    "NewRun",
    "NewTask",
    "NonceStore",
    "Notice",
    "Obtain",
    "ParkedRun",
    "PendingSignal",
    "PostgresStore",
    "QuarantinedRow",
    "RunEnd",
    "RunFilter",
    "RunFinish",
    "RunReads",
    "RunState",
    "RunStatus",
    "RunSummary",
    "RunTx",
    "RunWrites",
    "ScheduleStore",
    "ShadowResult",
    "SignInRequest",
    "SignInState",
    "SlotStore",
    "SqlStore",
    "SqliteStore",
    "StepRecord",
    "StepStatus",
    "Store",
    "StoredDepartment",
    "StoredFeedback",
    "StoredGrant",
    "StoredPosition",
    "StoredSession",
    "StoredTask",
    "StoredToken",
    "StoredUser",
    "SyncConflict",
    "SyncLink",
    "SyncLoad",
    "SyncState",
    "SyncStore",
    "TaskFilter",
    "TaskStore",
    "Timer",
    "TimerKind",
    "TimerRow",
    "TokenStore",
    "Wait",
    "WebhookStore",
    "WorkerInfo",
    "is_dead_local",
    "is_postgres_url",
    "lease_lost",
    "local_holder",
]
