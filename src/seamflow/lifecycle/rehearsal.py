"""Rehearsals: a flow's run for one event, executed by the engine on a scratch store with every
connection replaced by the recording sandbox.

A rehearsal is a real run — accepted by the journal, walked by the executor, every step journaled —
whose effects are captured instead of sent. Its store is a SQLite file in a temporary folder, so
rehearsed runs never mix with the project's runs; one `Stage` serves many rehearsals (a flow test
file, a shadow over many events) and is removed when it closes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from seamflow import clock, engine, errors, ids, redact, store
from seamflow.flows import CompiledFlow, in_flow_order, spec
from seamflow.ids import FlowId, Json, RunId
from seamflow.lifecycle.sandbox import Answers, Effect, Recorder, SandboxConnector

__all__ = ["Rehearsal", "Stage", "StepResult", "connections_of", "event_of"]

_STAGE_WORKER = "rehearsal"


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of a rehearsed run: its last attempt's input, output and error, and all its attempts."""

    id: str
    input: Json
    output: Json
    error: Json
    attempts: int
    duration_ms: float

    def as_json(self) -> dict[str, Json]:
        """The form of `POST /api/v1/flows/test`'s `steps`; `error` is the error's message."""
        message = self.error.get("message") if isinstance(self.error, dict) else self.error
        return {
            "id": self.id,
            "input": redact.mask(self.input),
            "output": redact.mask(self.output),
            "error": None if message is None else str(message),
            "attempts": self.attempts,
            "duration_ms": round(self.duration_ms, 3),
        }


@dataclass(frozen=True, slots=True)
class Rehearsal:
    """What one rehearsed run did: its outcome, its steps, the effects it would have had."""

    flow_id: str
    version: str
    outcome: str
    """`completed`, `failed` or `waiting` (parked on a wait, an approval or a retry); `ignored`
    when the flow's `when` is false for the event (no run)."""
    steps: tuple[StepResult, ...]
    effects: tuple[Effect, ...]
    output: Json = None

    @property
    def is_ignored(self) -> bool:
        """True when the flow's `when` condition refused the event."""
        return self.outcome == "ignored"

    def as_json(self) -> dict[str, Json]:
        """The answer of `POST /api/v1/flows/test` (secrets masked)."""
        return {
            "flow_id": self.flow_id,
            "outcome": "completed" if self.is_ignored else self.outcome,
            "ignored": self.is_ignored,
            "steps": [s.as_json() for s in self.steps],
            "effects": [e.as_json() for e in self.effects],
        }


def event_of(flow: spec.Flow, raw: Json, where: str = "event") -> engine.Event:
    """The event a rehearsal starts with, from its stored or written form `{"body": …, "headers"?, "query"?}`.

    Raises:
        errors.InvalidInput: `raw` is not an object with a `body` (and optional `headers`, `query` objects).
    """
    if not isinstance(raw, dict) or "body" not in raw:
        raise errors.InvalidInput(
            f'{where}: got {errors.redact(raw, limit=80)}; expected an object {{"body": …}} — the event as the'
            " flow sees it (`event.body`), with optional `headers` and `query` objects",
            code="flow_test.event_invalid",
        )
    extra = sorted(set(raw) - {"body", "headers", "query", "trigger", "feed", "parent"})
    if extra:
        raise errors.InvalidInput(
            f"{where}: unknown key(s) {', '.join(extra)}; expected body, headers, query", code="flow_test.event_invalid"
        )
    headers, query = raw.get("headers"), raw.get("query")
    for name, value in (("headers", headers), ("query", query)):
        if value is not None and not isinstance(value, dict):
            raise errors.InvalidInput(
                f"{where}.{name}: got {type(value).__name__}; expected an object of strings",
                code="flow_test.event_invalid",
            )
    return engine.Event(
        trigger=flow.trigger.kind,
        body=raw["body"],
        headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else None,
        query={str(k): str(v) for k, v in query.items()} if isinstance(query, dict) else None,
    )


def connections_of(steps: Sequence[Any]) -> set[str]:
    """The connections the action steps of `steps` call (nested `if` and `foreach` included)."""
    found: set[str] = set()
    for step in steps:
        if isinstance(step, spec.ActionStep):
            found.add(step.action.split(".", 1)[0])
        for nested in ("then", "else_", "steps"):
            inner = getattr(step, nested, None)
            if isinstance(inner, list):
                found |= connections_of(inner)
    return found


class Stage:
    """A scratch store and the engine's journal and executor over it, for rehearsing runs.

    Args:
        db: the scratch store (opened).
        context: `env` and `secrets` for templates.
    """

    def __init__(self, db: store.Store, context: Mapping[str, Any]) -> None:
        self._db = db
        self._context = context
        self._journal = engine.Journal(db)
        self._recorder = Recorder()

    @classmethod
    @asynccontextmanager
    async def open(cls, context: Mapping[str, Any]) -> AsyncIterator[Stage]:
        """A stage on a new scratch store, removed with its folder on exit."""
        folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="seamflow-rehearsal-"))
        db = store.SqliteStore(folder / "rehearsal.db", durability="normal")
        try:
            await db.open()
            try:
                yield cls(db, context)
            finally:
                await db.close()
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)

    async def rehearse(self, flow: CompiledFlow, event: engine.Event, answers: Answers) -> Rehearsal:
        """Run `flow` for `event` with every call answered from `answers`; return what it did.

        Raises:
            errors.ExpressionError: the flow's `when` cannot be evaluated on the event.
        """
        body = event.as_json()
        if flow.when is not None and not flow.when.is_true({**self._context, "event": body}):
            return Rehearsal(flow.id, flow.version, "ignored", (), ())
        await self._db.save_flow_versions([store.FlowVersion(FlowId(flow.id), flow.version, flow.source, flow.path)])
        run_id = RunId(ids.new_id("run"))
        new = store.NewEvent(
            flow_id=FlowId(flow.id),
            flow_version=flow.version,
            trigger=event.trigger,
            body=body,
            received=clock.now(),
            run_id=run_id,
            lease=store.Lease(_STAGE_WORKER, clock.now() + _LEASE),
        )
        accepted = await self._journal.accept(new)
        self._recorder.start(accepted.run_id, answers)
        pool = engine.Pool({}, secrets={}, env={})
        for name in sorted(connections_of(flow.spec.steps)):
            pool.add_builtin(name, SandboxConnector(name, self._recorder))
        await pool.open()
        executor = engine.Executor(
            self._journal, pool, wake=_ignore, respond=_ignore_answer, context=self._context, version_of=_no_children
        )
        state = await self._db.load_run(accepted.run_id)
        status = await executor.execute(_with_epoch(state), flow)
        await pool.close()
        final = await self._db.load_run(accepted.run_id)
        outcome = _OUTCOMES.get(status, "waiting")
        effects = tuple(self._recorder.effects)
        journal = in_flow_order(final.journal, flow.spec.steps)
        return Rehearsal(flow.id, flow.version, outcome, _steps(journal), effects, _output(journal))


_LEASE = timedelta(minutes=10)
"""The scratch run's lease: long enough for any rehearsal; nobody else claims runs on a stage."""
_OUTCOMES = {
    store.RunStatus.COMPLETED: "completed",
    store.RunStatus.FAILED: "failed",
    store.RunStatus.DEAD_LETTER: "failed",
}


def _ignore(_: Sequence[RunId]) -> None:
    """A stage wakes nothing: its runs are executed by `Stage.rehearse` itself."""


def _ignore_answer(_: RunId, __: Json) -> None:
    """A `respond` step's answer is in the step's output; nobody waits for it."""


def _no_children(flow_id: str) -> str:
    raise errors.Conflict(
        f"a rehearsed run does not start flow {flow_id!r}: `call` steps are not rehearsed; "
        "expected a fixture for the call step",
        code="flow_test.call_unsupported",
    )


def _with_epoch(state: store.RunState) -> store.RunState:
    return dataclasses.replace(state, epoch=1)  # the lease `accept` gave the run is epoch 1


def _steps(journal: Sequence[store.JournalEntry]) -> tuple[StepResult, ...]:
    by_path: dict[str, list[store.JournalEntry]] = {}
    for entry in journal:
        by_path.setdefault(entry.path, []).append(entry)
    results = []
    for path, entries in by_path.items():
        last = entries[-1]
        spent = sum((e.finished - e.started).total_seconds() for e in entries)
        results.append(StepResult(path, last.input, last.output, last.error, len(entries), spent * 1000))
    return tuple(results)


def _output(journal: Sequence[store.JournalEntry]) -> Json:
    done = [e for e in journal if e.status is store.StepStatus.COMPLETED]
    return done[-1].output if done else None
