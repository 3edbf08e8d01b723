"""The run lifecycle, in process, on both backends: the journal's decisions against a real store.

No subprocess and no real waiting: time is an argument (timers fire when the test says it is
later), so each lifecycle change gets feedback in milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from seamflow import clock, engine, errors, store
from seamflow.ids import FlowId, Json, RunId

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
FLOW = FlowId("orders")


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    """The journal reads time from the clock: it stands one minute after the steps below ran."""
    clock.set_fixed(T0 + timedelta(minutes=1))
    yield
    clock.use_real()


def _event(
    key: str | None = None, *, lease: store.Lease | None = None, parent: tuple[RunId, str] | None = None
) -> store.NewEvent:
    return store.NewEvent(
        FLOW,
        "v1",
        "webhook",
        {"body": {"order_no": key or "SO-1"}},
        T0,
        dedupe_key=key,
        parent_run_id=None if parent is None else parent[0],
        parent_path=None if parent is None else parent[1],
        lease=lease,
    )


def _entry(
    path: str, status: store.StepStatus = store.StepStatus.COMPLETED, *, attempt: int = 1, output: Json = None
) -> store.JournalEntry:
    return store.JournalEntry(path, attempt, 0, "action", status, None, output, None, T0, T0)


def _record(run_id: RunId, entry: store.JournalEntry, **consequences: object) -> store.StepRecord:
    return store.StepRecord(run_id, FLOW, entry, **consequences)  # type: ignore[arg-type]


async def _status(db: store.SqlStore, run_id: RunId) -> store.RunStatus:
    return (await db.load_run(run_id)).status


async def _paths(db: store.SqlStore, run_id: RunId) -> list[tuple[str, str]]:
    return [(e.path, e.status.value) for e in (await db.load_run(run_id)).journal]


async def test_a_step_outcome_is_journaled_and_the_run_goes_on(db: store.SqlStore, journal: engine.Journal) -> None:
    run = await journal.accept(_event("SO-1"))
    woken = await journal.record_step(
        _record(run.run_id, _entry("order", output={"n": 1}), run_status=store.RunStatus.RUNNING)
    )
    assert woken == []
    assert await _status(db, run.run_id) is store.RunStatus.RUNNING
    await journal.record_step(
        _record(
            run.run_id,
            _entry("post"),
            finish=store.RunFinish(store.RunStatus.COMPLETED, {"ok": True}, has_parent=False),
        )
    )
    summary, state = await db.get_run(run.run_id)
    assert summary.status is store.RunStatus.COMPLETED
    assert [(e.path, e.output) for e in state.journal] == [("order", {"n": 1}), ("post", None)]
    kinds = [e.kind for e in await db.list_event_log(run_id=run.run_id)]
    assert kinds == ["run.queued", "step.completed", "step.completed", "run.completed"]


async def test_the_same_dedupe_key_twice_gives_the_first_run(journal: engine.Journal) -> None:
    first = await journal.accept(_event("SO-7"))
    again = await journal.accept(_event("SO-7"))
    assert again.is_duplicate and (again.run_id, again.event_id) == (first.run_id, first.event_id)


async def test_a_retry_timer_parks_the_run_and_fires_once_when_due(db: store.SqlStore, journal: engine.Journal) -> None:
    run = await journal.accept(_event())
    timer = store.Timer("post", store.TimerKind.RETRY, T0 + timedelta(seconds=5))
    await journal.record_step(_record(run.run_id, _entry("post", store.StepStatus.RETRYING), timer=timer))
    assert await _status(db, run.run_id) is store.RunStatus.WAITING
    assert await journal.fire_timers(T0 + timedelta(seconds=4), 10) == []
    fired = await journal.fire_timers(T0 + timedelta(seconds=5), 10)
    assert fired == [store.DueTimer(run.run_id, "post", store.TimerKind.RETRY)]
    assert await journal.fire_timers(T0 + timedelta(hours=1), 10) == [], "a timer fires once"
    assert await _status(db, run.run_id) is store.RunStatus.QUEUED
    assert await _paths(db, run.run_id) == [("post", "retrying")], "a retry journals nothing more"


async def test_a_wait_completes_with_its_signal_and_drops_its_timeout(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    run = await journal.accept(_event())
    wait = store.Wait("approve", "order.approved", "SO-1")
    timeout = store.Timer("approve", store.TimerKind.TIMEOUT, T0 + timedelta(days=3))
    woken = await journal.record_step(
        _record(run.run_id, _entry("approve", store.StepStatus.WAITING), wait=wait, timer=timeout)
    )
    assert woken == [] and await _status(db, run.run_id) is store.RunStatus.WAITING
    assert await journal.deliver_signal("order.approved", "SO-2", {"by": "张伟"}) == [], "another key wakes nobody"
    assert await journal.deliver_signal("order.approved", "SO-1", {"by": "李娜"}) == [run.run_id]
    state = await db.load_run(run.run_id)
    assert state.status is store.RunStatus.QUEUED
    completed = state.journal[-1]
    assert (completed.path, completed.attempt, completed.status) == ("approve", 2, store.StepStatus.COMPLETED)
    assert completed.output == {
        "signal": "order.approved",
        "key": "SO-1",
        "payload": {"by": "李娜"},
        "timed_out": False,
    }
    assert await journal.fire_timers(T0 + timedelta(days=4), 10) == [], "the timeout went with the wait"


async def test_a_signal_that_comes_first_is_kept_for_the_wait(db: store.SqlStore, journal: engine.Journal) -> None:
    run = await journal.accept(_event())
    assert await journal.deliver_signal("payment.received", "SO-1", {"amount_cents": 129900}) == []
    wait = store.Wait("paid", "payment.received", "SO-1")
    woken = await journal.record_step(_record(run.run_id, _entry("paid", store.StepStatus.WAITING), wait=wait))
    assert woken == [run.run_id], "the kept signal completes the wait in the same commit"
    output = (await db.load_run(run.run_id)).journal[-1].output
    assert isinstance(output, dict) and output["payload"] == {"amount_cents": 129900}
    other = await journal.accept(_event("SO-2"))
    again = await journal.record_step(_record(other.run_id, _entry("paid", store.StepStatus.WAITING), wait=wait))
    assert again == [], "a kept signal is taken once"


async def test_a_wait_times_out_when_its_timer_fires(db: store.SqlStore, journal: engine.Journal) -> None:
    run = await journal.accept(_event())
    wait = store.Wait("approve", "order.approved", "SO-1")
    timeout = store.Timer("approve", store.TimerKind.TIMEOUT, T0 + timedelta(hours=48))
    await journal.record_step(
        _record(run.run_id, _entry("approve", store.StepStatus.WAITING), wait=wait, timer=timeout)
    )
    fired = await journal.fire_timers(T0 + timedelta(hours=48), 10)
    assert [t.kind for t in fired] == [store.TimerKind.TIMEOUT]
    state = await db.load_run(run.run_id)
    assert state.status is store.RunStatus.QUEUED
    assert state.journal[-1].output == {"timed_out": True, "payload": None}
    assert await journal.deliver_signal("order.approved", "SO-1", {}) == [], "a late signal finds no wait"


async def test_a_timed_wait_wakes_at_its_instant(db: store.SqlStore, journal: engine.Journal) -> None:
    run = await journal.accept(_event())
    due = T0 + timedelta(minutes=30)
    await journal.record_step(
        _record(
            run.run_id,
            _entry("cool_off", store.StepStatus.WAITING),
            timer=store.Timer("cool_off", store.TimerKind.WAKE, due),
        )
    )
    await journal.fire_timers(due, 10)
    state = await db.load_run(run.run_id)
    assert state.status is store.RunStatus.QUEUED
    assert state.journal[-1].output == {"woke_at_ms": int(due.timestamp() * 1000)}


async def test_a_child_run_finishing_completes_the_parents_call(db: store.SqlStore, journal: engine.Journal) -> None:
    parent = await journal.accept(_event("SO-1"))
    child_event = _event("call:SO-1", parent=(parent.run_id, "invoice"))
    woken = await journal.record_step(
        _record(parent.run_id, _entry("invoice", store.StepStatus.WAITING), child=child_event)
    )
    [child_id] = woken
    assert child_id != parent.run_id and await _status(db, parent.run_id) is store.RunStatus.WAITING
    woken = await journal.finish(child_id, FLOW, store.RunFinish(store.RunStatus.COMPLETED, {"invoice_no": "INV-9"}))
    assert woken == [parent.run_id]
    output = (await db.load_run(parent.run_id)).journal[-1].output
    assert isinstance(output, dict)
    assert output["payload"] == {
        "run_id": child_id,
        "status": "completed",
        "output": {"invoice_no": "INV-9"},
        "error": None,
    }


async def test_a_call_retried_after_its_child_ended_takes_the_childs_outcome_at_once(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    # e.g. the child failed, the parent's call step failed with it and is retried: the child's
    # dedupe key is the same, so the retry meets the ended child instead of starting another
    parent = await journal.accept(_event("SO-1"))
    child_event = _event("call:SO-1", parent=(parent.run_id, "invoice"))
    [child_id] = await journal.record_step(
        _record(parent.run_id, _entry("invoice", store.StepStatus.WAITING), child=child_event)
    )
    assert await journal.finish(child_id, FLOW, store.RunFinish(store.RunStatus.FAILED, None, {"code": "x"})) == [
        parent.run_id
    ]
    woken = await journal.record_step(
        _record(parent.run_id, _entry("invoice", store.StepStatus.WAITING, attempt=3), child=child_event)
    )
    assert woken == [parent.run_id], "the duplicate child's end completes the new wait at once"
    output = (await db.load_run(parent.run_id)).journal[-1].output
    assert isinstance(output, dict) and output["payload"]["status"] == "failed"  # type: ignore[index]


async def test_a_dead_letter_ends_the_run_and_replay_continues_in_a_new_generation(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    run = await journal.accept(_event())
    error: Json = {"code": "connector.permanent", "message": "HTTP 422"}
    dead = store.RunFinish(store.RunStatus.DEAD_LETTER, None, error, has_parent=False)
    await journal.record_step(_record(run.run_id, _entry("post", store.StepStatus.FAILED), finish=dead))
    summary, _ = await db.get_run(run.run_id)
    assert summary.status is store.RunStatus.DEAD_LETTER and summary.error == error
    await journal.replay(run.run_id)
    state = await db.load_run(run.run_id)
    assert (state.status, state.generation) == (store.RunStatus.QUEUED, 1)
    with pytest.raises(errors.Conflict, match="only failed or dead_letter runs can be replayed"):
        await journal.replay(run.run_id)
    with pytest.raises(errors.NotFound):
        await journal.replay(RunId("run_missing"))


async def test_a_stale_epoch_is_fenced_off_and_leaves_nothing(db: store.SqlStore, journal: engine.Journal) -> None:
    run = await journal.accept(_event(lease=store.Lease("w1", T0 + timedelta(seconds=30))))
    later = T0 + timedelta(minutes=5)
    [taken] = await db.claim_runs("w2", later, later + timedelta(seconds=30), limit=1)
    assert taken.epoch == 2
    with pytest.raises(errors.LeaseLost):
        await journal.record_step(_record(run.run_id, _entry("post"), epoch=1))
    with pytest.raises(errors.LeaseLost):
        await journal.finish(run.run_id, FLOW, store.RunFinish(store.RunStatus.COMPLETED), epoch=1)
    assert await _paths(db, run.run_id) == [] and await _status(db, run.run_id) is store.RunStatus.QUEUED
    await journal.record_step(_record(run.run_id, _entry("post"), epoch=2))
    assert await _paths(db, run.run_id) == [("post", "completed")]


async def test_a_schedule_tick_fires_once_across_processes(db: store.SqlStore, journal: engine.Journal) -> None:
    tick = T0 + timedelta(hours=1)
    await db.upsert_schedule(FLOW, "every 1h", tick)
    following = tick + timedelta(hours=1)
    first = await journal.fire_schedule(FLOW, tick, following, _event(f"schedule:{tick.isoformat()}"))
    second = await journal.fire_schedule(FLOW, tick, following, _event(f"schedule:{tick.isoformat()}"))
    assert first is not None and not first.is_duplicate
    assert second is None, "the tick moved on: a second process fires nothing"
    assert await db.due_schedules(following) == [(FLOW, following)]


async def test_events_accepted_together_keep_their_dedupe_answers(db: store.SqlStore, journal: engine.Journal) -> None:
    """Events accepted in one group commit: a seen key, and a key seen twice in the batch, still answer duplicate."""
    first = await journal.accept(_event("SO-7"))
    answers = await asyncio.gather(*(journal.accept(_event(key)) for key in ("SO-8", "SO-7", "SO-9", "SO-8")))
    assert [a.is_duplicate for a in answers] == [False, True, False, True]
    assert answers[1].run_id == first.run_id and answers[3].run_id == answers[0].run_id
    assert len({first.run_id, answers[0].run_id, answers[2].run_id}) == 3
    for run_id in (first.run_id, answers[0].run_id, answers[2].run_id):
        assert await _status(db, run_id) is store.RunStatus.QUEUED


async def test_runs_finished_together_end_but_a_stale_epoch_among_them_is_fenced_off(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    """Ends committed in one group commit are one statement; a run another worker claimed since refuses its end."""
    lease = store.Lease("w1", T0 + timedelta(seconds=30))
    runs = [await journal.accept(_event(f"SO-{i}", lease=lease)) for i in range(3)]
    later = T0 + timedelta(minutes=5)
    await db.claim_runs("w2", later, later + timedelta(seconds=30), limit=3, run_ids=[runs[1].run_id])
    done = store.RunFinish(store.RunStatus.COMPLETED, {"ok": True})
    answers = await asyncio.gather(
        *(journal.finish(r.run_id, FLOW, done, epoch=1) for r in runs), return_exceptions=True
    )
    assert answers[0] == [] and answers[2] == [], answers
    assert isinstance(answers[1], errors.LeaseLost), answers[1]
    assert [await _status(db, r.run_id) for r in runs] == [
        store.RunStatus.COMPLETED,
        store.RunStatus.QUEUED,
        store.RunStatus.COMPLETED,
    ]
    ended = await db.load_run(runs[0].run_id)
    assert ended.epoch == 1
    await journal.finish(runs[1].run_id, FLOW, done, epoch=2)
    assert await _status(db, runs[1].run_id) is store.RunStatus.COMPLETED


async def test_runs_finished_together_commit_in_one_statement_without_a_rerun(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    """Batches of new events and of ends are written optimistically: their row counts match, nothing runs again."""
    lease = store.Lease("w1", T0 + timedelta(seconds=30))
    assert db._writer is not None
    before = db._writer.reruns
    runs = await asyncio.gather(*(journal.accept(_event(f"SO-{i}", lease=lease)) for i in range(20)))
    assert db._writer.reruns == before, "a batch of new events was refused and re-run unit by unit"
    done = store.RunFinish(store.RunStatus.COMPLETED, {"ok": True})
    await asyncio.gather(*(journal.finish(r.run_id, FLOW, done, epoch=1) for r in runs))
    assert db._writer.reruns == before, "a batch of valid ends was refused and re-run unit by unit"
    assert {await _status(db, r.run_id) for r in runs} == {store.RunStatus.COMPLETED}
