"""The pacing of a declared connection (`rate_limit.per_second`, `burst`): when each call may leave.

The clock and the sleep are replaced by a recorded timeline, so the slots are exact and the test
takes no time: `burst` calls leave at once after a quiet moment, then one each 1/per_second.
"""

from __future__ import annotations

import asyncio

import pytest

from seamflow import connectors

pacing = connectors.declared.pacing  # the module under test, through the package's lazy attribute


class Timeline:
    """A monotonic clock that only `sleep` moves forward."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.left_at: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def timeline(monkeypatch: pytest.MonkeyPatch) -> Timeline:
    line = Timeline()
    monkeypatch.setattr(pacing.time, "monotonic", line.monotonic)
    monkeypatch.setattr(pacing.asyncio, "sleep", line.sleep)
    return line


async def _send(pacer: object, line: Timeline, calls: int) -> list[float]:
    sent = []
    for _ in range(calls):
        await pacer.wait()  # type: ignore[attr-defined]
        sent.append(round(line.now - 1000.0, 6))
    return sent


def test_calls_leave_one_each_interval(timeline: Timeline) -> None:
    pacer = pacing.Pacer(per_second=20, burst=1)
    assert asyncio.run(_send(pacer, timeline, 4)) == [0.0, 0.05, 0.1, 0.15]


def test_a_quiet_moment_lets_a_burst_leave_at_once(timeline: Timeline) -> None:
    pacer = pacing.Pacer(per_second=10, burst=3)
    assert asyncio.run(_send(pacer, timeline, 5)) == [0.0, 0.0, 0.0, 0.1, 0.2]
    timeline.now += 10  # quiet for a while: the bucket is full again, but never more than `burst`
    assert asyncio.run(_send(pacer, timeline, 4)) == [10.2, 10.2, 10.2, 10.3]
