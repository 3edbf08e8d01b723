"""Error texts as `runs show` and `runs dead-letters` show them: escaped once, JSON bodies pretty, long ones cut."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.flows import sink_connection
from tests.acceptance.test_cli import seamflow
from tests.support.server import make_project
from tests.support.sink import spawn

_ORDER = """id: erp-order
trigger: {manual: {}}
steps:
  - id: post
    action: sink.post
    with: {path: /orders, json: "{{ event.body }}"}
on_error: dead_letter
"""
_ANSWER = {"type": "validation_error", "detail": "unknown sku 'SF-NAS-4B' in line 1"}


async def test_an_http_error_body_is_stored_once_escaped_and_shown_pretty(tmp_path: Path) -> None:
    async with spawn() as sink:
        make_project(tmp_path, {"order": _ORDER}, sink_connection(sink.url))
        await sink.set_behaviour(fail_next=-1, fail_status=422, fail_body=_ANSWER)
        ran = seamflow("run", "erp-order", "--input", '{"sku": "SF-NAS-4B"}', "-p", str(tmp_path), check=False)
    run_id = ran.stdout.split("run      ")[1].split()[0]
    shown = json.loads(seamflow("runs", "show", run_id, "--json", "-p", str(tmp_path)).stdout)
    message = shown["error"]["message"]
    assert "\\'" not in message and '\\"' not in message, message
    compact = json.dumps(_ANSWER, ensure_ascii=False, separators=(",", ":"))
    assert compact in message, "the body as the ERP sent it, quotes intact"
    text = seamflow("runs", "show", run_id, "-p", str(tmp_path)).stdout
    assert '"detail": "unknown sku \'SF-NAS-4B\' in line 1"' in text, "pretty-printed, one key per line"
    assert "\\" not in text
    listed = seamflow("runs", "dead-letters", "-p", str(tmp_path)).stdout
    assert listed.splitlines()[0].split() == ["RUN", "FLOW", "STATUS", "CREATED", "ERROR"]
    assert "sku 'SF-NAS-4B'" in listed and "\\" not in listed


def test_a_step_error_keeps_its_trailing_quote(tmp_path: Path) -> None:
    flow = "id: t\ntrigger: {manual: {}}\nsteps:\n  - id: a\n    transform: '{{ event.body.customer.x }}'\n"
    make_project(tmp_path, {"t": flow})
    ran = seamflow("run", "t", "--input", '{"customer": "上海云杉贸易有限公司"}', "-p", str(tmp_path), check=False)
    run_id = ran.stdout.split("run      ")[1].split()[0]
    shown = json.loads(seamflow("runs", "show", run_id, "--json", "-p", str(tmp_path)).stdout)
    assert shown["error"]["message"].endswith("has no attribute 'x'"), shown["error"]


async def test_a_long_error_body_is_cut_with_a_marker_that_says_how_much(tmp_path: Path) -> None:
    async with spawn() as sink:
        make_project(tmp_path, {"order": _ORDER}, sink_connection(sink.url))
        await sink.set_behaviour(fail_next=-1, fail_status=400, fail_body={"lines": ["行" * 50] * 100})
        ran = seamflow("run", "erp-order", "-p", str(tmp_path), check=False)
    assert "… [truncated, 13,263 more bytes] (POST " in ran.stdout, "the start of the ERP's answer, then how much more"
    run_id = ran.stdout.split("run      ")[1].split()[0]
    listed = seamflow("runs", "dead-letters", "-p", str(tmp_path)).stdout
    row = next(line for line in listed.splitlines() if line.startswith(run_id))
    assert "… [truncated, " in row and len(row) < 400
