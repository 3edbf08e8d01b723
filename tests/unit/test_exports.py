"""The public surface of each package is its `__all__`; this pins it so a change is a decision."""

from __future__ import annotations

import importlib

import pytest

EXPORTS = {
    "seamflow.store": {
        "FlowVersion",
        "AdminStore",
        "EventLogReads",
        "FeedStore",
        "FlowVersions",
        "LeaseStore",
        "RunReads",
        "RunWrites",
        "ScheduleStore",
        "SlotStore",
        "SyncStore",
        "LogRow",
        "NewRun",
        "ParkedRun",
        "PendingSignal",
        "RunEnd",
        "RunTx",
        "TimerRow",
        "lease_lost",
        "BLOB_THRESHOLD_BYTES",
        "JOURNAL_ENTRY_LIMIT_BYTES",
        "Accepted",
        "BusinessEvent",
        "Claimed",
        "DueTimer",
        "FeedState",
        "Lease",
        "WorkerInfo",
        "SyncConflict",
        "SyncLink",
        "SyncLoad",
        "SyncState",
        "JournalEntry",
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
        "Timer",
        "TimerKind",
        "Wait",
        "is_postgres_url",
    },
    "seamflow.engine": {
        "Catalog",
        "ConnectionCheck",
        "ConnectionInfo",
        "Engine",
        "EngineOptions",
        "Event",
        "Executor",
        "FlowSource",
        "Journal",
        "Overloaded",
        "Services",
        "Pool",
        "describe_connections",
        "feed_health",
        "load_env",
        "load_secrets",
        "metrics",
        "next_tick",
        "secrets",
    },
    "seamflow.flows": {
        "CompiledFlow",
        "CompiledStep",
        "Duration",
        "Template",
        "compile_flow",
        "expressions",
        "load",
        "spec",
        "validate",
    },
    "seamflow.api": {"SeamflowApp", "WebhookLimits", "create_app", "create_health_app", "hash_token"},
    "seamflow.cli": {"main"},
    "seamflow.redact": {"MASK", "MIN_SECRET_LENGTH", "forms_of", "is_registered", "mask", "mask_text", "register"},
}


@pytest.mark.parametrize("module", sorted(EXPORTS))
def test_package_exports_are_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert set(mod.__all__) == EXPORTS[module]
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is listed but missing"
