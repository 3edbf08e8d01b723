"""The records the store keeps and answers with: events, runs, journal entries, timers, waits, workers, feeds, syncs.

The store's operations are grouped in small protocols (`protocols.py`); these are their values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from seamflow.ids import EventId, FlowId, Json, RunId

if TYPE_CHECKING:
    from seamflow.store.tasks import NewApproval

__all__ = [
    "Accepted",
    "BusinessEvent",
    "Claimed",
    "DueTimer",
    "FeedState",
    "FlowVersion",
    "JournalEntry",
    "Lease",
    "LogEntry",
    "NewEvent",
    "RunFilter",
    "RunFinish",
    "RunState",
    "RunStatus",
    "RunSummary",
    "StepRecord",
    "StepStatus",
    "SyncConflict",
    "SyncLink",
    "SyncState",
    "Timer",
    "TimerKind",
    "Wait",
    "WorkerInfo",
]


class RunStatus(StrEnum):
    """Where a run is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    DEAD_LETTER = "dead_letter"

    @property
    def is_finished(self) -> bool:
        """True for completed, failed and dead-lettered runs."""
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.DEAD_LETTER)


class StepStatus(StrEnum):
    """The outcome of one attempt of a step, as journaled."""

    COMPLETED = "completed"
    """Final: the step's output is known; it is never executed again."""
    FAILED = "failed"
    """Final for this generation: the run failed or was dead-lettered at this step."""
    RETRYING = "retrying"
    """The attempt failed transiently; a retry timer is set."""
    WAITING = "waiting"
    """The step parked the run (wait or child run); a signal or timer will complete it."""


class TimerKind(StrEnum):
    """Why a durable timer exists."""

    RETRY = "retry"
    WAKE = "wake"
    """A `wait` for a duration or until an instant."""
    TIMEOUT = "timeout"
    """The timeout of a signal wait."""
    REMIND = "remind"
    """An approval's open level is due for a reminder."""
    ESCALATE = "escalate"
    """An approval's open level is overdue: escalate or decide it."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A worker's hold on a run until an instant; renewed by the worker's heartbeat."""

    owner: str
    until: datetime


@dataclass(frozen=True, slots=True)
class Claimed:
    """A run a worker now holds, with the fencing epoch its journal writes must carry."""

    run_id: RunId
    epoch: int


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A Seamflow process registered in the store."""

    id: str
    host: str
    pid: int
    roles: str
    started: datetime
    heartbeat: datetime
    stopped: datetime | None = None
    runs_held: int = 0


@dataclass(frozen=True, slots=True)
class FeedState:
    """Where a flow's `poll`/`consume` trigger stands: its cursor and its health."""

    flow_id: str
    spec: str
    cursor: Json
    owner: str | None
    last_poll: datetime | None
    last_ok: datetime | None
    last_item: datetime | None
    failing_since: datetime | None
    last_error: str | None
    items: int


@dataclass(frozen=True, slots=True)
class SyncLink:
    """Where a canonical record lives in one system, and the content hashes last seen and written there."""

    side: str
    key: str | None
    seen_hash: str | None = None
    written_hash: str | None = None
    """Hash of what Seamflow last wrote to this system: the same content coming back is an echo."""
    written_at: str | None = None
    """ISO instant of that write: a record read before it may be older than what the system holds."""


@dataclass(frozen=True, slots=True)
class SyncState:
    """A canonical record of a sync: its values, who changed each field when, its crosswalk links."""

    sync_id: str
    canonical_id: str
    data: dict[str, Json]
    meta: dict[str, Json]
    """Per field: {"side": the system its value came from, "at": ISO instant of that change}."""
    deleted: bool
    version: int
    links: dict[str, SyncLink]
    match_key: str | None = None
    new_conflicts: tuple[tuple[str, Json], ...] = ()
    """(field, candidates by side) to queue with this save."""


@dataclass(frozen=True, slots=True)
class SyncConflict:
    """A field both systems changed that the sync's policy could not settle."""

    id: str
    sync_id: str
    canonical_id: str
    field: str
    candidates: Json
    status: str
    resolution: Json
    created: datetime
    resolved: datetime | None


@dataclass(frozen=True, slots=True)
class FlowVersion:
    """The source of one version of a flow, kept so runs started on it can continue after an edit."""

    flow_id: FlowId
    version: str
    source: str
    path: str


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event a trigger wants accepted; accepting it creates a queued run."""

    flow_id: FlowId
    flow_version: str
    trigger: str
    body: Json
    received: datetime
    dedupe_key: str | None = None
    parent_run_id: RunId | None = None
    parent_path: str | None = None
    run_id: RunId | None = None
    """The id the run gets if the event is new (default: a fresh one)."""
    journal: tuple[JournalEntry, ...] = ()
    """Outcomes of the run's leading pure steps, committed with the event (dropped for a duplicate)."""
    lease: Lease | None = None
    """The accepting worker holds the new run at once (epoch 1); None leaves it for any worker to claim."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """The answer to accepting an event: its run, and whether the dedupe key was seen before."""

    run_id: RunId
    event_id: EventId
    is_duplicate: bool


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journaled attempt of one step."""

    path: str
    attempt: int
    generation: int
    kind: str
    status: StepStatus
    input: Json
    output: Json
    error: Json
    started: datetime
    finished: datetime


@dataclass(frozen=True, slots=True)
class Timer:
    """A durable wake-up for a run at a step."""

    path: str
    kind: TimerKind
    due: datetime


@dataclass(frozen=True, slots=True)
class Wait:
    """A run parked at a step until a signal with this name and correlation key arrives."""

    path: str
    signal: str
    key: str


@dataclass(frozen=True, slots=True)
class BusinessEvent:
    """A business event for the event log (from an `emit` step)."""

    activity: str
    at: datetime
    objects: Json
    attributes: Json


@dataclass(frozen=True, slots=True)
class RunFinish:
    """How a run ended."""

    status: RunStatus
    output: Json = None
    error: Json = None
    has_parent: bool = True
    """False when the run is known to have no parent, so no `run.finished` wait can exist."""


@dataclass(frozen=True, slots=True)
class StepRecord:
    """Everything that commits together when a step attempt ends."""

    run_id: RunId
    flow_id: FlowId
    entry: JournalEntry
    timer: Timer | None = None
    wait: Wait | None = None
    emit: BusinessEvent | None = None
    finish: RunFinish | None = None
    child: NewEvent | None = None
    """A child run to start (a `call` step); the step waits for it."""
    approval: NewApproval | None = None
    """An approval to open with the step's wait (an `approval` step)."""
    run_status: RunStatus | None = None
    """A new status for the run (e.g. `running` at its first step); None leaves it as it is."""
    epoch: int | None = None
    """The writer's lease epoch: the record is refused (`errors.LeaseLost`) if the run was claimed since."""


@dataclass(frozen=True, slots=True)
class DueTimer:
    """A timer that fired and was consumed; its run is queued again."""

    run_id: RunId
    path: str
    kind: TimerKind


@dataclass(frozen=True, slots=True)
class RunState:
    """What an executor needs to continue a run: its event and its journal."""

    run_id: RunId
    flow_id: FlowId
    flow_version: str
    status: RunStatus
    generation: int
    event_id: EventId
    event_body: Json
    received: datetime
    journal: list[JournalEntry]
    parent_run_id: RunId | None = None
    epoch: int = 0
    """The fencing epoch of the lease under which this state is executed."""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run as listed."""

    run_id: RunId
    flow_id: FlowId
    flow_version: str
    status: RunStatus
    event_id: EventId
    created: datetime
    updated: datetime
    finished: datetime | None
    error: Json


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs to list."""

    flow_id: str | None = None
    statuses: tuple[RunStatus, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    before_id: str | None = None
    """Keyset pagination: runs older than this run id."""
    dedupe_key: str | None = None
    """Runs whose event has this dedupe key (the business key: an order or contract number)."""
    flow_ids: tuple[str, ...] | None = None
    """Only runs of these flows (what a principal with grants on some flows may see); None: any flow."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One row of the event log."""

    seq: int
    at: datetime
    kind: str
    flow_id: str | None
    run_id: str | None
    path: str | None
    activity: str | None
    objects: Json
    attributes: Json = field(default=None)
