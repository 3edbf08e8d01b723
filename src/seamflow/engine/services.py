"""Capabilities built on an engine (record sync today; approvals, insight later), found by their type.

The engine does not know the capabilities above it; the process that assembles them registers
each here so the API and CLI can reach it, typed: `eng.services.get(sync.SyncService)`.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["Services"]

T = TypeVar("T")


class Services:
    """One instance per capability type, registered by the process that built them."""

    def __init__(self) -> None:
        self._by_type: dict[type, object] = {}

    def add(self, service: object) -> None:
        """Register `service` under its type (replacing an earlier one of that type)."""
        self._by_type[type(service)] = service

    def get(self, kind: type[T]) -> T | None:
        """The registered instance of `kind`, or None if this process has none."""
        found = self._by_type.get(kind)
        return found if isinstance(found, kind) else None
