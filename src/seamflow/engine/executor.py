"""The executor: walks a run's steps, skipping what the journal already holds, and journals each outcome.

A run is re-walked from the top every time it continues (after a crash, a timer or a signal).
A step with a final journal entry is never executed again; its journaled output is used.
A step that may have had its effect before a crash has no entry, so it runs again with the
same idempotency key (run id + step path, the path carrying the loop iteration).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from seamflow import clock, errors, redact, store
from seamflow.engine import approval, metrics
from seamflow.engine.assignees import plan_approval
from seamflow.engine.backoff import DEFAULT_RETRY, retry_delay
from seamflow.engine.connections import Pool
from seamflow.engine.inbox import Event
from seamflow.engine.journal import Journal
from seamflow.engine.limits import ClusterSlots
from seamflow.engine.walk import Parked, RunEnded, Walk
from seamflow.flows import CompiledFlow, CompiledStep, spec
from seamflow.ids import FlowId, Json, RunId

__all__ = ["Executor"]

log = logging.getLogger("seamflow.executor")


Responder = Callable[[RunId, Json], None]


class Executor:
    """Executes runs of compiled flows against open connections.

    Args:
        journal: commits each step's outcome with its consequences.
        pool: open connections.
        wake: called with runs that became runnable through this run's commits.
        respond: called when a `respond` step answered a synchronous webhook.
        context: `env` and `secrets` for templates.
        version_of: the current version of a flow, for child runs of `call` steps.
        slots: cluster-wide concurrency slots (connection limits across processes).
        people: the directory, for the assignees of `approval` steps.
    """

    def __init__(
        self,
        journal: Journal,
        pool: Pool,
        *,
        wake: Callable[[Sequence[RunId]], None],
        respond: Responder,
        context: Mapping[str, Any],
        version_of: Callable[[str], str],
        slots: ClusterSlots | None = None,
        people: store.DirectoryStore | None = None,
    ) -> None:
        self._people = people
        self._journal = journal
        self._slots = slots
        self._pool = pool
        self._wake = wake
        self._respond = respond
        self._context = context
        self._version_of = version_of

    def lead(self, flow: CompiledFlow, envelope: Json, run_id: RunId) -> tuple[store.JournalEntry, ...]:
        """Outcomes of the flow's leading `transform` steps for a new event, to commit with it.

        A transform has no effect outside the run, so its outcome can be journaled in the same
        commit as the accepted event: the run then starts at its first effectful step, one commit
        cycle sooner. Stops before the last step and at the first transform that fails (the
        executor then runs that one and handles its failure as usual).
        """
        scope = {
            **self._context,
            "event": envelope,
            "run": {"id": run_id, "flow": flow.id, "version": flow.version},
            "steps": {},
        }
        entries: list[store.JournalEntry] = []
        for step in flow.steps[:-1]:
            if step.kind != "transform" or step.template("idempotency_key") is not None:
                break
            started = clock.now()
            try:
                output = _render(step, "transform", scope)
            except errors.SeamflowError:
                break
            scope["steps"][step.id] = output
            masked: Json = redact.mask(output)
            status = store.StepStatus.COMPLETED
            entry = store.JournalEntry(step.id, 1, 0, step.kind, status, None, masked, None, started, clock.now())
            entries.append(entry)
        return tuple(entries)

    async def execute(self, state: store.RunState, flow: CompiledFlow) -> store.RunStatus:
        """Continue `state`'s run until it finishes or parks; return its status then."""
        base = {
            **self._context,
            "event": state.event_body,
            "run": {"id": state.run_id, "flow": state.flow_id, "version": state.flow_version},
            "steps": {},
        }
        walk = Walk.of(state, flow, base)
        try:
            output = await self._walk_steps(walk, flow.steps, walk.scope, "")
        except Parked:
            return store.RunStatus.WAITING
        except RunEnded as ended:
            return ended.status
        if walk.finished is None:
            await self._commit_finish(walk, store.RunFinish(store.RunStatus.COMPLETED, output))
        return store.RunStatus.COMPLETED

    async def _commit_finish(self, walk: Walk, finish: store.RunFinish) -> None:
        finish = dataclasses.replace(finish, has_parent=walk.state.parent_run_id is not None)
        woken = await self._journal.finish(walk.state.run_id, walk.state.flow_id, finish, epoch=walk.state.epoch)
        walk.finished = finish.status
        self._wake(woken)

    async def _walk_steps(self, walk: Walk, steps: Sequence[CompiledStep], scope: dict[str, Any], prefix: str) -> Json:
        output: Json = None
        for step in steps:
            output = await self._step(walk, step, scope, prefix + step.id)
            scope["steps"][step.id] = output
        return output

    async def _step(self, walk: Walk, step: CompiledStep, scope: dict[str, Any], path: str) -> Json:
        entry = walk.done.get(path)
        if step.kind == "if":
            return await self._branch(walk, step, scope, path, entry)
        if step.kind == "foreach":
            return await self._foreach(walk, step, scope, path, entry)
        started = clock.now()
        try:
            if entry is not None:
                return self._journaled_output(walk, step, scope, path, entry)
            return await self._perform(walk, step, scope, path, started)
        except (Parked, RunEnded, errors.StoreError):  # the store's failures (and a lost lease) end this attempt
            raise
        except errors.SeamflowError as exc:
            return await self._failed(walk, step, path, exc, started)
        except Exception as exc:  # a bug in connector code: journal it, park the run for a human
            crash = errors.Permanent(f"{type(exc).__name__}: {exc}", where=path, code="step.crashed")
            log.exception("step crashed", extra={"run_id": walk.state.run_id, "step": path})
            return await self._failed(walk, step, path, crash, started)

    def _journaled_output(
        self, walk: Walk, step: CompiledStep, scope: dict[str, Any], path: str, entry: store.JournalEntry
    ) -> Json:
        if step.kind == "approval" and entry.kind == "wait":
            return entry.output.get("payload") if isinstance(entry.output, dict) else None
        if step.kind == "call" and entry.kind == "wait":
            payload = entry.output["payload"] if isinstance(entry.output, dict) else None
            if not isinstance(payload, dict) or payload.get("status") != store.RunStatus.COMPLETED.value:
                status = payload.get("status") if isinstance(payload, dict) else "unknown"
                raise _ChildFailed(
                    f"child run {payload.get('run_id') if isinstance(payload, dict) else ''} ended {status}", payload
                )
            return payload.get("output")
        return entry.output

    # -- step kinds ----------------------------------------------------------------
    async def _perform(
        self, walk: Walk, step: CompiledStep, scope: dict[str, Any], path: str, started: datetime
    ) -> Json:
        kind = step.kind
        if kind == "action":
            return await self._action(walk, step, scope, path, started)
        if kind == "transform":
            out = _render(step, "transform", scope)
            await self._record(walk, step, path, started, output=out)
            return out
        if kind == "emit":
            return await self._emit(walk, step, scope, path, started)
        if kind == "respond":
            return await self._respond_step(walk, step, scope, path, started)
        if kind == "wait":
            await self._wait(walk, step, scope, path, started)
        if kind == "call":
            await self._call(walk, step, scope, path, started)
        if kind == "approval":
            await self._approval(walk, step, scope, path, started)
        raise AssertionError(f"step kind {kind} did not return or park")

    async def _action(
        self, walk: Walk, step: CompiledStep, scope: dict[str, Any], path: str, started: datetime
    ) -> Json:
        assert isinstance(step.spec, spec.ActionStep)
        connection_name, action = step.spec.action.split(".", 1)
        opened = self._pool.get(connection_name)
        params = _render(step, "with", scope)
        key_template = step.template("idempotency_key")
        key = str(key_template.render(scope)) if key_template else f"{walk.state.run_id}:{path}"
        timeout = step.spec.timeout or opened.connection.timeout
        limit = opened.limit if opened.limit is not None else contextlib.nullcontext()
        concurrency = opened.connection.concurrency
        cluster = (
            self._slots.hold(f"connection:{connection_name}", concurrency, key)
            if concurrency and self._slots is not None
            else contextlib.nullcontext()
        )
        try:
            async with limit, cluster:
                async with asyncio.timeout(timeout.total_seconds()):
                    result = await opened.connector.call(action, params, idempotency_key=key)
        except TimeoutError:
            raise errors.Transient(f"no answer within {timeout.total_seconds():g} s", where=step.spec.action) from None
        output_template = step.template("output")
        output = output_template.render({**scope, "result": result}) if output_template else result
        await self._record(walk, step, path, started, output=output, input=params)
        return output

    async def _emit(self, walk: Walk, step: CompiledStep, scope: dict[str, Any], path: str, started: datetime) -> Json:
        time_template = step.template("time")
        at = _instant(time_template.render(scope), path) if time_template else clock.now()
        event = store.BusinessEvent(
            activity=str(_render(step, "activity", scope)),
            at=at,
            objects=_render(step, "objects", scope),
            attributes=_render(step, "attributes", scope),
        )
        out: Json = {"activity": event.activity, "time": at.isoformat(), "objects": event.objects}
        await self._record(walk, step, path, started, output=out, emit=event)
        return out

    async def _respond_step(
        self, walk: Walk, step: CompiledStep, scope: dict[str, Any], path: str, started: datetime
    ) -> Json:
        assert isinstance(step.spec, spec.RespondStep)
        out: Json = {
            "status": step.spec.respond.status,
            "headers": _render(step, "headers", scope),
            "body": _render(step, "body", scope),
        }
        await self._record(walk, step, path, started, output=out)
        self._respond(walk.state.run_id, out)
        return out

    async def _wait(self, walk: Walk, step: CompiledStep, scope: dict[str, Any], path: str, started: datetime) -> None:
        assert isinstance(step.spec, spec.WaitStep)
        w = step.spec.wait
        timer: store.Timer | None = None
        wait: store.Wait | None = None
        if w.duration is not None:
            timer = store.Timer(path, store.TimerKind.WAKE, clock.now() + w.duration)
        elif w.until is not None:
            timer = store.Timer(path, store.TimerKind.WAKE, _instant(_render(step, "until", scope), path))
        else:
            key_template = step.template("key")
            key = str(key_template.render(scope)) if key_template else walk.state.run_id
            wait = store.Wait(path, str(w.signal), key)
            if w.timeout is not None:
                timer = store.Timer(path, store.TimerKind.TIMEOUT, clock.now() + w.timeout)
        await self._record(walk, step, path, started, status=store.StepStatus.WAITING, timer=timer, wait=wait)
        raise Parked

    async def _call(self, walk: Walk, step: CompiledStep, scope: dict[str, Any], path: str, started: datetime) -> None:
        assert isinstance(step.spec, spec.CallStep)
        body = _render(step, "input", scope)
        child = store.NewEvent(
            flow_id=FlowId(step.spec.call),
            flow_version=self._version_of(step.spec.call),
            trigger="call",
            body=Event("call", body, parent={"run_id": walk.state.run_id, "step": path}).as_json(),
            received=clock.now(),
            dedupe_key=f"call:{walk.state.run_id}:{path}:{walk.state.generation}",
            parent_run_id=walk.state.run_id,
            parent_path=path,
        )
        await self._record(walk, step, path, started, status=store.StepStatus.WAITING, child=child, input=body)
        raise Parked

    async def _approval(
        self, walk: Walk, step: CompiledStep, scope: dict[str, Any], path: str, started: datetime
    ) -> None:
        if self._people is None:
            raise errors.Permanent(
                "this engine has no directory for approvals", where=path, code="approval.no_directory"
            )
        opened = await plan_approval(step, scope, path, self._people)
        wait = store.Wait(path, approval.SIGNAL, opened.id)
        await self._record(walk, step, path, started, status=store.StepStatus.WAITING, wait=wait, approval=opened)
        raise Parked

    async def _branch(
        self, walk: Walk, step: CompiledStep, scope: dict[str, Any], path: str, entry: store.JournalEntry | None
    ) -> Json:
        if entry is None:
            started = clock.now()
            try:
                is_then = _template(step, "if").is_true(scope)
            except errors.SeamflowError as exc:
                return await self._failed(walk, step, path, exc, started)
            decision: Json = {"branch": "then" if is_then else "else"}
            await self._record(walk, step, path, started, output=decision)
        else:
            decision = entry.output
        chosen = step.children if isinstance(decision, dict) and decision.get("branch") == "then" else step.otherwise
        scope["steps"][step.id] = decision
        await self._walk_steps(walk, chosen, scope, f"{path}.")
        return decision

    async def _foreach(
        self, walk: Walk, step: CompiledStep, scope: dict[str, Any], path: str, entry: store.JournalEntry | None
    ) -> Json:
        assert isinstance(step.spec, spec.ForeachStep)
        if entry is None:
            started = clock.now()
            try:
                items = _template(step, "foreach").render(scope)
                if not isinstance(items, list):
                    raise errors.ExpressionError(
                        f"{path}.foreach: got {type(items).__name__}; expected a list", code="expression.type"
                    )
            except errors.SeamflowError as exc:
                return await self._failed(walk, step, path, exc, started)
            await self._record(walk, step, path, started, input=items, output={"count": len(items)})
        else:
            items = entry.input if isinstance(entry.input, list) else []
        results: list[Json] = [None] * len(items)

        item_name = step.spec.as_

        async def iteration(i: int, item: Json) -> None:
            inner = {**scope, item_name: item, "loop_index": i, "steps": dict(scope["steps"])}
            results[i] = await self._walk_steps(walk, step.children, inner, f"{path}[{i}].")

        await _bounded(step.spec.concurrency, [iteration(i, item) for i, item in enumerate(items)])
        return results

    # -- journal and failure ---------------------------------------------------------
    async def _record(
        self,
        walk: Walk,
        step: CompiledStep,
        path: str,
        started: datetime,
        *,
        output: Json = None,
        input: Json = None,
        status: store.StepStatus = store.StepStatus.COMPLETED,
        error: Json = None,
        **consequences: Any,
    ) -> None:
        attempt = walk.next_attempt.get(path, 1)
        walk.next_attempt[path] = attempt + 1
        entry = store.JournalEntry(
            path=path,
            attempt=attempt,
            generation=walk.state.generation,
            kind=step.kind,
            status=status,
            input=redact.mask(input),
            output=redact.mask(output),
            error=error,
            started=started,
            finished=clock.now(),
        )
        finish = consequences.pop("finish", None)
        if finish is None and status is store.StepStatus.COMPLETED and path == walk.last_path:
            finish = store.RunFinish(store.RunStatus.COMPLETED, entry.output)
        if finish is not None:
            finish = dataclasses.replace(finish, has_parent=walk.state.parent_run_id is not None)
        run_status = None if walk.is_running else store.RunStatus.RUNNING
        walk.is_running = True
        record = store.StepRecord(
            walk.state.run_id,
            walk.state.flow_id,
            entry,
            finish=finish,
            run_status=run_status,
            epoch=walk.state.epoch,
            **consequences,
        )
        woken = await self._journal.record_step(record)
        metrics.STEP_SECONDS.labels(walk.state.flow_id, step.kind, status.value).observe(
            (entry.finished - started).total_seconds()
        )
        if finish is not None:
            walk.finished = finish.status
        if woken:
            self._wake(woken)

    async def _failed(
        self, walk: Walk, step: CompiledStep, path: str, exc: errors.SeamflowError, started: datetime
    ) -> Json:
        attempt = walk.next_attempt.get(path, 1)
        error: dict[str, Json] = {
            "code": exc.code,
            "message": errors.redact_text(str(exc), limit=4000),
            "step": path,
            "attempt": attempt,
        }
        policy = step.spec.retry or (DEFAULT_RETRY if step.kind == "action" else None)
        used = walk.retries.get(path, 0) + 1
        if isinstance(exc, errors.Transient) and policy is not None and used < policy.attempts:
            delay = retry_delay(policy, used, exc.retry_after)
            timer = store.Timer(path, store.TimerKind.RETRY, clock.now() + delay)
            error["retry_in_s"] = round(delay.total_seconds(), 3)
            await self._record(walk, step, path, started, status=store.StepStatus.RETRYING, error=error, timer=timer)
            raise Parked
        on_error = step.spec.on_error or walk.flow.spec.on_error
        if on_error is spec.OnError.CONTINUE:
            out: Json = {"error": error}
            await self._record(walk, step, path, started, output=out, error=error)
            return out
        status = store.RunStatus.DEAD_LETTER if on_error is spec.OnError.DEAD_LETTER else store.RunStatus.FAILED
        finish = store.RunFinish(status, None, error)
        await self._record(walk, step, path, started, status=store.StepStatus.FAILED, error=error, finish=finish)
        raise RunEnded(status)


class _ChildFailed(errors.Permanent):
    code = "call.child_failed"

    def __init__(self, message: str, payload: Json) -> None:
        super().__init__(message)
        self.payload = payload


def _template(step: CompiledStep, name: str) -> Any:
    template = step.template(name)
    assert template is not None, f"step {step.id} has no compiled {name}"
    return template


def _render(step: CompiledStep, name: str, scope: Mapping[str, Any]) -> Json:
    template = step.template(name)
    return None if template is None else template.render(scope)


def _instant(value: Json, path: str) -> datetime:
    try:
        instant = datetime.fromisoformat(str(value))
    except ValueError:
        raise errors.ExpressionError(
            f"{path}: got {errors.redact(value)}; expected an ISO-8601 instant with a time zone",
            code="expression.type",
        ) from None
    if instant.tzinfo is None:
        raise errors.ExpressionError(
            f"{path}: got {errors.redact(value)} without a time zone; expected e.g. 2026-11-24T09:00:00+08:00",
            code="expression.type",
        )
    return instant


async def _bounded(limit: int, coros: list[Any]) -> None:
    """Run coroutines at most `limit` at a time; a parked or ended run wins over other errors."""
    if limit == 1:
        for coro in coros:
            await coro
        return
    gate = asyncio.Semaphore(limit)

    async def gated(coro: Any) -> None:
        async with gate:
            await coro

    try:
        async with asyncio.TaskGroup() as group:
            for coro in coros:
                group.create_task(gated(coro))
    except BaseExceptionGroup as failures:
        for kind in (RunEnded, Parked):
            match, _ = failures.split(kind)
            if match is not None:
                raise _first(match) from None
        raise _first(failures) from None


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
