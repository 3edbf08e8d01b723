"""Connectors: code for a kind of system (HTTP, SQL, files, …) behind one plugin interface.

A connection is a connector's configured instance; steps call its actions as
`connection.action`. Every connector, ours included, is found through the `seamflow.connectors`
entry-point group and imported only when a connection uses it (`available_connectors`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seamflow.connectors.base import (
    Action,
    Batch,
    Checks,
    Chunk,
    Connection,
    Connector,
    Consumes,
    Feed,
    Item,
    Polls,
    Streams,
    add_declared,
    add_declared_later,
    available_connectors,
    feeds_of,
    field_problems,
    is_declared,
    parse_config,
)
from seamflow.connectors.guard import Outbound, OutboundRefused, allow_entry_problem
from seamflow.connectors.pack import PACK_FILES
from seamflow.connectors.tokens import Fetch, Grant, LocalTokens, Token, TokenCache, TokenKeeper, is_usable

if TYPE_CHECKING:
    from seamflow.connectors.http import HttpConnector

__all__ = [
    "PACK_FILES",
    "Action",
    "Batch",
    "Checks",
    "Chunk",
    "Connection",
    "Connector",
    "Consumes",
    "Feed",
    "Fetch",
    "Grant",
    "HttpConnector",
    "Item",
    "LocalTokens",
    "Outbound",
    "OutboundRefused",
    "Polls",
    "Streams",
    "Token",
    "TokenCache",
    "TokenKeeper",
    "add_declared",
    "add_declared_later",
    "allow_entry_problem",
    "available_connectors",
    "declared",
    "feeds_of",
    "field_problems",
    "is_declared",
    "is_usable",
    "parse_config",
]


def __getattr__(name: str) -> object:
    """`connectors.HttpConnector` and `connectors.declared` (declarative connector files) import the
    HTTP connector (and aiohttp) on first use only."""
    if name == "HttpConnector":
        from seamflow.connectors.http import HttpConnector

        return HttpConnector
    if name == "declared":
        import importlib

        return importlib.import_module("seamflow.connectors.declared")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
