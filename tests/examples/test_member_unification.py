"""examples/member-unification as its README runs it: three systems' members (a GBK export, a REST list,
a SQL table) unified with points summed; then a new POS member matched on arrival by a flow in a real
`seamflow serve`.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import db
from tests.support.runs import run_in_status
from tests.support.server import Server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "member-unification"


def _copy(tmp_path: Path) -> Path:
    project = tmp_path / "member-unification"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("data", ".seamflow", "__pycache__"))
    return project


def _run_example(project: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SEAMFLOW_DATABASE_URL"}
    env["PYTHONPATH"] = str(project)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-m", "member_unification", "--people", "600", "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.timeout(600)  # subprocesses and a server on a shared, busy machine
async def test_the_example_unifies_members_and_sums_their_points(tmp_path: Path) -> None:
    project = _copy(tmp_path)

    shown = _run_example(project)

    print(shown)
    assert re.search(r"POS [\d,]+ \(GBK CSV\), shop [\d,]+ \(REST\), CRM [\d,]+ \(SQL\)", shown)
    f1 = float(re.search(r"F1 ([\d.]+)", shown).group(1))  # type: ignore[union-attr]
    assert f1 >= 0.95
    assert re.search(r"^M\d{8} .+ \+86\d{11} +\d+ +[\d,]+$", shown, re.MULTILINE)


@pytest.mark.timeout(600)  # subprocesses and a server on a shared, busy machine
async def test_a_new_pos_member_is_matched_on_arrival_by_the_flow(tmp_path: Path) -> None:
    project = _copy(tmp_path)
    _run_example(project)
    with (project / "data" / "pos_members.csv").open(encoding="gb18030", newline="") as handle:
        first = next(csv.DictReader(handle))
    server = Server(project, database=db.Database("sqlite", path=project / ".seamflow" / "seamflow.db"))
    await server.start(timeout_s=90)  # the shared machine can be slow to start a server
    try:
        async with server.client() as client:
            body = {"会员编号": "P90000001", "姓名": first["姓名"], "手机": first["手机"], "积分": "120"}
            accepted = await client.post("/hooks/pos/members", json=body)
            assert accepted.status_code == 202, accepted.text
            run = await run_in_status(client, accepted.json()["run_id"], "completed")
            matched = run["steps"][-1]["output"]
            member = (await client.get(f"/api/v1/identity/member/members/{matched['unified_id']}")).json()
    finally:
        server.kill()
    assert matched["is_new"] is False
    records = {r["record"] for r in member["records"]}
    assert {"pos:P00000001", "pos:P90000001"} <= records
