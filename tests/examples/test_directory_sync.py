"""examples/directory-sync through a real `seamflow serve`: DingTalk's department and user lists
become Seamflow's directory, a repeated sync changes nothing, a bad row dead-letters its run.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.runs import run_in_status
from tests.support.server import Server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "directory-sync"
SAMPLE = json.loads((EXAMPLE / "samples" / "dingtalk-directory.json").read_text("utf-8"))


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project)
    running = Server(project)
    await running.start()
    try:
        yield running
    finally:
        running.kill()


async def _sync(client: httpx.AsyncClient, body: Any, key: str, status: str = "completed") -> dict[str, Any]:
    accepted = await client.post("/hooks/dingtalk/directory", json=body, headers={"Idempotency-Key": key})
    assert accepted.status_code == 202, accepted.text
    return await run_in_status(client, accepted.json()["run_id"], status)


async def _directory(client: httpx.AsyncClient) -> tuple[Any, Any]:
    users = (await client.get("/api/v1/directory/users")).json()
    departments = (await client.get("/api/v1/directory/departments")).json()
    return users, departments


async def test_dingtalk_contacts_become_the_directory_and_a_repeat_changes_nothing(server: Server) -> None:
    async with server.client() as client:
        await _sync(client, SAMPLE, "dingtalk-2026-03-02T02:00")
        users, departments = await _directory(client)
        by_login = {u["login"]: u for u in users}
        assert set(by_login) == {"wangfang01", "zhangwei02", "chenjing03", "liuyang04", "hk_lee05"}
        zhangwei = by_login["zhangwei02"]
        assert zhangwei["display_name"] == "张伟" and zhangwei["mobile"] == "+8613812345678"
        assert zhangwei["email"] == "zhang.wei@hengda-trading.com.cn"  # the company mailbox wins
        assert zhangwei["department_id"] == "dingtalk-471285023"
        assert by_login["hk_lee05"]["mobile"] is None and by_login["hk_lee05"]["is_active"] is False
        assert {d["id"]: (d["name"], d["parent"], d["head"]) for d in departments} == {
            "dingtalk-1": ("恒达商贸有限公司", None, "wangfang01"),
            "dingtalk-471285023": ("财务部", "dingtalk-1", "zhangwei02"),
            "dingtalk-471285024": ("采购部", "dingtalk-1", "chenjing03"),
            "dingtalk-471290117": ("应付组", "dingtalk-471285023", None),
        }
        # an admin gives zhangwei a role in Seamflow; the next sync must not take it away
        answer = await client.put(
            "/api/v1/directory/users/zhangwei02", json={**_as_entry(zhangwei), "roles": ["approver"]}
        )
        assert answer.status_code == 200, answer.text
        await _sync(client, SAMPLE, "dingtalk-2026-03-03T02:00")
        again_users, again_departments = await _directory(client)
        assert again_departments == departments
        assert next(u for u in again_users if u["login"] == "zhangwei02")["roles"] == ["approver"]


async def test_a_user_with_a_bad_mobile_dead_letters_the_run_naming_the_field(server: Server) -> None:
    body = copy.deepcopy(SAMPLE)
    body["users"][3]["mobile"] = "1380013800"  # a digit short
    async with server.client() as client:
        run = await _sync(client, body, "dingtalk-bad", status="dead_letter")
        failed = [step for step in run["steps"] if step.get("error")]
        error = json.dumps(failed[-1]["error"], ensure_ascii=False)
        assert "directory.invalid" in error and "mobile" in error and "not a mainland mobile number" in error
        users, _ = await _directory(client)
        assert "liuyang04" not in {u["login"] for u in users}


def _as_entry(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": user["display_name"],
        "email": user["email"],
        "mobile": user["mobile"],
        "department": user["department_id"],
        "active": user["is_active"],
    }
