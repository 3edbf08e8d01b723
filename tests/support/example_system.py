"""An example system of examples/ (the ERP, the finance system) as its own process, once it answers /healthz."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.wait import eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def start_example_system(name: str, folder: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start `python -m seamflow_<name>` from `examples/<name>` on `folder/<name>.db`; return it once healthy."""
    log_path = folder / f"{name}.log"
    command = [sys.executable, "-m", f"seamflow_{name}", "--db", str(folder / f"{name}.db"), "--port", str(port)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*command, "--log-level", "warning"],
            stdout=log,
            stderr=log,
            env={**os.environ, **env, "PYTHONPATH": str(EXAMPLES / name)},
        )

    async def healthy() -> None:
        assert process.poll() is None, log_path.read_text()
        async with httpx.AsyncClient(timeout=1) as client:
            try:
                answer = await client.get(f"http://127.0.0.1:{port}/healthz")
            except httpx.HTTPError as exc:
                raise AssertionError(f"{name} is not listening yet: {exc}") from exc
            assert answer.status_code == 200

    try:
        await eventually(healthy, timeout=60)  # a loaded machine starts Python slowly
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process
