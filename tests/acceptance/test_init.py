"""`seamflow init`: a project that starts, no placeholder secret, and "Next:" lines that work as printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from seamflow.api import hash_token
from tests.acceptance.test_cli import seamflow
from tests.support.db import current as current_database


def test_init_scaffolds_a_project_and_shows_the_token_once(tmp_path: Path) -> None:
    out = seamflow("init", str(tmp_path / "shop")).stdout
    assert "API token (shown once, stored hashed): sf_" in out
    token = out.split("stored hashed): ")[1].split()[0]
    for name in ("flows/hello.yaml", "connections.yaml", ".env.example", ".env"):
        assert (tmp_path / "shop" / name).exists(), name
    stored = current_database(tmp_path / "shop").query("SELECT hash FROM api_tokens")
    assert stored == [(hash_token(token),)], "the token is stored hashed, not as is"
    listed = seamflow("flow", "list", "--project", str(tmp_path / "shop")).stdout
    assert "hello-orders" in listed and "/hooks/orders" in listed
    again = seamflow("init", str(tmp_path / "shop"), check=False)
    assert again.returncode != 0 and "already exists" in again.stderr


def test_init_stores_no_placeholder_secret_and_validate_names_the_one_to_set(tmp_path: Path) -> None:
    seamflow("init", str(tmp_path / "shop"))
    project = tmp_path / "shop"
    assert "change-me" not in "".join(
        p.read_text("utf-8") for p in project.rglob("*") if p.suffix != ".db" and p.is_file() and p.name != "secret.key"
    )
    result = seamflow("flow", "validate", "--project", str(project), check=False)
    assert result.returncode == 2
    assert f"{project}/connections.yaml:7:18 orders.auth.bearer: connection 'orders' reads secret" in result.stderr
    assert "`seamflow secrets set orders_token`" in result.stderr
    assert "SEAMFLOW_SECRET_ORDERS_TOKEN" in result.stderr
    served = subprocess.run(
        [sys.executable, "-m", "seamflow", "serve", "--project", str(project), "--port", "0", "--processes", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 2, "serve refuses to start and send nothing rather than an empty token"
    assert "orders_token" in served.stderr and "Traceback" not in served.stderr


def test_the_next_lines_of_init_work_as_printed(tmp_path: Path) -> None:
    out = seamflow("init", "shop", cwd=tmp_path).stdout
    lines = out.split("Next:\n", 1)[1].splitlines()
    assert lines[0].strip() == "cd shop"
    commands = [line.split("#", 1)[0].strip() for line in lines[1:] if line.startswith("  ")]
    program = commands[0].split(" secrets set")[0]
    assert [c.removeprefix(program) for c in commands] == [
        " secrets set orders_token",
        " flow validate",
        " dev receiver",
        " serve",
    ]
    project = tmp_path / "shop"
    stored = subprocess.run(
        [*program.split(), "secrets", "set", "orders_token"],
        cwd=project,
        input="dev-orders-token",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert stored.returncode == 0, stored.stderr
    validated = subprocess.run(
        [*program.split(), "flow", "validate"], cwd=project, capture_output=True, text=True, timeout=60, check=False
    )
    assert validated.returncode == 0 and "ok: 1 flow(s) valid" in validated.stdout, validated.stderr
