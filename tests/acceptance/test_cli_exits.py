"""How the CLI ends when something is wrong: one clear line, a non-zero exit, no traceback, no `Aborted!`.

Also `seamflow run` on a flow that is not manual, the old top-level command names, and the
log formats of `serve`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.flows import sink_connection
from tests.acceptance.test_cli import seamflow
from tests.support.server import free_port, make_project
from tests.support.sink import spawn
from tests.support.wait import eventually

_HOOK = "id: orders\ntrigger: {webhook: {path: orders}}\nsteps:\n  - id: echo\n    transform: '{{ event.body }}'\n"
_MANUAL = "id: m\ntrigger: {manual: {}}\nsteps:\n  - id: a\n    transform: 1\n"


def _assert_one_clear_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode != 0
    for text in ("Traceback", "Aborted!", "Errno"):
        assert text not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, result.stderr
    for text in expected:
        assert text in errors[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield int(listener.getsockname()[1])


def test_serve_on_a_taken_port_says_so_in_one_line(tmp_path: Path, taken_port: int) -> None:
    make_project(tmp_path, {"m": _MANUAL})
    result = seamflow("serve", "--processes", "1", "--port", str(taken_port), "-p", str(tmp_path), check=False)
    assert result.returncode == 2
    _assert_one_clear_line(result, "[serve.port_in_use]", f"127.0.0.1:{taken_port} is in use")
    assert "Application startup complete" not in result.stderr, "refused before the server starts"


def test_api_on_a_taken_port_says_so_in_one_line(tmp_path: Path, taken_port: int, backend: str) -> None:
    make_project(tmp_path, {"m": _MANUAL})
    result = seamflow("api", "--port", str(taken_port), "-p", str(tmp_path), check=False)
    expected = "[serve.port_in_use]" if backend == "postgres" else "[cli.needs_postgres]"
    _assert_one_clear_line(result, expected)


@pytest.mark.parametrize("processes", ["1", "2"])
def test_ctrl_c_on_serve_ends_cleanly_without_aborted(tmp_path: Path, processes: str) -> None:
    make_project(tmp_path, {"m": _MANUAL})
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "seamflow", "serve", "--processes", processes, "--port", str(port), "-p", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        _wait_healthy(port, process)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches every process of the group
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "Aborted!" not in stderr and "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "starting it again" not in stderr, "a process stopped by Ctrl-C is not restarted"
    assert stderr.count("serve stopped (Ctrl-C)") == 1 and stderr.rstrip().endswith("serve stopped (Ctrl-C)")


def _wait_healthy(port: int, process: subprocess.Popen[str]) -> None:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)  # polling a bounded condition, not waiting for time to pass
    raise AssertionError("serve did not become healthy in 20 s")


def test_runs_list_outside_a_project_says_it_is_not_in_one(tmp_path: Path) -> None:
    elsewhere = tmp_path / "报表" / "2026"
    elsewhere.mkdir(parents=True)
    result = seamflow("runs", "list", cwd=elsewhere, check=False)
    assert result.returncode == 2
    _assert_one_clear_line(result, "[cli.no_project]", "not in a Seamflow project", str(elsewhere), "seamflow init")
    assert "seamflow serve" not in result.stderr


@pytest.mark.parametrize(
    "command",
    [("flow", "list"), ("run", "hello-orders"), ("workers",), ("db", "upgrade"), ("secrets", "list"), ("sync", "list")],
    ids=" ".join,
)
def test_no_command_works_outside_a_project_or_leaves_a_database_there(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    result = seamflow(*command, cwd=tmp_path, check=False)
    _assert_one_clear_line(result, "[cli.no_project]", "not in a Seamflow project")
    assert list(tmp_path.iterdir()) == [], "nothing was created in a folder that is not a project"


def test_a_project_is_found_from_a_folder_inside_it(tmp_path: Path) -> None:
    make_project(tmp_path, {"m": _MANUAL})
    seamflow("run", "m", "-p", str(tmp_path))
    (tmp_path / "flows" / "drafts").mkdir()
    listed = seamflow("runs", "list", cwd=tmp_path / "flows" / "drafts").stdout
    assert listed.splitlines()[0].split() == ["RUN", "FLOW", "STATUS", "CREATED"]
    assert " m " in listed.splitlines()[1]


def test_a_bad_database_url_is_one_clear_line(tmp_path: Path) -> None:
    make_project(tmp_path, {"m": _MANUAL})
    result = seamflow("runs", "list", "--database", "mysql://root@127.0.0.1/erp", "-p", str(tmp_path), check=False)
    assert result.returncode == 2
    _assert_one_clear_line(result, "[cli.bad_database]", "--database", "mysql://", "expected a postgresql:// URL")
    env = {**os.environ, "SEAMFLOW_DATABASE_URL": "mongodb://127.0.0.1/seamflow"}
    serve = ["serve", "--processes", "1", "--port", str(free_port()), "-p", str(tmp_path)]
    served = subprocess.run(
        [sys.executable, "-m", "seamflow", *serve],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    _assert_one_clear_line(served, "[cli.bad_database]", "SEAMFLOW_DATABASE_URL", "mongodb://")


def test_an_unreachable_postgresql_is_one_clear_line(tmp_path: Path) -> None:
    make_project(tmp_path, {"m": _MANUAL})
    url = f"postgresql://root@127.0.0.1:{free_port()}/seamflow"
    result = seamflow("runs", "list", "--database", url, "-p", str(tmp_path), check=False)
    _assert_one_clear_line(result, "[store.unreachable]", "cannot connect to PostgreSQL")


def test_run_refuses_a_webhook_flow_as_the_api_does_and_starts_it_with_as_webhook(tmp_path: Path) -> None:
    make_project(tmp_path, {"orders": _HOOK})
    refused = seamflow("run", "orders", "--input", '{"order_no": "SO-2026-0001"}', "-p", str(tmp_path), check=False)
    assert refused.returncode == 2
    _assert_one_clear_line(refused, "[conflict]", "has a webhook trigger; expected a manual trigger", "--as-webhook")
    assert seamflow("runs", "list", "--json", "-p", str(tmp_path), check=False).stdout.strip() in ("", "[]")
    started = seamflow(
        "run", "orders", "--as-webhook", "--input", '{"order_no": "SO-2026-0001"}', "-p", str(tmp_path)
    ).stdout
    assert "status   completed" in started
    manual = seamflow("run", "m", "--as-webhook", "-p", str(make_project(tmp_path / "m", {"m": _MANUAL})), check=False)
    _assert_one_clear_line(manual, "[cli.not_webhook]")


def test_old_top_level_names_still_work_hidden_and_say_the_new_one(tmp_path: Path) -> None:
    make_project(tmp_path, {"m": _MANUAL})
    seamflow("run", "m", "-p", str(tmp_path))
    old = seamflow("dead-letters", "--json", "-p", str(tmp_path))
    assert json.loads(old.stdout) == []
    assert "`seamflow dead-letters` is now `seamflow runs dead-letters`" in old.stderr
    replay = seamflow("replay", "-p", str(tmp_path), check=False)
    assert replay.returncode == 2 and "give a RUN_ID or --all" in replay.stderr
    listed = [line.split()[0] for line in seamflow("--help").stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert "dead-letters" not in listed and "replay" not in listed and "runs" in listed
    assert "dead-letters" in seamflow("runs", "--help").stdout


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_serve_logs_json_or_text_and_never_colour_codes_in_json(tmp_path: Path, log_format: str) -> None:
    make_project(tmp_path, {"m": _MANUAL})
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "SEAMFLOW_LOG_FORMAT": log_format, "COLUMNS": "200"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "seamflow", "serve", "--processes", "1", "--port", str(port), "-p", str(tmp_path)],
            stdout=out,
            stderr=out,
            env=env,
        )
    try:

        async def started() -> None:
            assert "Application startup complete" in log.read_text()

        await eventually(started, timeout=20)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    text = log.read_text()
    assert "\x1b[" not in text and "color_message" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    if log_format == "json":
        records = [json.loads(line) for line in lines[:-1]]  # the last: "serve stopped (Ctrl-C)"
        assert any(r["logger"] == "uvicorn.error" and r["message"] == "Application startup complete." for r in records)
    else:
        assert not any(line.startswith("{") for line in lines)
        startup = next(line for line in lines if "Application startup complete" in line)
        assert "INFO" in startup


async def test_ctrl_c_while_run_waits_ends_with_one_line_and_130(tmp_path: Path) -> None:
    flow = "id: slow\ntrigger: {manual: {}}\nsteps:\n  - id: post\n    action: sink.post\n    with: {path: /slow}\n"
    async with spawn() as sink:
        make_project(tmp_path, {"slow": flow}, sink_connection(sink.url))
        await sink.set_behaviour(delay_ms=2000)
        process = subprocess.Popen(
            [sys.executable, "-m", "seamflow", "run", "slow", "-p", str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal
        )

        async def posting() -> None:
            assert (await sink.stats())["requests"] >= 1

        await eventually(posting, timeout=20)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Aborted!" not in stderr and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "stopped (Ctrl-C)"
