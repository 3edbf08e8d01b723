"""Approvals through the journal on both backends: levels, decisions, races, timers and a restart.

An approval step's record opens the approval with its wait (as the executor does); decisions,
reminders and escalations are journal transactions against the real store. Time is an argument
(timers fire when the test says it is later), so nothing sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from seamflow import audit, clock, engine, errors, store
from seamflow.ids import FlowId, Json, RunId
from tests.support.db import Database

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
FLOW = FlowId("procure-to-pay")
PATH = "approve"


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    clock.set_fixed(T0)
    yield
    clock.use_real()


def _level(name: str, assignees: list[str], mode: str | int = "any") -> dict[str, Json]:
    needed = 1 if mode == "any" else len(assignees) if mode == "all" else int(mode)
    return {"name": name, "mode": mode, "needed": needed, "assignees": list[Json](assignees)}


async def _park(journal: engine.Journal, levels: list[dict[str, Json]], **timers: Json) -> tuple[RunId, str]:
    """Accept a purchase request and park its run at an approval with `levels`; return (run, approval)."""
    run = await journal.accept(
        store.NewEvent(FLOW, "v1", "manual", {"body": {"no": "PR-2026-0042", "amount": 8600}}, T0)
    )
    plan: Json = {"levels": list[Json](levels), "managers": {"zhang.wei": "liu.yang", "chen.jing": "liu.yang"}}
    assert isinstance(plan, dict)
    plan.update(timers)
    approval = store.NewApproval(f"apr_{run.run_id}", PATH, "li.na", "采购申请 PR-2026-0042", {"amount": 8600}, plan)
    entry = store.JournalEntry(PATH, 1, 0, "approval", store.StepStatus.WAITING, None, None, None, T0, T0)
    wait = store.Wait(PATH, engine.APPROVAL_SIGNAL, approval.id)
    record = store.StepRecord(run.run_id, FLOW, entry, wait=wait, approval=approval, run_status=store.RunStatus.RUNNING)
    assert await journal.record_step(record) == []
    return run.run_id, approval.id


async def _tasks(db: store.SqlStore, who: str, status: str | None = "pending") -> list[store.StoredTask]:
    return await db.list_tasks(store.TaskFilter(assignee=who, status=status))


async def _outcome(db: store.SqlStore, run_id: RunId) -> Json:
    state = await db.load_run(run_id)
    done = [e for e in state.journal if e.path == PATH and e.status is store.StepStatus.COMPLETED]
    assert len(done) == 1, "the approval step completes exactly once"
    output = done[0].output
    assert isinstance(output, dict)
    return output["payload"]


async def test_levels_run_in_turn_and_the_outcome_names_who_decided(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    run_id, _ = await _park(journal, [_level("部门负责人", ["zhang.wei"]), _level("财务总监", ["chen.jing"])])
    assert (await db.load_run(run_id)).status is store.RunStatus.WAITING
    assert await _tasks(db, "chen.jing") == []  # the second level opens after the first
    [first] = await _tasks(db, "zhang.wei")
    assert first.subject == "采购申请 PR-2026-0042" and first.data == {"amount": 8600}
    assert (await journal.decide_task(first.id, "zhang.wei", "approve", "预算内", {"budget_code": "IT-07"})).woken == []
    [second] = await _tasks(db, "chen.jing")
    assert second.level == 1
    assert (await journal.decide_task(second.id, "chen.jing", "approve", None, None)).woken == [run_id]
    assert (await db.load_run(run_id)).status is store.RunStatus.QUEUED
    outcome = await _outcome(db, run_id)
    assert isinstance(outcome, dict)
    assert outcome["decision"] == "approved"
    levels = outcome["levels"]
    assert isinstance(levels, list)
    assert [(d["who"], d["decision"], d["comment"], d["form"]) for d in levels if isinstance(d, dict)] == [
        ("zhang.wei", "approve", "预算内", {"budget_code": "IT-07"}),
        ("chen.jing", "approve", None, None),
    ]
    kinds = [e.kind for e in await db.list_event_log(run_id=run_id) if e.kind.startswith(("task.", "approval."))]
    assert kinds == ["task.created", "task.decided", "task.created", "task.decided", "approval.completed"]


async def test_two_approvers_of_an_any_of_level_deciding_at_once_give_one_outcome(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    run_id, _ = await _park(journal, [_level("财务", ["chen.jing", "zhang.wei"])])
    tasks = {t.assignee: t.id for t in [*await _tasks(db, "chen.jing"), *await _tasks(db, "zhang.wei")]}
    results = await asyncio.gather(
        journal.decide_task(tasks["chen.jing"], "chen.jing", "approve", None, None),
        journal.decide_task(tasks["zhang.wei"], "zhang.wei", "reject", None, None),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, engine.Decided) and r.woken == [run_id]]
    losses = [r for r in results if isinstance(r, errors.Conflict)]
    assert len(wins) == 1 and len(losses) == 1, results
    assert losses[0].code == "approval.already_decided"
    outcome = await _outcome(db, run_id)
    assert isinstance(outcome, dict) and outcome["decision"] in ("approved", "rejected")


async def test_an_all_of_level_waits_for_everyone_and_a_reject_ends_it(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    run_id, _ = await _park(journal, [_level("会签", ["chen.jing", "zhang.wei", "wang.fang"], "all")])
    [a] = await _tasks(db, "chen.jing")
    [b] = await _tasks(db, "zhang.wei")
    [c] = await _tasks(db, "wang.fang")
    assert (await journal.decide_task(a.id, "chen.jing", "approve", None, None)).woken == []
    assert (await journal.decide_task(b.id, "zhang.wei", "reject", "供应商资质不全", None)).woken == [run_id]
    outcome = await _outcome(db, run_id)
    assert isinstance(outcome, dict) and outcome["decision"] == "rejected"
    with pytest.raises(errors.Conflict, match="already decided"):
        await journal.decide_task(c.id, "wang.fang", "approve", None, None)
    assert [t.status for t in await _tasks(db, "wang.fang", None)] == ["closed"]


async def test_two_of_three_is_enough_for_an_n_of_m_level(db: store.SqlStore, journal: engine.Journal) -> None:
    run_id, _ = await _park(journal, [_level("评审", ["chen.jing", "zhang.wei", "wang.fang"], 2)])
    [a] = await _tasks(db, "chen.jing")
    [b] = await _tasks(db, "zhang.wei")
    assert (await journal.decide_task(a.id, "chen.jing", "approve", None, None)).woken == []
    assert (await journal.decide_task(b.id, "zhang.wei", "approve", None, None)).woken == [run_id]


async def test_only_the_assignee_decides_and_only_the_requester_withdraws(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    run_id, _ = await _park(journal, [_level("部门负责人", ["zhang.wei"])])
    [task] = await _tasks(db, "zhang.wei")
    with pytest.raises(errors.Forbidden) as refused:
        await journal.decide_task(task.id, "wang.fang", "approve", None, None)
    assert refused.value.code == "approval.not_assignee"
    with pytest.raises(errors.Forbidden):
        await journal.withdraw(task.id, "zhang.wei")
    with pytest.raises(errors.NotFound):
        await journal.decide_task("tsk_missing", "zhang.wei", "approve", None, None)
    assert await journal.withdraw(task.id, "li.na") == [run_id]
    outcome = await _outcome(db, run_id)
    assert isinstance(outcome, dict) and outcome["decision"] == "withdrawn"


async def test_a_due_level_is_reminded_then_escalated_to_the_manager(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    run_id, _ = await _park(
        journal, [_level("部门负责人", ["zhang.wei"])], due_s=172800.0, remind_s=86400.0, escalate="manager"
    )
    assert await journal.fire_timers(T0 + timedelta(hours=23), 10) == []
    fired = await journal.fire_timers(T0 + timedelta(days=1), 10)
    assert [t.kind for t in fired] == [store.TimerKind.REMIND]
    assert await _tasks(db, "liu.yang") == []
    fired = await journal.fire_timers(T0 + timedelta(days=2), 10)
    assert [t.kind for t in fired] == [store.TimerKind.ESCALATE]
    [escalated] = await _tasks(db, "liu.yang")
    assert (await journal.decide_task(escalated.id, "liu.yang", "approve", None, None)).woken == [run_id]
    kinds = [e.kind for e in await db.list_event_log(run_id=run_id) if e.kind.startswith("task.")]
    assert kinds == ["task.created", "task.reminded", "task.escalated", "task.decided"]


async def test_a_due_level_decides_itself_when_escalate_says_reject(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    run_id, _ = await _park(journal, [_level("部门负责人", ["zhang.wei"])], due_s=3600, escalate="reject")
    await journal.fire_timers(T0 + timedelta(hours=1), 10)
    outcome = await _outcome(db, run_id)
    assert isinstance(outcome, dict) and outcome["decision"] == "rejected"


async def test_pending_tasks_survive_a_restart_and_a_decision_resumes_the_run_once(
    database: Database, db: store.SqlStore, journal: engine.Journal
) -> None:
    run_id, _ = await _park(journal, [_level("部门负责人", ["zhang.wei"])])
    await db.close()
    reopened = store.PostgresStore(database.url) if database.url else store.SqliteStore(database.path)
    await reopened.open()
    try:
        [task] = await _tasks(reopened, "zhang.wei")
        again = engine.Journal(reopened)
        assert (await again.decide_task(task.id, "zhang.wei", "approve", None, None)).woken == [run_id]
        with pytest.raises(errors.Conflict):
            await again.decide_task(task.id, "zhang.wei", "approve", None, None)
        outcome = await _outcome(reopened, run_id)
        assert isinstance(outcome, dict) and outcome["decision"] == "approved"
    finally:
        await reopened.close()
        await db.open()  # the fixture closes it


async def test_a_return_asks_the_requester_to_amend_and_the_returning_level_decides_again(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    run_id, _ = await _park(journal, [_level("部门负责人", ["zhang.wei"]), _level("财务总监", ["chen.jing"])])
    [task] = await _tasks(db, "zhang.wei")
    assert (await journal.decide_task(task.id, "zhang.wei", "return", "请补充三家比价单", None)).woken == []
    assert (await db.load_run(run_id)).status is store.RunStatus.WAITING
    [amend] = await _tasks(db, "li.na")
    assert (amend.kind, amend.level, amend.round) == ("amend", 0, 0)
    with pytest.raises(errors.InvalidInput) as decided:
        await journal.decide_task(amend.id, "li.na", "approve", None, None)
    assert decided.value.code == "approval.resubmit_expected"
    with pytest.raises(errors.Forbidden):
        await journal.resubmit(amend.id, "zhang.wei", {"amount": 1}, None)
    await journal.resubmit(amend.id, "li.na", {"quotes": 3}, "已补充比价单")
    with pytest.raises(errors.Conflict):
        await journal.resubmit(amend.id, "li.na", {"quotes": 4}, None)
    [again] = await _tasks(db, "zhang.wei")
    assert (again.level, again.round, again.data) == (0, 1, {"amount": 8600, "changes": {"quotes": 3}})
    assert (await journal.decide_task(again.id, "zhang.wei", "approve", None, None)).woken == []
    [second] = await _tasks(db, "chen.jing")
    assert (await journal.decide_task(second.id, "chen.jing", "approve", None, None)).woken == [run_id]
    outcome = await _outcome(db, run_id)
    assert isinstance(outcome, dict) and outcome["decision"] == "approved"
    assert [(d["who"], d["decision"], d["comment"]) for d in outcome["levels"]] == [  # type: ignore[index, union-attr]
        ("zhang.wei", "return", "请补充三家比价单"),
        ("zhang.wei", "approve", None),
        ("chen.jing", "approve", None),
    ]
    assert outcome["changes"] == {"quotes": 3}
    assert outcome["amendments"] == [
        {"level": 1, "when": T0.isoformat(), "comment": "已补充比价单", "changes": {"quotes": 3}}
    ]


def _witness(seen: list[bool]) -> engine.Witness:
    """A decision's audit entry, as the API writes it: in the decision's own transaction."""

    def witness(tx: store.RunTx, is_settled: bool) -> None:
        seen.append(is_settled)
        detail: dict[str, Json] = {"decision": "approve", "settled": is_settled}
        actor = audit.Actor("zhang.wei", "token tok_bench")
        tx.append_audit_entry(audit.entry_after(audit.Action.APPROVAL_DECIDED, "task:t", actor=actor, detail=detail))

    return witness


async def test_a_decision_and_its_audit_entry_commit_together_and_a_refused_one_leaves_neither(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    run_id, _ = await _park(journal, [_level("部门负责人", ["zhang.wei"])])
    (task,) = await _tasks(db, "zhang.wei")
    seen: list[bool] = []
    decided = await journal.decide_task(task.id, "zhang.wei", "approve", "同意", None, _witness(seen))
    assert decided.woken == [run_id] and decided.is_settled and seen == [True]
    assert (decided.task.status, decided.task.decision, decided.task.comment) == ("decided", "approve", "同意")
    with pytest.raises(errors.Conflict):
        await journal.decide_task(task.id, "zhang.wei", "approve", None, None, _witness(seen))
    entries = await audit.AuditTrail(db).entries()
    assert [(e["action"], e["object"], e["detail"]) for e in entries] == [
        (str(audit.Action.APPROVAL_DECIDED), "task:t", {"decision": "approve", "settled": True})
    ]
    assert (await audit.AuditTrail(db).verify()).is_intact


async def test_the_inbox_lists_a_page_of_an_approvers_tasks_newest_first_ties_by_id(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    for _ in range(4):  # the clock stands still: the tasks tie on their creation time
        await _park(journal, [_level("财务", ["chen.jing", "zhang.wei"])])
    mine = await _tasks(db, "chen.jing")
    assert len(mine) == 4
    assert [t.id for t in mine] == [t.id for t in sorted(mine, key=lambda t: (-t.created.timestamp(), t.id))]
    page = await db.list_tasks(store.TaskFilter(assignee="chen.jing", status="pending", limit=2))
    assert [t.id for t in page] == [t.id for t in mine[:2]]
    assert all(t.assignee == "chen.jing" and t.subject == "采购申请 PR-2026-0042" for t in page)
    decided = await journal.decide_task(mine[0].id, "chen.jing", "approve", None, None)
    assert [t.id for t in await _tasks(db, "chen.jing")] == [t.id for t in mine[1:]]
    assert [t.id for t in await _tasks(db, "chen.jing", "decided")] == [decided.task.id]


async def test_the_inbox_filtered_to_the_flows_a_grant_covers(db: store.SqlStore, journal: engine.Journal) -> None:
    await _park(journal, [_level("财务", ["chen.jing"])])
    mine = await _tasks(db, "chen.jing")
    of_flow = await db.list_tasks(store.TaskFilter(assignee="chen.jing", flow_ids=(FLOW,)))
    of_other = await db.list_tasks(store.TaskFilter(assignee="chen.jing", flow_ids=("other-flow",)))
    of_none = await db.list_tasks(store.TaskFilter(assignee="chen.jing", flow_ids=()))
    assert [t.id for t in of_flow] == [t.id for t in mine] and len(mine) == 1
    assert of_other == [] and of_none == []
