"""Operational counters for Prometheus (`/metrics`); business measures (KPIs) come from the event log."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
QUEUE_DEPTH = Gauge("seamflow_queue_depth", "Runnable runs waiting for a worker in this process")
DEAD_LETTERS = Counter("seamflow_dead_letters_total", "Runs parked as dead letters", ["flow"])
FEED_ITEMS = Counter("seamflow_feed_items_total", "Items a poll/consume trigger accepted as events", ["flow"])
FEED_LAG = Gauge("seamflow_feed_lag_seconds", "Age of the newest item a feed delivered (0 when caught up)", ["flow"])
FEED_LAST_OK = Gauge("seamflow_feed_last_success_timestamp", "Unix time of the feed's last successful poll", ["flow"])
FEED_FAILING = Gauge("seamflow_feed_failing", "1 while the feed's polls or consumer fail", ["flow"])
