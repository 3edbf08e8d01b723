"""Operational counters for Prometheus (`/metrics`); business measures (KPIs) come from the event log.

The processes of one `seamflow serve --processes N` share their counters through
`PROMETHEUS_MULTIPROC_DIR` (set by the first process before anything imports this module), so
`/metrics` answers for the whole command whichever process a scrape reaches; each gauge says
how the processes' values combine.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

__all__ = [
    "DEAD_LETTERS",
    "EVENTS_ACCEPTED",
    "FEED_FAILING",
    "FEED_ITEMS",
    "FEED_LAG",
    "FEED_LAST_OK",
    "QUEUE_DEPTH",
    "RUNS_FINISHED",
    "RUNS_STARTED",
    "RUN_SECONDS",
    "STEP_SECONDS",
    "exposition",
    "forget_process",
]

EVENTS_ACCEPTED = Counter("seamflow_events_accepted_total", "Events accepted (committed)", ["flow", "duplicate"])
RUNS_STARTED = Counter("seamflow_runs_started_total", "Run executions started or continued", ["flow"])
RUNS_FINISHED = Counter("seamflow_runs_finished_total", "Runs that ended, by status", ["flow", "status"])
RUN_SECONDS = Histogram(
    "seamflow_run_execution_seconds",
    "Time of one execution of a run until it finished or parked",
    ["flow"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STEP_SECONDS = Histogram(
    "seamflow_step_seconds",
    "Time of one step attempt, from start to its journal record",
    ["flow", "kind", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge(
    "seamflow_queue_depth", "Runnable runs waiting for a worker in this command", multiprocess_mode="livesum"
)
DEAD_LETTERS = Counter("seamflow_dead_letters_total", "Runs parked as dead letters", ["flow"])
FEED_ITEMS = Counter("seamflow_feed_items_total", "Items a poll/consume trigger accepted as events", ["flow"])
FEED_LAG = Gauge(
    "seamflow_feed_lag_seconds",
    "Age of the newest item a feed delivered (0 when caught up)",
    ["flow"],
    multiprocess_mode="mostrecent",
)
FEED_LAST_OK = Gauge(
    "seamflow_feed_last_success_timestamp",
    "Unix time of the feed's last successful poll",
    ["flow"],
    multiprocess_mode="max",
)
FEED_FAILING = Gauge(
    "seamflow_feed_failing", "1 while the feed's polls or consumer fail", ["flow"], multiprocess_mode="mostrecent"
)


CONNECTION_NEEDS_AUTHORIZATION = Gauge(
    "seamflow_connection_needs_authorization",
    "1 while the connection cannot sign in until `seamflow connections authorize` is run again",
    ["connection"],
    multiprocess_mode="mostrecent",
)


def exposition() -> bytes:
    """The metrics of this command in Prometheus's text format (all its processes, if several)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]  # unannotated upstream
    return generate_latest(registry)


def forget_process(pid: int) -> None:
    """Drop the live gauges of a process of this command that has ended (its counters stay counted)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]  # unannotated upstream
