"""Per-hook rate limits: a token bucket per flow, in this process; over the limit is a 429 with Retry-After.

A flow's `trigger.webhook.rate_limit: {requests: 100, per: 1s}` lets through bursts of up to
`requests` and `requests` per `per` on average. The buckets live in each process (a `serve`
with N processes accepts up to N times the limit): the limit protects this process and the
systems the flow calls from a sender gone wild, it is not a quota.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from seamflow.flows import spec

__all__ = ["HookRateLimits"]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    """`time.monotonic()` when `tokens` was counted."""


class HookRateLimits:
    """The buckets of this process's webhook flows (one per flow id, made on its first request)."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    def take(self, flow_id: str, limit: spec.RateLimitSpec) -> int | None:
        """Take one request from the flow's bucket: None if allowed, else the seconds until one is (≥ 1)."""
        now = time.monotonic()
        rate = limit.requests / max(limit.per.total_seconds(), 1e-6)
        bucket = self._buckets.get(flow_id)
        if bucket is None:
            bucket = self._buckets[flow_id] = _Bucket(float(limit.requests), now)
        bucket.tokens = min(float(limit.requests), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / rate))
