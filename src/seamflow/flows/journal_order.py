"""A run's journal in the order its flow runs the steps, for showing it (the console's timeline, a
rehearsal's steps)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seamflow import store

__all__ = ["in_flow_order"]


def in_flow_order(journal: Sequence[store.JournalEntry], steps: Sequence[Any]) -> list[store.JournalEntry]:
    """The entries in the order the flow runs its steps (an `if`'s or a `foreach`'s steps after it,
    iterations in turn). The store lists a run's entries by start time in milliseconds, so two steps
    started in the same millisecond (a fast transform after a call) came back in the order of their
    paths' names."""
    order: dict[str, int] = {}

    def number(inner: Sequence[Any]) -> None:
        for step in inner:
            order.setdefault(step.id, len(order))
            for nested in ("then", "else_", "steps"):
                children = getattr(step, nested, None)
                if isinstance(children, list):
                    number(children)

    number(steps)

    def position(entry: store.JournalEntry) -> tuple[int, ...]:
        key: list[int] = []
        for segment in entry.path.split("."):
            name, _, index = segment.partition("[")
            key += [order.get(name, len(order)), int(index.rstrip("]")) if index else -1]
        return (*key, entry.attempt)

    return sorted(journal, key=position)
