"""The `seamflow` command as a user runs it (init: test_init.py): validate, list, schema, run, runs, replay, signal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.acceptance.flows import sink_connection
from tests.support.server import make_project
from tests.support.sink import RemoteSink, spawn


def seamflow(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "seamflow", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )
    if check and result.returncode != 0:
        raise AssertionError(f"seamflow {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def test_flow_validate_prints_every_problem_with_its_position_and_exits_2(tmp_path: Path) -> None:
    broken = """id: broken
trigger: {webhook: {path: x}}
steps:
  - id: a
    action: nowhere.post
  - id: b
    transform: "{{ steps.zzz.id }}"
"""
    make_project(tmp_path, {"broken": broken})
    result = seamflow("flow", "validate", "--project", str(tmp_path), check=False)
    assert result.returncode == 2
    assert "broken.yaml:5:13 steps[0].action" in result.stderr
    assert "unknown connection 'nowhere'" in result.stderr
    assert "broken.yaml:7:16 steps[1].transform" in result.stderr
    assert "2 problem(s) found" in result.stderr


def test_flow_schema_is_json_schema_for_flow_files() -> None:
    schema = json.loads(seamflow("flow", "schema").stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"id", "trigger", "steps"} <= set(schema["properties"])


async def test_run_prints_the_run_and_replay_finishes_a_dead_letter(tmp_path: Path) -> None:
    async with spawn() as sink:  # a sink in its own process: the CLI calls below block this one
        await _run_and_replay(tmp_path, sink)


async def _run_and_replay(tmp_path: Path, sink: RemoteSink) -> None:
    flow = """id: manual-post
trigger: {manual: {}}
steps:
  - id: post
    action: sink.post
    with: {path: /m, json: "{{ event.body }}"}
on_error: dead_letter
"""
    make_project(tmp_path, {"manual": flow}, sink_connection(sink.url))
    await sink.set_behaviour(fail_next=-1, fail_status=422, fail_body={"error": "税号格式错误"})
    ran = seamflow(
        "run", "manual-post", "--input", '{"tax_id": "91310000MA1FL8XX3T"}', "--project", str(tmp_path), check=False
    )
    assert ran.returncode == 1, "the run it waited for became a dead letter"
    assert "the run ended as dead_letter" in ran.stderr
    out = ran.stdout
    assert "status   dead_letter" in out
    assert "税号格式错误" in out
    run_id = out.split("run      ")[1].split()[0]
    listed = seamflow("runs", "list", "--status", "dead_letter", "--json", "--project", str(tmp_path)).stdout
    assert [r["run_id"] for r in json.loads(listed)] == [run_id]

    await sink.set_behaviour(fail_next=0)
    replayed = seamflow("runs", "replay", run_id, "--project", str(tmp_path)).stdout
    assert f"{run_id}  completed" in replayed
    shown = json.loads(seamflow("runs", "show", run_id, "--json", "--project", str(tmp_path)).stdout)
    assert [s["status"] for s in shown["steps"]] == ["failed", "completed"]
    assert (await sink.stats())["effects"] == 1


def test_bad_input_json_is_a_clear_usage_error(tmp_path: Path) -> None:
    make_project(tmp_path, {"m": "id: m\ntrigger: {manual: {}}\nsteps:\n  - id: a\n    transform: 1\n"})
    result = seamflow("run", "m", "--input", "{bad json", "--project", str(tmp_path), check=False)
    assert result.returncode == 2
    assert "--input" in result.stderr and "malformed JSON" in result.stderr


def test_runs_show_of_an_unknown_run_says_so(tmp_path: Path) -> None:
    make_project(tmp_path, {"m": "id: m\ntrigger: {manual: {}}\nsteps:\n  - id: a\n    transform: 1\n"})
    seamflow("run", "m", "--project", str(tmp_path))
    result = seamflow("runs", "show", "run_nope", "--project", str(tmp_path), check=False)
    assert result.returncode == 2
    assert "run run_nope does not exist" in result.stderr


def test_a_run_parked_by_the_cli_resumes_on_a_signal_from_the_cli(tmp_path: Path) -> None:
    flow = """id: approval
trigger: {manual: {}}
steps:
  - id: decision
    wait: {signal: approval.decided, key: "{{ event.body.request_no }}", timeout: 1h}
  - id: outcome
    transform: {decision: "{{ steps.decision.payload.decision }}"}
"""
    make_project(tmp_path, {"approval": flow})
    out = seamflow("run", "approval", "--input", '{"request_no": "PR-9"}', "--project", str(tmp_path)).stdout
    assert "status   waiting" in out
    run_id = out.split("run      ")[1].split()[0]
    signalled = seamflow(
        "signal", "approval.decided", "PR-9", "--payload", '{"decision": "approved"}', "--project", str(tmp_path)
    ).stdout
    assert f"{run_id}  completed" in signalled
    shown = json.loads(seamflow("runs", "show", run_id, "--json", "--project", str(tmp_path)).stdout)
    assert shown["steps"][-1]["output"] == {"decision": "approved"}
    nobody = seamflow("signal", "approval.decided", "PR-404", "--project", str(tmp_path)).stdout
    assert "no run waits for this signal yet" in nobody
