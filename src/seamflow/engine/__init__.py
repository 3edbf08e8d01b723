"""The engine: accepts events, executes runs step by step with a journal, fires durable timers."""

from __future__ import annotations

from seamflow.engine import metrics, secrets
from seamflow.engine.catalog import Catalog, FlowSource
from seamflow.engine.connections import (
    ConnectionCheck,
    ConnectionInfo,
    Pool,
    describe_connections,
    load_env,
    load_secrets,
)
from seamflow.engine.executor import Executor
from seamflow.engine.feeds import feed_health
from seamflow.engine.runtime import Engine, EngineOptions, Overloaded
from seamflow.engine.timers import next_tick

__all__ = [
    "Catalog",
    "ConnectionCheck",
    "ConnectionInfo",
    "Engine",
    "EngineOptions",
    "Executor",
    "FlowSource",
    "Overloaded",
    "Pool",
    "describe_connections",
    "feed_health",
    "load_env",
    "load_secrets",
    "metrics",
    "next_tick",
    "secrets",
]
