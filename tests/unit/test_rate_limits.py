"""Per-hook token buckets: bursts up to the limit, refills over time, a Retry-After of at least one second."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from seamflow.api.rate_limits import HookRateLimits
from seamflow.flows import spec


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeMonotonic:
    fake = FakeMonotonic()
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


def test_a_burst_up_to_the_limit_passes_then_the_next_waits(clock: FakeMonotonic) -> None:
    rates = HookRateLimits()
    limit = spec.RateLimitSpec(requests=3, per=timedelta(minutes=1))
    assert [rates.take("shop-orders", limit) for _ in range(3)] == [None, None, None]
    assert rates.take("shop-orders", limit) == 20, "one request per 20 s comes back"
    clock.now += 20
    assert rates.take("shop-orders", limit) is None
    assert rates.take("bank-payments", limit) is None, "each flow has its own bucket"


def test_retry_after_is_never_below_one_second(clock: FakeMonotonic) -> None:
    rates = HookRateLimits()
    limit = spec.RateLimitSpec(requests=100, per=timedelta(seconds=1))
    for _ in range(100):
        assert rates.take("pos-sales", limit) is None
    assert rates.take("pos-sales", limit) == 1
    clock.now += 0.5
    assert [rates.take("pos-sales", limit) for _ in range(50)] == [None] * 50, "half a second refills half"
