"""A heartbeat that is merely late is made up for: a clock that jumped past the lease does not drop runs.

A fake-clock jump longer than the lease (or a VM that slept) leaves the last renewal behind
without any failure; the worker renews at once and keeps the run it was just given. A store that
cannot be reached still means the leases are lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from seamflow import clock, store
from seamflow.engine.leases import LeaseOptions, Leases
from seamflow.engine.limits import ClusterSlots
from seamflow.engine.workers import RunQueue

T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    clock.set_fixed(T0)
    yield
    clock.use_real()


def _leases(db: store.SqlStore) -> Leases:
    queue = RunQueue(100)
    slots = ClusterSlots(db, lambda: "unused", LEASE, is_shared=db.is_shared)
    return Leases(db, queue, slots, LeaseOptions(LEASE, timedelta(seconds=1), is_claiming=True))


async def test_a_clock_jump_past_the_lease_renews_instead_of_losing_the_leases(db: store.SqlStore) -> None:
    leases = _leases(db)
    await leases.register("execute")
    assert await leases.is_held()
    clock.set_fixed(T0 + timedelta(days=1))  # no heartbeat ran meanwhile
    assert not leases.is_valid()
    assert await leases.is_held()  # renewed now, in the store
    assert leases.is_valid()
    [me] = [w for w in await db.list_workers() if w.id == leases.worker_id]
    assert me.heartbeat == T0 + timedelta(days=1)


async def test_a_store_that_cannot_be_reached_still_loses_the_leases(db: store.SqlStore) -> None:
    leases = _leases(db)
    await leases.register("execute")
    clock.set_fixed(T0 + timedelta(minutes=5))
    await db.close()
    try:
        assert not await leases.is_held()
    finally:
        await db.open()  # the fixture closes it
