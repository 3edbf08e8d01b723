"""Connectors: code for a kind of system (HTTP, SQL, files, …) behind one plugin interface.

A connection is a connector's configured instance; steps call its actions as
`connection.action`. More connectors come from the `seamflow.connectors` entry-point group.
"""

from __future__ import annotations

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
    available_connectors,
    feeds_of,
    field_problems,
    parse_config,
)
from seamflow.connectors.http import HttpConnector

__all__ = [
    "Action",
    "Batch",
    "Checks",
    "Chunk",
    "Connection",
    "Connector",
    "Consumes",
    "Feed",
    "HttpConnector",
    "Item",
    "Polls",
    "Streams",
    "available_connectors",
    "feeds_of",
    "field_problems",
    "parse_config",
]
