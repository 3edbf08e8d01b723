"""The engine: accepts events (inbox), executes runs (workers, executor) whose every state change the
journal decides and commits, holds leases, fires durable timers and runs feeds."""

from __future__ import annotations

from seamflow.engine import metrics, secrets
from seamflow.engine.approval import DECISIONS as APPROVAL_DECISIONS
from seamflow.engine.approval import SIGNAL as APPROVAL_SIGNAL
from seamflow.engine.approval import Decided, Witness, task_json
from seamflow.engine.authorization import (
    Authorization,
    Authorizes,
    authorization_problems,
    authorizing,
    begin_authorization,
    finish_authorization,
)
from seamflow.engine.catalog import Catalog, CatalogChange, FlowSource
from seamflow.engine.connections import (
    ConnectionCheck,
    ConnectionInfo,
    Pool,
    describe_connections,
    load_env,
    load_secrets,
    unset_secret_problems,
)
from seamflow.engine.executor import Executor
from seamflow.engine.feeds import feed_health
from seamflow.engine.inbox import Event, Overloaded
from seamflow.engine.journal import Journal
from seamflow.engine.links import DecisionLinks, LinkExpired, LinkGrant
from seamflow.engine.outbound import project_outbound
from seamflow.engine.reload import FlowReader, Reload, Reloader
from seamflow.engine.runtime import Engine, EngineOptions
from seamflow.engine.services import Services
from seamflow.engine.timers import next_tick
from seamflow.engine.tokens import StoredTokens

__all__ = [
    "APPROVAL_DECISIONS",
    "APPROVAL_SIGNAL",
    "Authorization",
    "Authorizes",
    "Catalog",
    "CatalogChange",
    "ConnectionCheck",
    "ConnectionInfo",
    "Decided",
    "DecisionLinks",
    "Engine",
    "EngineOptions",
    "Event",
    "Executor",
    "FlowReader",
    "FlowSource",
    "Journal",
    "LinkExpired",
    "LinkGrant",
    "Overloaded",
    "Pool",
    "Reload",
    "Reloader",
    "Services",
    "StoredTokens",
    "Witness",
    "authorization_problems",
    "authorizing",
    "begin_authorization",
    "describe_connections",
    "feed_health",
    "finish_authorization",
    "load_env",
    "load_secrets",
    "metrics",
    "next_tick",
    "project_outbound",
    "secrets",
    "task_json",
    "unset_secret_problems",
]
