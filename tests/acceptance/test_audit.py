"""The audit trail through a real `seamflow serve` and the CLI: actions recorded with who and from
where, `GET /api/v1/audit` for admins only, `audit verify` naming a tampered entry, JSON Lines export.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support import db
from tests.support.server import Server, make_project
from tests.support.wait import eventually

PASSWORD = "Hengda-2026-audit"
FLOW = "id: hello\ntrigger: {manual: {}}\nsteps:\n  - id: a\n    transform: 1\n"
PEOPLE = {
    "wangfang": {"name": "王芳", "mobile": "139-0211-3344", "roles": ["admin"]},
    "liuyang": {"name": "刘洋", "mobile": "13700001234", "roles": ["viewer"]},
}
AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64) DingTalk/7.5.10"


def seamflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamflow", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
async def server(project_dir: Path) -> AsyncIterator[Server]:
    make_project(project_dir, {"hello": FLOW})
    running = Server(project_dir)
    await running.start()
    try:
        yield running
    finally:
        running.kill()


async def _people(server: Server) -> None:
    async with server.client() as admin:
        for login, user in PEOPLE.items():
            assert (await admin.put(f"/api/v1/directory/users/{login}", json=user)).status_code == 200
            answer = await admin.put(f"/api/v1/directory/users/{login}/password", json={"password": PASSWORD})
            assert answer.status_code == 204, answer.text


async def test_actions_are_recorded_with_who_and_where_and_only_admins_read_them(server: Server) -> None:
    await _people(server)
    async with httpx.AsyncClient(base_url=server.url, headers={"User-Agent": AGENT, "X-Seamflow-CSRF": "1"}) as browser:
        wrong = await browser.post("/api/v1/session", json={"login": "wangfang", "password": "not-it"})
        assert wrong.status_code == 401
        signed = await browser.post("/api/v1/session", json={"login": "wangfang", "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        made = await browser.post("/api/v1/session/tokens", json={"name": "月结脚本", "scopes": ["read"]})
        assert made.status_code == 201, made.text
        secret, token_id = made.json()["token"], made.json()["id"]
        entries = (await browser.get("/api/v1/audit", params={"limit": 1000})).json()
    actions = [(e["action"], e["object"], e["actor"]) for e in entries]
    assert ("session.sign_in_failed", "user:wangfang", "wangfang") in actions
    assert ("session.signed_in", "user:wangfang", "wangfang") in actions
    assert ("token.created", f"token:{token_id}", "wangfang") in actions
    assert ("role.granted", "user:wangfang", "@bootstrap") in actions, "the admin role given at creation"
    created = next(e for e in entries if e["action"] == "token.created")
    assert created["client"] == "127.0.0.1" and created["user_agent"] == AGENT and created["via"] == "session"
    assert created["detail"]["scopes"] == ["read"]
    assert secret not in json.dumps(entries, ensure_ascii=False), "a token's secret is never in the trail"

    async with httpx.AsyncClient(base_url=server.url) as viewer:
        assert (await viewer.post("/api/v1/session", json={"login": "liuyang", "password": PASSWORD})).is_success
        assert (await viewer.get("/api/v1/audit")).status_code == 403
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {secret}"}) as script:
        assert (await script.get("/api/v1/audit")).status_code == 403, "a read-only token of an admin"


async def test_verify_names_an_entry_edited_in_the_database(server: Server, project_dir: Path) -> None:
    await _people(server)
    async with server.client() as admin:
        assert (await admin.post("/api/v1/flows/reload")).status_code == 200
    project = str(project_dir)
    clean = seamflow("audit", "verify", "-p", project)
    assert clean.returncode == 0 and "audit trail intact" in clean.stdout, clean.stdout + clean.stderr
    count = int(clean.stdout.split(": ")[1].split()[0])
    assert count >= 4, clean.stdout

    database: db.Database = server.database
    database.query("UPDATE audit_log SET object = 'user:someone-else' WHERE seq = 2")
    broken = seamflow("audit", "verify", "-p", project, "--json")
    assert broken.returncode == 1
    verdict = json.loads(broken.stdout)
    assert verdict["intact"] is False and verdict["first_broken"] == 2 and "edited" in verdict["problem"]


async def test_export_writes_json_lines_from_a_date(server: Server, project_dir: Path, tmp_path: Path) -> None:
    await _people(server)
    out = tmp_path / "audit.jsonl"
    done = seamflow("audit", "export", "--since", "2000-01-01", "-o", str(out), "-p", str(project_dir))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1)) and len(lines) >= 4
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(lines))
    assert {e["action"] for e in lines} >= {"role.granted", "user.password_set"}
    later = seamflow("audit", "export", "--since", "2999-01-01", "-p", str(project_dir))
    assert later.returncode == 0 and later.stdout == ""
    bad = seamflow("audit", "export", "--since", "last tuesday", "-p", str(project_dir))
    assert bad.returncode == 2 and "expected ISO 8601" in bad.stderr


async def test_a_flow_file_changed_on_disk_is_recorded_as_deployed(server: Server, project_dir: Path) -> None:
    (project_dir / "flows" / "ping.yaml").write_text(
        "id: ping\ntrigger: {manual: {}}\nsteps:\n  - id: a\n    transform: 2\n", encoding="utf-8"
    )
    async with server.client() as admin:

        async def deployed() -> dict[str, object]:
            entries = (await admin.get("/api/v1/audit", params={"limit": 1000})).json()
            found = [e for e in entries if e["action"] == "flow.deployed" and e["object"] == "flow:ping"]
            assert found, [e["action"] for e in entries]
            return dict(found[0])

        entry = await eventually(deployed, timeout=30)
    assert entry["actor"] == "@files" and entry["via"] == "watch"
    assert isinstance(entry["detail"], dict) and entry["detail"]["version"]


APPROVAL = """id: expense-claim
trigger: {manual: {}}
steps:
  - id: approve
    approval:
      requester: "{{ event.body.requester }}"
      subject: "报销 {{ event.body.no }}"
      levels:
        - name: 部门负责人
          assignees: [{user: wangfang}]
"""


async def test_an_approval_decision_is_recorded_by_the_api_and_by_the_cli(project_dir: Path) -> None:
    make_project(project_dir, {"hello": FLOW, "expense": APPROVAL})
    server = Server(project_dir)
    await server.start()
    try:
        await _people(server)
        async with server.client() as admin:
            assert (
                await admin.put(
                    "/api/v1/directory/users/wangfang", json={**PEOPLE["wangfang"], "roles": ["admin", "approver"]}
                )
            ).is_success
            token = (await admin.post("/api/v1/directory/users/wangfang/tokens", json={"name": "inbox"})).json()
            for no in ("EX-2026-0101", "EX-2026-0102"):
                body = {"input": {"no": no, "requester": "liuyang"}}
                assert (await admin.post("/api/v1/flows/expense-claim/runs", json=body)).status_code == 202
            headers = {"Authorization": f"Bearer {token['token']}"}
            async with httpx.AsyncClient(base_url=server.url, headers=headers) as approver:

                async def two_tasks() -> list[dict[str, object]]:
                    tasks = (await approver.get("/api/v1/tasks", params={"assignee": "me", "status": "pending"})).json()
                    assert len(tasks) == 2, tasks
                    return list(tasks)

                first, second = await eventually(two_tasks, timeout=30)
                decided = await approver.post(f"/api/v1/tasks/{first['id']}/decision", json={"decision": "approve"})
                assert decided.status_code == 200, decided.text
            by_cli = await asyncio.to_thread(
                seamflow, "tasks", "decide", str(second["id"]), "reject", "--as", "wangfang", "-p", str(project_dir)
            )
            assert by_cli.returncode == 0, by_cli.stderr
            entries = (await admin.get("/api/v1/audit", params={"limit": 1000})).json()
    finally:
        server.kill()
    decisions = [e for e in entries if e["action"] == "approval.decided"]
    assert [(e["object"], e["detail"]["decision"]) for e in decisions] == [
        (f"task:{first['id']}", "approve"),
        (f"task:{second['id']}", "reject"),
    ]
    assert decisions[0]["actor"] == "wangfang" and decisions[0]["via"] == f"token {token['id']}"
    assert decisions[1]["actor"].startswith("@cli:") and decisions[1]["detail"]["as"] == "wangfang"


def test_roles_granted_by_a_directory_import_are_recorded_once(project_dir: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "directory" / "directory.yaml"
    make_project(project_dir, {})
    project = str(project_dir)
    for _ in range(2):  # the second import changes nothing, and grants nothing
        assert seamflow("users", "import", str(example), "-p", project).returncode == 0
    exported = seamflow("audit", "export", "-p", project)
    entries = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [e["action"] for e in entries].count("directory.imported") == 2
    granted = {e["object"]: e["detail"]["granted"] for e in entries if e["action"] == "role.granted"}
    assert granted and all(e["actor"].startswith("@cli:") for e in entries)
    assert "admin" in granted["user:wangfang"]
    assert seamflow("audit", "verify", "-p", project).returncode == 0
