"""The store's interface, one small protocol per area; callers outside `store/` name the one they use.

`SqliteStore` and `PostgresStore` implement them all (`Store`). A component asks for the
narrowest protocol that covers its work: the journal for `RunWrites`, the lease keeper for
`LeaseStore`, the REST API for `RunReads` and `EventLogReads`, and so on.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from seamflow.ids import FlowId, Json, RunId
from seamflow.store.audit import AuditRow, ChainEnd
from seamflow.store.authorizations import ConnectionAuthorization
from seamflow.store.base import (
    Claimed,
    FeedState,
    FlowVersion,
    LogEntry,
    RunFilter,
    RunState,
    RunSummary,
    SyncConflict,
    SyncState,
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
from seamflow.store.identity import (
    IdentityCandidates,
    IdentityCluster,
    IdentityDecision,
    IdentityRecord,
    IdentityRun,
    IdentityUpdate,
)
from seamflow.store.lifecycle import Deployment, LiveShadow, ShadowResult
from seamflow.store.quality import MigrationCheckpoint, MigrationState, QuarantinedRow
from seamflow.store.run_tx import RunTx
from seamflow.store.syncs import SyncLoad
from seamflow.store.tasks import Delegation, StoredTask, TaskFilter
from seamflow.store.tokens import ConnectionToken, Obtain

__all__ = [
    "AdminStore",
    "AuditStore",
    "AuthorizationStore",
    "DirectoryStore",
    "EventLogPruning",
    "EventLogReads",
    "FeedStore",
    "FeedbackStore",
    "FlowVersions",
    "LeaseStore",
    "LifecycleStore",
    "RunReads",
    "RunWrites",
    "ScheduleStore",
    "SlotStore",
    "Store",
    "SyncStore",
    "TaskStore",
    "TokenStore",
    "WebhookStore",
]

T = TypeVar("T")


class RunWrites(Protocol):
    """Transactions over runs, the journal, waits, timers, signals and the event log (see `RunTx`)."""

    async def transact(self, unit: Callable[[RunTx], T]) -> T:
        """Run `unit` in the next transaction; return its result once committed."""
        ...


class RunReads(Protocol):
    """Runs as executors and people read them."""

    async def load_run(self, run_id: RunId) -> RunState: ...
    async def load_runs(self, run_ids: list[RunId]) -> dict[RunId, RunState]: ...
    async def get_run(self, run_id: RunId) -> tuple[RunSummary, RunState]: ...
    async def list_runs(self, query: RunFilter) -> list[RunSummary]: ...
    async def list_unfinished_runs(self) -> list[RunId]: ...
    async def find_response(self, run_id: RunId) -> Json | None: ...
    async def count_runs_by_status(self) -> dict[str, int]: ...
    async def count_runs_by_flow_status(self) -> dict[str, dict[str, int]]: ...
    async def count_open_runs_of_flows(self, flow_ids: Sequence[str]) -> dict[str, dict[str, int]]: ...
    async def count_runs_at_a_glance(self, finished_since: datetime) -> dict[str, int]: ...


class FlowVersions(Protocol):
    """The source of every flow version a run may still need."""

    async def save_flow_versions(self, versions: Sequence[FlowVersion]) -> None: ...
    async def load_flow_source(self, flow_id: FlowId, version: str) -> str | None: ...


class EventLogReads(Protocol):
    """The event log, in order."""

    async def list_event_log(
        self, *, after_seq: int = 0, limit: int = 100, run_id: str | None = None
    ) -> list[LogEntry]: ...


class EventLogPruning(Protocol):
    """Deleting archived rows of the event log (insight archives them first)."""

    async def prune_event_log(self, through_seq: int, before: datetime, limit: int) -> int: ...


class LeaseStore(Protocol):
    """Workers, their leases on runs, claims and wake-ups between processes."""

    @property
    def is_shared(self) -> bool:
        """True where several processes may use the store at once (PostgreSQL)."""
        ...

    async def register_worker(self, worker: WorkerInfo) -> None: ...
    async def heartbeat(
        self,
        worker_id: str,
        now: datetime,
        lease_until: datetime,
        holding: Collection[RunId] = (),
        slots: Collection[tuple[str, int]] = (),
    ) -> int: ...
    async def release_worker(self, worker_id: str, now: datetime) -> int: ...
    async def claim_runs(
        self, worker_id: str, now: datetime, lease_until: datetime, limit: int, run_ids: list[RunId] | None = None
    ) -> list[Claimed]: ...
    async def count_unclaimed_runs(self, now: datetime) -> int: ...
    async def list_workers(self, *, include_stopped: bool = False) -> list[WorkerInfo]: ...
    async def report_catalog(self, worker_id: str, digest: str) -> None: ...
    async def list_catalogs(self, host: str, alive_since: datetime) -> dict[str, str | None]: ...
    async def forget_workers(self, before: datetime) -> None: ...
    async def prune_finished_runs(self, before: datetime, limit: int) -> int: ...
    async def listen(self, on_wake: Callable[[str], None]) -> None: ...


class SlotStore(Protocol):
    """Cluster-wide concurrency slots, leased like runs."""

    async def acquire_slot(
        self, scope: str, limit: int, worker_id: str, holder: str, now: datetime, lease_until: datetime
    ) -> int | None: ...
    async def release_slot(self, scope: str, slot: int, worker_id: str) -> None: ...


class ScheduleStore(Protocol):
    """Schedules' next ticks and the next due timer."""

    async def upsert_schedule(self, flow_id: FlowId, spec: str, next_due: datetime) -> datetime: ...
    async def remove_schedules_except(self, flow_ids: list[str]) -> None: ...
    async def due_schedules(self, now: datetime) -> list[tuple[FlowId, datetime]]: ...
    async def next_timer_due(self) -> datetime | None: ...


class FeedStore(Protocol):
    """Cursors and health of `poll`/`consume` triggers, each leased to one process."""

    async def claim_feed(
        self, flow_id: str, spec: str, worker_id: str, now: datetime, lease_until: datetime, *, start_over: bool = False
    ) -> FeedState | None: ...
    async def save_feed_progress(
        self, flow_id: str, worker_id: str, cursor: Json, items: int, last_item: datetime | None, now: datetime
    ) -> bool: ...
    async def feed_failed(self, flow_id: str, worker_id: str, error: str, now: datetime) -> None: ...
    async def list_feeds(self) -> list[FeedState]: ...


class SyncStore(Protocol):
    """Canonical records, the crosswalk and conflicts of record syncs."""

    async def sync_transact(
        self,
        sync_id: str,
        side: str,
        side_key: str | None,
        match_key: str | None,
        decide: Callable[[SyncState], tuple[SyncState, T]],
        *,
        canonical_id: str | None = None,
    ) -> T: ...
    async def list_sync_records(self, sync_id: str) -> list[SyncState]: ...
    async def list_sync_conflicts(self, sync_id: str | None, *, status: str | None = "open") -> list[SyncConflict]: ...
    async def close_sync_conflict(self, conflict_id: str, resolution: Json) -> SyncConflict: ...
    async def get_sync_conflict(self, conflict_id: str) -> SyncConflict: ...
    async def sync_counts(self, sync_id: str) -> dict[str, Any]: ...
    async def claim_sync_load(
        self,
        sync_id: str,
        side: str,
        owner: str,
        now: datetime,
        lease_until: datetime,
        *,
        start_over: bool = False,
        replacing: str | None = None,
    ) -> SyncLoad | None: ...
    async def save_sync_load_progress(
        self, sync_id: str, side: str, owner: str, position: Json, done: int, now: datetime, lease_until: datetime
    ) -> bool: ...
    async def finish_sync_load(self, sync_id: str, side: str, owner: str, now: datetime) -> None: ...
    async def get_sync_load(self, sync_id: str, side: str) -> SyncLoad | None: ...


class DirectoryStore(Protocol):
    """Departments, positions, users, their sign-in state, personal API tokens and console sessions."""

    async def save_directory_entries(self, entries: DirectoryEntries) -> None: ...
    async def delete_directory_entry(self, kind: str, key: str) -> bool: ...
    async def list_departments(self) -> list[StoredDepartment]: ...
    async def list_positions(self) -> list[StoredPosition]: ...
    async def list_users(self, login: str | None = None) -> list[StoredUser]: ...
    async def set_password_hash(self, login: str, password_hash: str) -> bool: ...
    async def get_sign_in_state(self, login: str) -> SignInState | None: ...
    async def update_sign_in(self, login: str, decide: Callable[[SignInState], SignInState]) -> SignInState | None: ...
    async def add_user_token(self, token: StoredToken, token_hash: str) -> None: ...
    async def find_token_holder(self, token_hash: str) -> tuple[StoredToken, StoredUser | None] | None: ...
    async def list_user_tokens(self, login: str | None) -> list[StoredToken]: ...
    async def revoke_user_token(self, token_id: str, at: datetime) -> StoredToken: ...
    async def note_token_used(self, token_id: str, at: datetime) -> None: ...
    async def add_session(self, session_hash: str, session: StoredSession) -> None: ...
    async def find_session(self, session_hash: str) -> StoredSession | None: ...
    async def revoke_session(self, session_hash: str, at: datetime) -> None: ...
    async def add_grant(self, grant: StoredGrant) -> bool: ...
    async def remove_grant(self, subject: str, role: str, target: str) -> bool: ...
    async def list_grants(self, subjects: Sequence[str] | None = None) -> list[StoredGrant]: ...
    async def save_sign_in_request(self, request: SignInRequest, now: datetime) -> None: ...
    async def take_sign_in_request(self, state: str, now: datetime) -> SignInRequest | None: ...


class TaskStore(Protocol):
    """The inbox's reads: tasks of approvals (decisions are journal transactions, `RunWrites`)."""

    async def list_tasks(self, query: TaskFilter) -> list[StoredTask]: ...
    async def get_task(self, task_id: str) -> StoredTask | None: ...
    async def list_delegations(self) -> list[Delegation]: ...


class AdminStore(Protocol):
    """API tokens and the schema's state."""

    async def add_api_token(self, name: str, token_hash: str) -> None: ...
    async def has_api_token(self, token_hash: str) -> bool: ...
    async def schema_status(self) -> tuple[int, int]: ...


class TokenStore(Protocol):
    """Tokens that connections obtained by signing in, shared by the cluster (`store/tokens.py`)."""

    async def read_token(self, connection: str) -> ConnectionToken | None: ...

    async def renew_token(self, connection: str, obtain: Obtain) -> ConnectionToken | None: ...

    async def report_token_problem(self, connection: str, problem: str | None) -> None: ...

    async def list_token_problems(self) -> dict[str, str]: ...


class AuthorizationStore(Protocol):
    """Connections' OAuth2 authorizations in progress, each taken once (`store/authorizations.py`)."""

    async def save_connection_authorization(self, pending: ConnectionAuthorization, now: datetime) -> None: ...
    async def take_connection_authorization(self, state: str, now: datetime) -> ConnectionAuthorization | None: ...


class NonceStore(Protocol):
    """Nonces of OA callbacks, each claimed once across the cluster (`store/nonces.py`)."""

    async def claim_nonce(self, key: str, now: datetime, until: datetime) -> bool: ...


class AuditStore(Protocol):
    """The audit trail: hash-chained entries appended under one lock (`store/audit.py`)."""

    async def append_audit_entry(self, link: Callable[[ChainEnd], AuditRow]) -> AuditRow: ...

    async def list_audit_entries(
        self, *, since: datetime | None = None, after_seq: int = 0, limit: int | None = None
    ) -> list[AuditRow]: ...

    async def prune_audit_entries(self, before: datetime, anchor: Callable[[AuditRow, ChainEnd], AuditRow]) -> int: ...


class WebhookStore(Protocol):
    """Signatures of accepted webhooks, for replay protection (`store/webhooks.py`)."""

    async def remember_webhook_signature(self, flow_id: str, digest: str, until: datetime) -> bool: ...


class LifecycleStore(Protocol):
    """Deployments of flow versions and results of shadow runs (`store/lifecycle.py`)."""

    async def record_deployments(self, deployments: Sequence[Deployment]) -> list[Deployment]: ...
    async def list_deployments(self, flow_id: str, limit: int = 100) -> list[Deployment]: ...
    async def save_shadow_results(self, results: Sequence[ShadowResult]) -> None: ...
    async def list_shadow_results(self, flow_id: str, shadow_id: str | None = None) -> list[ShadowResult]: ...
    async def start_live_shadow(self, shadow: LiveShadow) -> None: ...
    async def stop_live_shadow(self, shadow_id: str, at: datetime, by: str) -> bool: ...
    async def list_live_shadows(self, flow_id: str | None = None) -> list[LiveShadow]: ...


class MigrationStore(Protocol):
    """Checkpoints and quarantine of data migrations (`store/quality.py`)."""

    async def claim_migration(
        self, migration_id: str, owner: str, now: datetime, lease_until: datetime, *, start_over: bool = False
    ) -> MigrationState | None: ...
    async def save_migration_batch(
        self, migration_id: str, owner: str, checkpoint: MigrationCheckpoint, now: datetime
    ) -> bool: ...
    async def finish_migration(self, migration_id: str, owner: str, now: datetime) -> None: ...
    async def release_migration(self, migration_id: str, owner: str) -> None: ...
    async def get_migration(self, migration_id: str) -> MigrationState | None: ...
    async def list_quarantine(self, migration_id: str, *, status: str | None = "open") -> list[QuarantinedRow]: ...
    async def settle_quarantine(
        self, migration_id: str, loaded: Sequence[int], still_bad: Sequence[QuarantinedRow], now: datetime
    ) -> None: ...


class IdentityStore(Protocol):
    """Identity resolution's records, keys, clusters and a steward's decisions (`store/identity.py`)."""

    async def save_identity_run(self, run: IdentityRun, now: datetime) -> None: ...
    async def save_identity_update(self, update: IdentityUpdate, now: datetime) -> str | None: ...
    async def get_identity_settings(self, entity: str) -> tuple[int, Json] | None: ...
    async def list_identity_records(self, entity: str) -> list[IdentityRecord]: ...
    async def find_identity_neighbours(
        self, entity: str, block_keys: Sequence[str], source: str, key: str
    ) -> IdentityCandidates: ...
    async def get_identity_records(self, entity: str, refs: Sequence[tuple[str, str]]) -> list[IdentityRecord]: ...
    async def get_identity_cluster(
        self, entity: str, unified_id: str
    ) -> tuple[IdentityCluster | None, list[IdentityRecord]]: ...
    async def list_identity_clusters(
        self, entity: str, *, limit: int = 1000, offset: int = 0
    ) -> list[IdentityCluster]: ...
    async def list_identity_decisions(self, entity: str) -> list[IdentityDecision]: ...


class FeedbackStore(Protocol):
    """Feedback on flows, steps and runs, each with its event-log row (`store/feedback.py`)."""

    async def add_feedback(self, feedback: StoredFeedback) -> None: ...
    async def close_feedback(self, feedback_id: str, by: str, note: str, at: datetime) -> StoredFeedback: ...
    async def list_feedback(self, query: FeedbackFilter) -> list[StoredFeedback]: ...


class Store(
    RunWrites,
    RunReads,
    FlowVersions,
    EventLogReads,
    EventLogPruning,
    LeaseStore,
    SlotStore,
    ScheduleStore,
    FeedStore,
    SyncStore,
    DirectoryStore,
    TokenStore,
    AuthorizationStore,
    TaskStore,
    AdminStore,
    NonceStore,
    AuditStore,
    WebhookStore,
    MigrationStore,
    IdentityStore,
    LifecycleStore,
    FeedbackStore,
    Protocol,
):
    """The whole store: what a process opens and hands out in narrow parts. Every write commits before it returns."""

    async def open(self) -> None:
        """Create or migrate the schema and start the writer."""
        ...

    async def close(self) -> None:
        """Commit what is queued and close every connection."""
        ...
