"""Browser tests: a real `seamflow serve` subprocess and Debian's Chromium driven by Playwright.

Chromium comes from the OS (`apt-get install chromium`, done by `.ci/run`); Playwright never
downloads a browser here. Without /usr/bin/chromium or the playwright package the tests are
skipped with the reason printed. One browser serves the whole module; each user has one context
(its own cookies) and one page, reused from test to test.

Screenshots of every main page, in English and Chinese, are written to `artifacts/screenshots/`
at the top of the repository (git-ignored); the path is printed at the end of the session.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
CHROMIUM = Path(os.environ.get("SEAMFLOW_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def chromium_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}; install Debian's chromium (apt-get install chromium, as .ci/run does)"
    return None


class LoopThread:
    """An asyncio loop in a thread, for the async test helpers (server, sink) beside sync Playwright."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="browser-tests-loop")
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T] | Awaitable[T], timeout_s: float = 60) -> T:
        async def wrap() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrap(), self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    running = LoopThread()
    yield running
    running.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = chromium_unavailable()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox refuses to run as root
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screenshots() -> Iterator[Path]:
    # Not emptied first: with two test processes, the second to start would delete what the first
    # had taken. Each test writes its own names, so a run replaces the screenshots it takes.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield SCREENSHOTS
    print(f"\nscreenshots of the console: {SCREENSHOTS}")
