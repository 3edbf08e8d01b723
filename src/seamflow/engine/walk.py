"""A walk: one pass of the executor over a run's steps, with what the journal says is done.

A run is re-walked from the top every time it continues; the walk's index of the journal
tells which steps are done (their output is reused), how many retries a step has used in
this generation, and which attempt number comes next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from seamflow import store
from seamflow.flows import CompiledFlow

__all__ = ["Parked", "RunEnded", "Walk"]


class Parked(Exception):
    """The run waits for a timer or a signal; nothing holds a worker meanwhile."""


class RunEnded(Exception):
    """The run finished (failed or dead-lettered) inside the walk."""

    def __init__(self, status: store.RunStatus) -> None:
        super().__init__(status.value)
        self.status = status


@dataclass(slots=True)
class Walk:
    """The state of one walk over a run (see the module docstring)."""

    state: store.RunState
    flow: CompiledFlow
    scope: dict[str, Any]
    last_path: str | None
    done: dict[str, store.JournalEntry] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    next_attempt: dict[str, int] = field(default_factory=dict)
    finished: store.RunStatus | None = None
    is_running: bool = False

    @classmethod
    def of(cls, state: store.RunState, flow: CompiledFlow, base: Mapping[str, Any]) -> Walk:
        """Start a walk of `state`'s run with `base` (env, secrets, event) as its scope."""
        last = flow.steps[-1]
        is_simple = last.kind in ("action", "transform", "emit", "respond")
        walk = cls(state, flow, dict(base), last.id if is_simple else None)
        walk.is_running = state.status is store.RunStatus.RUNNING
        for entry in state.journal:  # ordered by time, then attempt
            walk.next_attempt[entry.path] = max(walk.next_attempt.get(entry.path, 1), entry.attempt + 1)
            if entry.status is store.StepStatus.COMPLETED:
                walk.done[entry.path] = entry
            elif entry.status is store.StepStatus.FAILED:
                walk.done.pop(entry.path, None)
            elif entry.status is store.StepStatus.RETRYING and entry.generation == state.generation:
                walk.retries[entry.path] = walk.retries.get(entry.path, 0) + 1
        return walk
