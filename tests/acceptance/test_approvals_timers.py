"""Reminder, then escalation across a restart of the server, driven by the fake clock.

The reminder falls due while the server runs; the server is killed; the clock passes the due
time while it is down; after the restart the escalation fires once (one task for the head's
manager), and the manager's decision resumes the run once. A second approval that decides itself
when due (`escalate: reject`) does so after the same restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.approvals import Site, company, output_of
from tests.support.runs import run_in_status
from tests.support.wait import eventually

FLOW = """
id: {id}
trigger: {{manual: {{}}}}
steps:
  - id: approve
    approval:
      requester: "{{{{ event.body.requester }}}}"
      subject: "采购申请 {{{{ event.body.no }}}}"
      remind_after: 4h
      due: 1d
      escalate: {escalate}
      levels:
        - name: 部门负责人
          assignees: [{{department_head: it}}]
"""


@pytest.fixture
async def site(project_dir: Path, tmp_path: Path) -> AsyncIterator[Site]:
    flows = {
        "to-manager": FLOW.format(id="to-manager", escalate="manager"),
        "self-deciding": FLOW.format(id="self-deciding", escalate="reject"),
    }
    async with company(project_dir, tmp_path, flows) as found:
        yield found


async def test_a_reminder_then_after_a_restart_the_escalation_fires_once_and_the_run_resumes_once(site: Site) -> None:
    escalating = await site.start("to-manager", {"no": "PR-2026-0501", "requester": "li.na"})
    rejecting = await site.start("self-deciding", {"no": "PR-2026-0502", "requester": "li.na"})
    await site.inbox("zhang.wei", count=2)
    site.set_clock("2026-12-07T13:00:01+08:00")

    async def logged(run_id: str, kind: str, count: int = 1) -> None:
        kinds = [e["kind"] for e in await site.events(run_id)]
        assert kinds.count(kind) == count, kinds

    for run_id in (escalating, rejecting):
        await eventually(lambda run_id=run_id: logged(run_id, "task.reminded"), timeout=30)
    site.server.kill()
    site.set_clock("2026-12-08T09:00:05+08:00")  # past due while the server is down
    await site.server.start()
    [escalated] = await site.inbox("liu.yang")
    assert escalated["level"] == 1 and escalated["subject"] == "采购申请 PR-2026-0501"
    rejected = await run_in_status(site.admin, rejecting, "completed", timeout=30)
    assert output_of(rejected, "approve")["decision"] == "rejected"
    answer = await site.decide("liu.yang", escalated["id"], "approve", comment="张伟出差，我来批")
    assert answer.status_code == 200 and answer.json()["approval_settled"] is True, answer.text
    run = await run_in_status(site.admin, escalating, "completed", timeout=30)
    assert output_of(run, "approve")["decision"] == "approved"
    await logged(escalating, "task.escalated")
    await logged(escalating, "task.reminded")  # once: the restart did not fire it again
    assert [s["step"] for s in run["steps"] if s["status"] == "completed"] == ["approve"]
