"""The time source of the engine: real time, or a controllable clock for tests.

Engine code reads time from `clock.now()`, never from `datetime.now()`. A test that runs
`seamflow serve` as a subprocess can set `SEAMFLOW_FAKE_CLOCK=/path/file`; the file holds
an ISO-8601 instant, and the process's time is that instant plus the real time elapsed
since the file last changed, so tests move time by rewriting the file.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["now", "set_fixed", "use_real"]

_fixed: datetime | None = None
_file = os.environ.get("SEAMFLOW_FAKE_CLOCK")
_file_cache: tuple[float, datetime, float] | None = None  # (mtime, instant, monotonic at read)


def now() -> datetime:
    """Return the current instant as an aware UTC datetime."""
    if _fixed is not None:
        return _fixed
    if _file:
        return _from_file(Path(_file))
    return datetime.now(UTC)


def set_fixed(instant: datetime) -> None:
    """Freeze time at `instant` (tests only)."""
    global _fixed
    _fixed = instant.astimezone(UTC)


def use_real() -> None:
    """Go back to real time."""
    global _fixed
    _fixed = None


def _from_file(path: Path) -> datetime:
    global _file_cache
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return datetime.now(UTC)
    if _file_cache is None or _file_cache[0] != mtime:
        text = path.read_text().strip()
        _file_cache = (mtime, datetime.fromisoformat(text).astimezone(UTC), time.monotonic())
    _, instant, read_at = _file_cache
    return instant + timedelta(seconds=time.monotonic() - read_at)
