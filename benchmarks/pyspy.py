"""Profiling the server under load with py-spy: a flamegraph, the collapsed stacks, the top functions."""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from processes import ROOT, VENV_BIN, Proc, run_wrk


def profile_under_load(proc: Proc, seconds: float, concurrency: int, out: Path, stamp: str) -> dict[str, Any]:
    """Run py-spy on the server under wrk load: a flamegraph (svg) and collapsed stacks (txt)."""
    spy = VENV_BIN / "py-spy"
    if not spy.exists():
        return {"skipped": "py-spy is not installed: .venv/bin/pip install py-spy"}
    out.mkdir(parents=True, exist_ok=True)
    files = {"flamegraph": out / f"profile-{proc.name}-c{concurrency}-{stamp}.svg",
             "raw": out / f"profile-{proc.name}-c{concurrency}-{stamp}.txt"}  # fmt: skip
    load = threading.Thread(
        target=run_wrk,
        args=(proc.url, concurrency, 2 * seconds + 4, f"{proc.name}-prof-{secrets.token_hex(3)}"),
    )
    load.start()
    time.sleep(2)
    for fmt, path in files.items():
        subprocess.run(
            [spy, "record", "-p", str(proc.pid), "-d", f"{seconds:g}", "-r", "250", "--threads", "--nonblocking",
             "-f", fmt, "-o", path],
            check=True, capture_output=True,
        )  # fmt: skip
    load.join()
    return {
        "concurrency": concurrency,
        "seconds": seconds,
        **{k: os.path.relpath(v, ROOT) for k, v in files.items()},
        "summary": summarize_profile(files["raw"]),
    }


def summarize_profile(raw: Path, top: int = 25) -> dict[str, Any]:
    """Per-thread sample shares and the top functions, self and inclusive, from py-spy's raw stacks.

    Percentages are of all samples of the thread (py-spy skips idle stacks, so they are
    shares of the thread's busy time; the main thread runs the event loop).
    """
    threads: dict[str, int] = {}
    own: dict[tuple[str, str], int] = {}
    within: dict[tuple[str, str], int] = {}
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        count = int(count_text)
        threads[thread] = threads.get(thread, 0) + count
        names = [f.rsplit(":", 1)[0] + ")" if "(" in f else f for f in frames[1:]]
        if names:
            own[thread, names[-1]] = own.get((thread, names[-1]), 0) + count
        for name in set(names):
            within[thread, name] = within.get((thread, name), 0) + count

    def ranked(table: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
        rows = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        return [{"thread": t, "function": f, "percent": round(100 * n / threads[t], 1)} for (t, f), n in rows]

    total = sum(threads.values()) or 1
    return {
        "samples": total,
        "thread_percent": {t: round(100 * n / total, 1) for t, n in threads.items()},
        "self": ranked(own),
        "inclusive": ranked(within),
    }
