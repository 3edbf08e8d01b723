"""Connectors: code for a kind of system (HTTP, SQL, files, …) behind one plugin interface.

A connection is a connector's configured instance; steps call its actions as
`connection.action`. More connectors come from the `seamflow.connectors` entry-point group.
"""

from __future__ import annotations

from seamflow.connectors.base import (
    Action,
    Connection,
    Connector,
    available_connectors,
    field_problems,
    parse_config,
)
from seamflow.connectors.http import HttpConnector

__all__ = [
    "Action",
    "Connection",
    "Connector",
    "HttpConnector",
    "available_connectors",
    "field_problems",
    "parse_config",
]
