"""`seamflow identity` the way a data steward uses it: resolve from the command line, explain a pair,
then merge and split over the REST API with a reason; each decision is in the audit trail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import db
from tests.support.members import EXAMPLE, data, write_project
from tests.support.server import Server


def _seamflow(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SEAMFLOW_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "seamflow", *args, "--project", str(project)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def _project(tmp_path: Path) -> tuple[Path, data.Members]:
    project = tmp_path / "retail"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("data", ".seamflow", "__pycache__"))
    members = data.generate(300, seed=11)
    write_project(members, project)
    return project, members


@pytest.mark.timeout(600)  # subprocesses and a server on a shared, busy machine
async def test_a_steward_resolves_explains_merges_and_splits(tmp_path: Path) -> None:
    project, members = _project(tmp_path)

    resolved = _seamflow(project, "identity", "resolve", "identity/members.yaml", "--json")
    assert resolved.returncode == 0, resolved.stderr
    report = json.loads(resolved.stdout)
    assert report["records"] == members.records and report["new_ids"] == report["clusters"]
    person = next(p for p in set(members.truth.values()) if list(members.truth.values()).count(p) >= 2)
    left, right = [ref for ref, p in members.truth.items() if p == person][:2]
    explained = _seamflow(project, "identity", "explain", "identity/members.yaml", left, right)
    assert explained.returncode == 0, explained.stderr
    assert "name" in explained.stdout and "match probability" in explained.stdout

    server = Server(project, database=db.Database("sqlite", path=project / ".seamflow" / "seamflow.db"))
    await server.start(timeout_s=90)  # the shared machine can be slow to start a server
    try:
        async with server.client() as client:
            second = (await client.get("/api/v1/identity/member/members/M00000002")).json()
            moved = [r["record"] for r in second["records"]]
            merged = await client.post(
                "/api/v1/identity/member/merge",
                json={"unified_ids": ["M00000002", "M00000001"], "reason": "会员来电确认是同一人"},
            )
            assert merged.status_code == 200, merged.text
            member = (await client.get("/api/v1/identity/member/members/M00000001")).json()
            assert set(moved) <= {r["record"] for r in member["records"]}
            split = await client.post(
                "/api/v1/identity/member/members/M00000001/split", json={"records": moved, "reason": "合并有误"}
            )
            assert split.status_code == 200, split.text
            refused = await client.post(
                "/api/v1/identity/member/merge", json={"unified_ids": ["M00000001", "M00000001"], "reason": "x"}
            )
            trail = (await client.get("/api/v1/audit")).json()
    finally:
        server.kill()
    assert split.json()["clusters"][1]["unified_id"] == "M00000002"
    assert refused.status_code == 400 and refused.json()["code"] == "identity.merge_same"
    entries = trail["entries"] if isinstance(trail, dict) else trail
    assert [e["action"] for e in entries if e["action"].startswith("identity.")] == [
        "identity.merged",
        "identity.split",
    ]
    shown = _seamflow(project, "identity", "show", "member", "M00000002", "--json")
    assert shown.returncode == 0, shown.stderr
    assert sorted(r["record"] for r in json.loads(shown.stdout)["records"]) == sorted(moved)
