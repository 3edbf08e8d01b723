"""Running the example CRM as its users do: `python -m seamflow_crm` in a subprocess, with its own SQLite file."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

CRM_ROOT = Path(__file__).resolve().parents[2] / "examples" / "crm"
if str(CRM_ROOT) not in sys.path:
    sys.path.insert(0, str(CRM_ROOT))  # for the unit tests of seamflow_crm's own functions

TOKEN = "test-token-3f9a"
SECRET = "test-webhook-secret-7c21"


@dataclass(frozen=True)
class RunningCrm:
    """A CRM process: where it listens and the database it writes."""

    url: str
    db_path: Path
    log_path: Path

    def client(self, **headers: str) -> httpx.AsyncClient:
        """An API client with the bearer token."""
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}", **headers}, timeout=10)


@contextlib.contextmanager
def run_crm(folder: Path, *, env: dict[str, str] | None = None) -> Iterator[RunningCrm]:
    """Start `python -m seamflow_crm --port 0` on `folder/crm.db`; stop it when the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    db_path, log_path = folder / "crm.db", folder / f"crm-{time.monotonic_ns()}.log"
    command = [
        sys.executable, "-m", "seamflow_crm", "--port", "0", "--db", str(db_path), "--token", TOKEN,
        "--webhook-secret", SECRET, "--retry-initial-s", "0.1", "--retry-max-s", "0.5", "--log-level", "warning",
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(CRM_ROOT), **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
    try:
        url = _wait_for_url(process, log_path)
        yield RunningCrm(url, db_path, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_url(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the CRM exited with {process.returncode}:\n{log_path.read_text()}")
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("CRM_URL "):
                url = line.split()[1]
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        return url
        time.sleep(0.05)
    raise RuntimeError(f"the CRM did not start within 30 s:\n{log_path.read_text()}")
