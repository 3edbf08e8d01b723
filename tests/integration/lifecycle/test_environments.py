"""Environments: `SEAMFLOW_ENV=staging` selects `environments/staging/connections.yaml` and `.env` (its own
connections and secrets) over the project's; an unknown environment is refused with the known ones."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from seamflow import codec
from tests.support.server import make_project
from tests.support.sink import Sink

FLOW = """id: push-order
trigger: {manual: {}}
steps:
  - id: post
    action: erp.post
    with:
      path: /orders
      json: {order_no: "{{ event.body.order_no }}", region: "{{ env.REGION }}"}
      headers: {X-Erp-Token: "{{ secrets.erp_token }}"}
"""


async def _run(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """In a thread: the in-process sink must keep answering while the command runs."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("SEAMFLOW_")}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "seamflow", "run", "push-order", "--input", '{"order_no": "SO-1"}', "--timeout", "20"],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=root,
        env={**keep, **env, "SEAMFLOW_DATABASE": str(root / "state.db")},
    )


async def test_the_selected_environment_brings_its_own_connections_and_secrets(tmp_path: Path, sink: Sink) -> None:
    root = make_project(tmp_path / "shop", {"push": FLOW}, "erp:\n  connector: http\n  base_url: http://127.0.0.1:9\n")
    (root / ".env").write_text("SEAMFLOW_SECRET_ERP_TOKEN=dev-token-0001\nSEAMFLOW_VAR_REGION=dev\n", "utf-8")
    staging = root / "environments" / "staging"
    staging.mkdir(parents=True)
    # the environment's own connection says what it may reach (the outbound guard refuses loopback otherwise)
    erp = f"erp:\n  connector: http\n  base_url: {sink.url}\n  outbound_allow: ['127.0.0.1']\n"
    (staging / "connections.yaml").write_text(erp, "utf-8")
    (staging / ".env").write_text("SEAMFLOW_SECRET_ERP_TOKEN=staging-token-0002\nSEAMFLOW_VAR_REGION=华东\n", "utf-8")

    done = await _run(root, {"SEAMFLOW_ENV": "staging"})
    assert done.returncode == 0, done.stdout + done.stderr
    [request] = sink.requests
    assert codec.loads(request.body) == {"order_no": "SO-1", "region": "华东"}
    assert request.headers["x-erp-token"] == "staging-token-0002"

    unknown = await _run(root, {"SEAMFLOW_ENV": "prod"})
    assert unknown.returncode == 2
    assert "SEAMFLOW_ENV is 'prod'" in unknown.stderr and "expected one of: staging" in unknown.stderr
    assert len(sink.requests) == 1
