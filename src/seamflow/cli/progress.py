"""Progress of a long command (`sync load`, later migrations): a bar with rate and ETA on a
terminal, a plain line every few seconds otherwise (logs, CI, pipes, tests).

```
loading customers from erp  ━━━━━━━━━━━╸━━━━━━━━  6,500/10,000  412 records/s  ETA 0:00:08
loading customers from erp: 6,500/10,000 records (65%), 412 records/s, ETA 8s
```
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

import click

__all__ = ["Progress"]

_PLAIN_EVERY_S = 2.0
"""How often a plain line is printed when stdout is not a terminal."""


class Progress:
    """Shows how far a long command is; use as a context manager and call `update`.

    Args:
        label: what is being done, e.g. `loading customers from erp`.
        unit: what is counted, plural (`records`).
        is_terminal: draw a bar (default: whether stdout is a terminal).
    """

    def __init__(self, label: str, unit: str = "records", *, is_terminal: bool | None = None) -> None:
        self._label = label
        self._unit = unit
        self._is_terminal = sys.stdout.isatty() if is_terminal is None else is_terminal
        self._bar: Any = None
        self._task: Any = None
        self._started = time.monotonic()
        self._first_done: int | None = None
        self._last_line = 0.0
        self._done = 0
        self._total: int | None = None

    def __enter__(self) -> Progress:
        if self._is_terminal:
            self._bar = _rich_bar(self._unit)
            self._bar.start()
            self._task = self._bar.add_task(self._label, total=None)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self._first_done is not None:
            click.echo(self.line())

    def update(self, done: int, total: int | None = None) -> None:
        """Record that `done` items of `total` (None: unknown) are through, in all."""
        if self._first_done is None:
            self._first_done = done  # a resumed load: the rate counts only this run's items
            self._started = time.monotonic()
        self._done, self._total = done, total
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total)
            return
        now = time.monotonic()
        if now - self._last_line >= _PLAIN_EVERY_S:
            self._last_line = now
            click.echo(self.line())

    def rate(self) -> float:
        """Items per second in this run."""
        elapsed = time.monotonic() - self._started
        return (self._done - (self._first_done or 0)) / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        """The plain line: done/total, percentage, rate and ETA (what is known of them)."""
        rate = self.rate()
        if self._total:
            share = f"{self._done:,}/{self._total:,} {self._unit} ({100 * self._done // self._total}%)"
        else:
            share = f"{self._done:,} {self._unit}"
        parts = [f"{self._label}: {share}", f"{rate:,.0f} {self._unit}/s"]
        if self._total and rate > 0 and self._done < self._total:
            parts.append(f"ETA {round((self._total - self._done) / rate)}s")
        return ", ".join(parts)


def _rich_bar(unit: str) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} {unit}/s" if speed else f"- {unit}/s")

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        transient=False,
    )
