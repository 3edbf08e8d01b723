"""`seamflow users …` as a user runs it: import a directory file, passwords, personal API tokens."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.server import make_project

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "directory" / "directory.yaml"
PASSWORD = "Hengda-2026-finance"


def seamflow(
    project: Path, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "seamflow", *args, "--project", str(project)],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"seamflow {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def test_importing_the_example_twice_gives_the_same_directory(project_dir: Path) -> None:
    make_project(project_dir, {})
    first = seamflow(project_dir, "users", "import", str(EXAMPLE))
    assert "imported 4 department(s), 5 position(s) and 6 user(s)" in first.stdout
    before = json.loads(seamflow(project_dir, "users", "list", "--json").stdout)
    seamflow(project_dir, "users", "import", str(EXAMPLE))
    after = json.loads(seamflow(project_dir, "users", "list", "--json").stdout)
    assert before == after and len(after) == 6
    zhangwei = next(u for u in after if u["login"] == "zhangwei")
    assert zhangwei["display_name"] == "张伟" and zhangwei["mobile"] == "+8613812345678"
    assert zhangwei["positions"] == ["finance_director"] and zhangwei["manager_login"] == "wangfang"
    assert next(u for u in after if u["login"] == "sunli")["is_active"] is False


def test_a_bad_file_lists_every_problem_at_its_line_and_stores_nothing(project_dir: Path, tmp_path: Path) -> None:
    make_project(project_dir, {})
    bad = tmp_path / "directory.yaml"
    bad.write_text(
        "users:\n"
        "  - {login: zhangwei, name: 张伟, mobile: 138-1234-567}\n"  # one digit short
        "  - {login: liuyang, name: 刘洋, mobile: 010-62345678}\n"  # a Beijing landline
        "  - {login: wangfang, name: 王芳, title: 总经理}\n"
        "  - {login: zhangwei, name: 张伟}\n"
        "  - {name: 无名}\n",
        encoding="utf-8",
    )
    result = seamflow(project_dir, "users", "import", str(bad), check=False)
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert err.startswith("error [directory.invalid]:")
    assert f"{bad}:2:41 users[0].mobile: got '138-1234-567', not a mainland mobile number" in err
    assert f"{bad}:3:40 users[1].mobile: got '010-62345678', not a mainland mobile number" in err
    assert f"{bad}:4:33 users[2].title: unknown field 'title'" in err
    assert f"{bad}:5:13 users[3].login: login 'zhangwei' appears twice (first at {bad}:2:13" in err
    assert f"{bad}:6:5 users[4]: 'login' is missing" in err
    assert "no users" in seamflow(project_dir, "users", "list").stdout


def test_an_unknown_reference_names_its_line_and_stores_nothing(project_dir: Path, tmp_path: Path) -> None:
    make_project(project_dir, {})
    bad = tmp_path / "directory.yaml"
    bad.write_text(EXAMPLE.read_text("utf-8").replace("manager: chenjing", "manager: chenjin"), encoding="utf-8")
    result = seamflow(project_dir, "users", "import", str(bad), check=False)
    assert result.returncode == 2
    assert "users[5].manager: user 'chenjin' does not exist; expected a user's login" in result.stderr
    assert "no users" in seamflow(project_dir, "users", "list").stdout


def test_tokens_are_printed_once_listed_without_secret_and_revoked(project_dir: Path) -> None:
    make_project(project_dir, {})
    seamflow(project_dir, "users", "import", str(EXAMPLE))
    seamflow(project_dir, "users", "set-password", "zhaolei", "--stdin", stdin=PASSWORD + "\n")
    short = seamflow(project_dir, "users", "set-password", "zhaolei", "--stdin", stdin="short\n", check=False)
    assert short.returncode == 2 and "directory.password_weak" in short.stderr and "short\n" not in short.stderr
    created = seamflow(project_dir, "users", "token", "create", "zhaolei", "--name", "ci deploy", "--expires-in", "90d")
    secret = created.stdout.strip()
    assert secret.startswith("sfp_") and "scopes build,operate,read" in created.stderr
    listed = seamflow(project_dir, "users", "token", "list", "zhaolei").stdout
    assert secret not in listed and "ci deploy" in listed and "last used never" in listed
    token_id = listed.split()[0]
    seamflow(project_dir, "users", "token", "revoke", token_id)
    assert "revoked" in seamflow(project_dir, "users", "token", "list").stdout
    too_much = seamflow(
        project_dir, "users", "token", "create", "zhaolei", "--name", "x", "--scope", "admin", check=False
    )
    assert too_much.returncode == 2 and "directory.scope_not_granted" in too_much.stderr
