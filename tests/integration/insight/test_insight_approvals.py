"""An approval's rows in the event log, as insight sees them: a process of the approval object,
decisions named after their level, the approver as resource (waiting time per approver)."""

from __future__ import annotations

from seamflow import engine, insight, store
from tests.integration.engine.test_approvals import _level, _park, _tasks, fixed_clock

__all__ = ["fixed_clock"]  # the clock fixture of the approvals' tests, used here too


async def test_an_approval_is_a_case_with_its_levels_named(db: store.SqlStore, journal: engine.Journal) -> None:
    await _park(journal, [_level("部门负责人", ["zhang.wei"]), _level("财务总监", ["chen.jing"])])
    (first,) = await _tasks(db, "zhang.wei")
    await journal.decide_task(first.id, "zhang.wei", "approve", "预算内", None)
    (second,) = await _tasks(db, "chen.jing")
    await journal.decide_task(second.id, "chen.jing", "reject", "超预算", None)
    found = insight.Insight(db)
    result = await found.process_map(insight.CaseFilter("approval"))
    assert result.cases == 1
    assert result.variants[0].activities == (
        "Approval requested",
        "Approved by 部门负责人",
        "Approval requested",
        "Rejected by 财务总监",
        "Approval completed",
    )
    kpi = insight.Kpi(id="wait", kind="waiting_time", object_type="approval", per="resource")
    rows = (await found.kpi(kpi)).to_json()["rows"]  # type: ignore[index]
    assert {r["resource"] for r in rows} >= {"zhang.wei", "chen.jing"}
    found.close()
