"""Shadow runs: a candidate version of a flow rehearsed on the events its live runs received, its
calls answered from those runs' recordings, and a report per event of how its effects differ.

The live run's journal says what the live version did: each action step's request (its journaled
input) and answer (its journaled output, or its error). The candidate is rehearsed on a stage for
the same event with the recording sandbox answering each step from that recording, so a candidate
that calls the same steps sees the same answers, and nothing reaches a target. The report pairs
the calls by step: `same`, `changed` (with exactly the request fields that differ, live and
candidate value), `added` (only the candidate calls it) or `removed` (only the live run did); and
the two outcomes. A step whose live answer went through an `output:` template is answered with that
template's result (the journal keeps no raw answer).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from seamflow import clock, errors, ids, redact, store
from seamflow.flows import CompiledFlow, load, spec
from seamflow.ids import FlowId, Json, RunId
from seamflow.lifecycle.rehearsal import Rehearsal, Stage, event_of
from seamflow.lifecycle.sandbox import Answer, AnsweredFrom, Answers

__all__ = ["FINISHED", "At", "ShadowReads", "diff_requests", "run_shadow", "shadow_event", "shadow_report"]

_INDEX = re.compile(r"\[\d+\]")
_OUTCOMES = {
    store.RunStatus.COMPLETED: "completed",
    store.RunStatus.FAILED: "failed",
    store.RunStatus.DEAD_LETTER: "failed",
}
FINISHED = (store.RunStatus.COMPLETED, store.RunStatus.FAILED, store.RunStatus.DEAD_LETTER)


class ShadowReads(store.RunReads, store.FlowVersions, store.LifecycleStore, Protocol):
    """What a shadow run needs of the store: the live runs, their flow versions, where results go."""


@dataclass(frozen=True, slots=True)
class _Call:
    step: str
    call: str
    request: Json


def diff_requests(live: Json, candidate: Json, at: str = "") -> list[dict[str, Json]]:
    """Exactly the fields that differ between two requests: `[{"field", "live", "candidate"}]`.

    Mappings are compared key by key (a key on one side only is a change to or from `null`), lists
    item by item when their lengths match, values with their types (`"19.90"` is not `19.9`).
    """
    if isinstance(live, dict) and isinstance(candidate, dict):
        found: list[dict[str, Json]] = []
        for key in list(live) + [k for k in candidate if k not in live]:
            found += diff_requests(live.get(key), candidate.get(key), f"{at}.{key}" if at else str(key))
        return found
    if isinstance(live, list) and isinstance(candidate, list) and len(live) == len(candidate):
        return [
            d for i, (a, b) in enumerate(zip(live, candidate, strict=True)) for d in diff_requests(a, b, f"{at}[{i}]")
        ]
    if live == candidate and type(live) is type(candidate):
        return []
    return [{"field": at or "(whole request)", "live": live, "candidate": candidate}]


def _live_calls(flow: spec.Flow, journal: Sequence[store.JournalEntry]) -> tuple[list[_Call], dict[str, Answer]]:
    """The calls of a live run (completed action steps, in order) and its recording by step path."""
    actions = _actions_by_step(flow.steps)
    last: dict[str, store.JournalEntry] = {}
    for entry in journal:
        if entry.kind == "action" and entry.status in (store.StepStatus.COMPLETED, store.StepStatus.FAILED):
            last[entry.path] = entry
    calls, recording = [], {}
    for path, entry in last.items():
        call = actions.get(_INDEX.sub("", path).rsplit(".", 1)[-1], "?")
        if entry.status is store.StepStatus.COMPLETED:
            calls.append(_Call(path, call, entry.input))
            recording[path] = Answer(entry.output, None, AnsweredFrom.RECORDING)
        else:
            message = entry.error.get("message") if isinstance(entry.error, dict) else None
            recording[path] = Answer(None, str(message or "failed in the live run"), AnsweredFrom.RECORDING)
    return calls, recording


def _actions_by_step(steps: Sequence[Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for step in steps:
        if isinstance(step, spec.ActionStep):
            found[step.id] = step.action
        for nested in ("then", "else_", "steps"):
            inner = getattr(step, nested, None)
            if isinstance(inner, list):
                found.update(_actions_by_step(inner))
    return found


def shadow_report(live_outcome: str, live_calls: Sequence[_Call], rehearsal: Rehearsal) -> dict[str, Json]:
    """One event's report: both outcomes, and each call `same`/`changed`/`added`/`removed` by step."""
    candidate = {e.step: _Call(e.step, f"{e.connection}.{e.action}", e.request) for e in rehearsal.effects}
    live = {c.step: c for c in live_calls}
    calls: list[Json] = []
    for step in list(live) + [s for s in candidate if s not in live]:
        before, after = live.get(step), candidate.get(step)
        if before is None and after is not None:
            calls.append({"step": step, "call": after.call, "change": "added", "request": redact.mask(after.request)})
        elif after is None and before is not None:
            calls.append({"step": step, "call": before.call, "change": "removed", "request": before.request})
        elif before is not None and after is not None:
            fields: list[Json] = list(diff_requests(before.request, redact.mask(after.request)))
            if before.call != after.call:
                fields.insert(0, {"field": "(call)", "live": before.call, "candidate": after.call})
            calls.append(
                {"step": step, "call": after.call, "change": "changed" if fields else "same", "fields": fields}
            )
    is_same = live_outcome == rehearsal.outcome and all(
        isinstance(c, dict) and c.get("change") == "same" for c in calls
    )
    return {
        "outcome": {"live": live_outcome, "candidate": rehearsal.outcome},
        "is_same": is_same,
        "calls": calls,
    }


async def run_shadow(
    db: ShadowReads, candidate: CompiledFlow, context: Mapping[str, Any], *, runs: int = 20
) -> list[store.ShadowResult]:
    """Rehearse `candidate` on the events of the flow's latest finished live runs; keep and return the results.

    Args:
        db: the project's store (the live runs; the results are saved there).
        candidate: the candidate version, compiled (its id is the live flow's).
        context: `env` and `secrets` for templates.
        runs: how many of the latest finished runs to replay, newest first.

    Raises:
        errors.NotFound: the flow has no finished run to replay.
    """
    summaries = await db.list_runs(store.RunFilter(flow_id=candidate.id, statuses=FINISHED, limit=runs))
    if not summaries:
        raise errors.NotFound(
            f"flow {candidate.id!r} has no finished run to replay; expected runs of the live version first",
            code="shadow.no_runs",
        )
    states = await db.load_runs([s.run_id for s in summaries])
    await db.save_flow_versions(
        [store.FlowVersion(FlowId(candidate.id), candidate.version, candidate.source, candidate.path)]
    )
    shadow_id = ids.new_id("shd")
    now = clock.now()
    started = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the store keeps milliseconds
    versions: dict[str, spec.Flow] = {}
    async with Stage.open(context) as stage:
        results = [
            await shadow_event(db, stage, candidate, versions, states[s.run_id], At(shadow_id, seq, started))
            for seq, s in enumerate(summaries)
        ]
    await db.save_shadow_results(results)
    return results


@dataclass(frozen=True, slots=True)
class At:
    """Where one event's result goes: its shadow, its place in it, the shadow's start."""

    shadow_id: str
    seq: int
    started: datetime


async def shadow_event(
    db: ShadowReads,
    stage: Stage,
    candidate: CompiledFlow,
    versions: dict[str, spec.Flow],
    state: store.RunState,
    at: At,
) -> store.ShadowResult:
    """Rehearse `candidate` on one finished live run's event, answered from its recording; its result.

    `versions` caches the live versions' parsed flows across events.
    """
    live_flow = await _live_flow(db, versions, candidate.id, state.flow_version)
    calls, recording = _live_calls(live_flow, state.journal)
    event = event_of(candidate.spec, state.event_body, f"run {state.run_id} event")
    rehearsal = await stage.rehearse(candidate, event, Answers(recording=recording))
    report = shadow_report(_OUTCOMES.get(state.status, "waiting"), calls, rehearsal)
    return store.ShadowResult(
        at.shadow_id,
        at.seq,
        candidate.id,
        state.flow_version,
        candidate.version,
        RunId(state.run_id),
        at.started,
        report,
    )


async def _live_flow(db: ShadowReads, cache: dict[str, spec.Flow], flow_id: str, version: str) -> spec.Flow:
    if version not in cache:
        source = await db.load_flow_source(FlowId(flow_id), version)
        if source is None:
            raise errors.NotFound(f"flow {flow_id!r} version {version} is not in the store", code="shadow.no_version")
        parsed, _ = load.load_flow_text(source, f"<stored {flow_id}@{version}>")
        cache[version] = parsed
    return cache[version]
