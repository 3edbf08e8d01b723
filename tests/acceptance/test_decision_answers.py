"""The decision route's answers, pinned: the same access checks, problem+json errors and security
headers whichever layer answers `POST /api/v1/tasks/{task_id}/decision` (it skips FastAPI's).

Each case is a request a client may really send: no credentials, a malformed body, a token
without the approve scope, someone else's task, a task that does not exist, a decision twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.approvals import Site, company
from tests.support.runs import run_in_status

FLOW = """
id: leave-request
trigger: {manual: {}}
steps:
  - id: approve
    approval:
      requester: "{{ event.body.requester }}"
      subject: "请假 {{ event.body.days }} 天"
      levels:
        - name: 部门负责人
          assignees: [{user: zhang.wei}]
"""


@pytest.fixture
async def site(project_dir: Path, tmp_path: Path) -> AsyncIterator[Site]:
    async with company(project_dir, tmp_path, {"leave-request": FLOW}) as site:
        yield site


def _problem(answer: httpx.Response) -> tuple[int, str, str]:
    assert answer.headers["content-type"] == "application/problem+json", answer.text
    assert answer.headers["x-content-type-options"] == "nosniff"
    body: dict[str, Any] = answer.json()
    assert body["type"] == f"https://seamflow.dev/errors/{body['code']}" and body["status"] == answer.status_code
    return answer.status_code, body["code"], body["detail"]


async def _viewer_token(site: Site) -> str:
    answer = await site.admin.put("/api/v1/directory/users/guo.qiang", json={"name": "郭强", "roles": ["viewer"]})
    assert answer.status_code == 200, answer.text
    made = await site.admin.post("/api/v1/directory/users/guo.qiang/tokens", json={"name": "reports"})
    return str(made.json()["token"])


async def test_refusals_of_the_decision_route_keep_their_status_code_and_text(site: Site) -> None:
    await site.start("leave-request", {"requester": "li.na", "days": 2})
    [task] = await site.inbox("zhang.wei")
    path = f"/api/v1/tasks/{task['id']}/decision"
    viewer = await _viewer_token(site)
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as anyone:
        cases: dict[str, httpx.Response] = {
            "no credentials": await anyone.post(path, json={"decision": "approve"}),
            "bad JSON, no credentials": await anyone.post(
                path, content=b'{"decision": ', headers={"content-type": "application/json"}
            ),
            "unknown token": await anyone.post(
                path, json={"decision": "approve"}, headers={"Authorization": "Bearer sfp_not-a-token"}
            ),
            "viewer": await anyone.post(
                path, json={"decision": "approve"}, headers={"Authorization": f"Bearer {viewer}"}
            ),
        }
    async with site.client("zhang.wei") as mine, site.client("chen.jing") as other:
        cases |= {
            "unknown decision": await mine.post(path, json={"decision": "maybe"}),
            "unknown field": await mine.post(path, json={"decision": "approve", "urgent": True}),
            "no body": await mine.post(path),
            "not JSON content": await mine.post(
                path, content=b'{"decision": "approve"}', headers={"content-type": "text/plain"}
            ),
            "comment too long": await mine.post(path, json={"decision": "approve", "comment": "好" * 4001}),
            "no such task": await mine.post("/api/v1/tasks/tsk_nothing/decision", json={"decision": "approve"}),
            "not the assignee": await other.post(path, json={"decision": "approve"}),
        }
    seen = {name: _problem(answer) for name, answer in cases.items()}
    assert seen == {
        "no credentials": (
            401,
            "auth.unauthorized",
            "missing credentials; expected the header Authorization: Bearer <token> or a session cookie",
        ),
        "bad JSON, no credentials": (400, "request.invalid", "body.13: JSON decode error"),  # the body is read first
        "unknown token": (401, "auth.unauthorized", "the API token is not valid"),
        "viewer": (
            403,
            "auth.forbidden",
            "POST /api/v1/tasks/{task_id}/decision needs the approve scope on flow 'leave-request';"
            " 'guo.qiang' (by token) has read there (global roles and grants)",
        ),
        "unknown decision": (400, "request.invalid", "body.decision: Input should be 'approve', 'reject' or 'return'"),
        "unknown field": (400, "request.invalid", "body.urgent: Extra inputs are not permitted"),
        "no body": (400, "request.invalid", "body: Field required"),
        "not JSON content": (
            400,
            "request.invalid",
            "body: Input should be a valid dictionary or object to extract fields from",
        ),
        "comment too long": (400, "request.invalid", "body.comment: String should have at most 4000 characters"),
        "no such task": (404, "approval.task_not_found", "task tsk_nothing does not exist"),
        "not the assignee": (403, "approval.not_assignee", f"task {task['id']} is assigned to someone else"),
    }


async def test_a_decision_answers_the_decided_task_resumes_the_run_and_a_second_one_is_a_conflict(site: Site) -> None:
    run_id = await site.start("leave-request", {"requester": "li.na", "days": 2})
    [task] = await site.inbox("zhang.wei")
    answer = await site.decide("zhang.wei", task["id"], "approve", comment="同意", form={"note": "年假"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["referrer-policy"] == "no-referrer"
    decided = answer.json()
    assert (decided["id"], decided["status"], decided["decision"]) == (task["id"], "decided", "approve")
    assert (decided["comment"], decided["form"], decided["approval_settled"]) == ("同意", {"note": "年假"}, True)
    async with site.client("zhang.wei") as client:
        await run_in_status(client, run_id, "completed")
    again = await site.decide("zhang.wei", task["id"], "reject")
    assert _problem(again)[:2] == (409, "approval.already_decided")
    audit = (await site.admin.get("/api/v1/audit")).json()
    [entry] = [e for e in audit if e["action"] == "approval.decided" and e["object"] == f"task:{task['id']}"]
    assert (entry["actor"], entry["client"]) == ("zhang.wei", "127.0.0.1") and entry["via"].startswith("token pat_")
    assert entry["detail"] == {"decision": "approve", "settled": True}
