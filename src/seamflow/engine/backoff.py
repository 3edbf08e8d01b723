"""Delays between attempts: exponential or fixed, capped, with jitter; a Retry-After wins."""

from __future__ import annotations

import random
from datetime import timedelta

from seamflow.flows import spec

__all__ = ["DEFAULT_RETRY", "retry_delay"]

DEFAULT_RETRY = spec.Retry.model_validate({})
"""Action steps without a `retry:` get 3 attempts, exponential from 1 s up to 5 min."""


def retry_delay(policy: spec.Retry, attempt: int, retry_after: timedelta | None = None) -> timedelta:
    """The delay before attempt `attempt + 1`, after `attempt` failed (attempt counts from 1).

    Equal jitter: half the delay is fixed, the other half random, so retries of many runs
    that failed together spread out without ever retrying immediately.
    """
    if retry_after is not None:
        return max(retry_after, timedelta(0))
    base = policy.initial_delay
    if policy.backoff is spec.Backoff.EXPONENTIAL:
        base = policy.initial_delay * (2 ** min(attempt - 1, 30))
    delay = min(base, policy.max_delay)
    if policy.jitter:
        half = delay / 2
        delay = half + half * random.random()
    return delay
