"""Read-only commands work while the connected systems are down; `sync check` names the side it cannot reach.

The project is the lead-to-cash example (a CRM and an ERP behind `openapi` connections, a
mail relay, a two-way customer sync) with every system's address on a closed port of 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seamflow import errors
from tests.support.server import free_port, serve
from tests.support.wait import eventually

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lead-to-cash"
SECRETS = {
    "SEAMFLOW_SECRET_CRM_TOKEN": "crm-token-3f9a1c77e2",
    "SEAMFLOW_SECRET_ERP_TOKEN": "erp-token-b81d04e6c5",
    "SEAMFLOW_SECRET_CRM_WEBHOOK": "crm-webhook-5c2e98d1a0",
}

READ_ONLY = [
    ("runs", "list"),
    ("runs", "list", "--json"),
    ("runs", "show", "run_that_does_not_exist"),
    ("runs", "dead-letters"),
    ("sync", "list"),
    ("sync", "conflicts"),
    ("flow", "list"),
    ("flow", "validate"),
    ("connections", "list"),
    ("workers",),
]


@pytest.fixture
def offline_project(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The example project with its systems at closed ports; returns the ports by system."""
    shutil.copytree(EXAMPLE, project_dir, dirs_exist_ok=True)
    ports = {"crm": str(free_port()), "erp": str(free_port()), "smtp": str(free_port())}
    monkeypatch.setenv("SEAMFLOW_VAR_CRM_URL", f"http://127.0.0.1:{ports['crm']}")
    monkeypatch.setenv("SEAMFLOW_VAR_ERP_URL", f"http://127.0.0.1:{ports['erp']}")
    monkeypatch.setenv("SEAMFLOW_VAR_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SEAMFLOW_VAR_SMTP_PORT", ports["smtp"])
    monkeypatch.setenv("SEAMFLOW_VAR_SALES_OPS_EMAIL", "sales-ops@huadong.example.cn")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    assert seamflow(project_dir, "db", "upgrade").returncode == 0
    return ports


def seamflow(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamflow", *args, "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
        check=False,
    )


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_commands_need_no_connected_system(
    project_dir: Path, offline_project: dict[str, str], command: tuple[str, ...]
) -> None:
    done = seamflow(project_dir, *command)
    output = done.stdout + done.stderr
    unknown_run = command[:2] == ("runs", "show")  # an unknown run is an answer from the store
    expected = errors.NotFound.exit_code if unknown_run else 0
    assert done.returncode == expected, output
    assert "connector.transient" not in output and "Traceback" not in output, output
    assert "fetching the OpenAPI document" not in output, output
    if unknown_run:
        assert "run_that_does_not_exist" in done.stderr


def test_sync_check_names_each_side_it_cannot_reach_and_exits_3(
    project_dir: Path, offline_project: dict[str, str]
) -> None:
    done = seamflow(project_dir, "sync", "check", "customers")
    assert done.returncode == 3, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "sync customers: cannot compare; a side cannot be reached"
    for side in ("crm", "erp"):
        address = f"http://127.0.0.1:{offline_project[side]}"
        line = next(line for line in lines if line.startswith(f"  side {side}:"))
        assert line.startswith(f"  side {side}: connection '{side}' at {address}: cannot be reached: "), line
        assert f"{address}/openapi.json" in line
    assert lines[-1].startswith("hint: start those systems or correct the address in connections.yaml;")
    assert "`seamflow connections test crm` and `seamflow connections test erp`" in lines[-1]
    assert "Traceback" not in done.stderr and "connector.transient" not in done.stderr
    for value in SECRETS.values():
        assert value not in done.stdout + done.stderr


async def test_serve_starts_and_answers_while_every_system_is_down(
    project_dir: Path, offline_project: dict[str, str]
) -> None:
    async with serve(project_dir) as server, server.client() as api:
        flows = (await api.get("/api/v1/flows")).json()
        assert {f["id"] for f in flows} >= {"contract-signed-to-erp", "erp-payment-to-crm"}
        syncs = (await api.get("/api/v1/syncs")).json()
        assert [s["sync"] for s in syncs] == ["customers"]

        async def feeds_report_the_system_down() -> None:
            failing = [f for f in (await api.get("/api/v1/feeds")).json() if f["last_error"]]
            assert failing, "the poll feeds try the systems and say why they fail"
            assert all("fetching the OpenAPI document" in f["last_error"] for f in failing), failing

        await eventually(feeds_report_the_system_down, timeout=30)
    log = server.log_path.read_text(encoding="utf-8")
    assert "feed failing" in log  # at the server's warning level; the deferred document is an info line
    for value in SECRETS.values():
        assert value not in log


async def test_the_api_check_names_each_side_it_cannot_reach(
    project_dir: Path, offline_project: dict[str, str]
) -> None:
    async with serve(project_dir) as server, server.client() as api:
        answer = await api.post("/api/v1/syncs/customers/check")
        assert answer.status_code == 503, answer.text
        body = answer.json()
        assert body["code"] == "sync.side_unreachable"
        assert answer.headers["Retry-After"] == "30"
        assert body["detail"] == "sync customers: cannot compare; side crm, erp cannot be reached"
        sides = {side["side"]: side for side in body["sides"]}
        for name in ("crm", "erp"):
            assert sides[name]["connection"] == name
            assert sides[name]["address"] == f"http://127.0.0.1:{offline_project[name]}"
            assert sides[name]["answers"] is False
            assert f"http://127.0.0.1:{offline_project[name]}" in sides[name]["message"]
        assert (await api.get("/health/ready")).status_code == 200, "the server keeps serving"
    for value in SECRETS.values():
        assert value not in answer.text
