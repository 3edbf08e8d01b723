"""The unified ID written back to the sources: one connector action call per source record whose
unified ID is new or changed, with an idempotency key made of the entity, record and ID (a call
repeated after a crash is one effect at an idempotent target).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from seamflow import flows
from seamflow.identity.spec import Resolution, WriteBack

if TYPE_CHECKING:
    from seamflow import engine

__all__ = ["write_back"]

_PARALLEL = 8


async def write_back(resolution: Resolution, changes: Mapping[str, str], pool: engine.Pool) -> dict[str, int]:
    """Call each source's `write_back` action for its records in `changes` (`source:key` → unified ID).

    Returns:
        Calls made per source.
    """
    done: dict[str, int] = {}
    for name, source in resolution.sources.items():
        if source.write_back is not None:
            mine = [(ref.partition(":")[2], new) for ref, new in changes.items() if ref.startswith(name + ":")]
            await _write_source(resolution.entity, name, source.write_back, mine, pool)
            done[name] = len(mine)
    return done


async def _write_source(
    entity: str, name: str, target: WriteBack, records: list[tuple[str, str]], pool: engine.Pool
) -> None:
    await pool.open([target.connection])
    connector: Any = pool.get(target.connection).connector
    inputs = (
        flows.Template.compile(
            target.with_, where=f"sources.{name}.write_back.with", extra_names=frozenset({"key", "unified_id"})
        )
        if target.with_ is not None
        else None
    )
    gate = asyncio.Semaphore(_PARALLEL)

    async def call(key: str, unified: str) -> None:
        values = {"key": key, "unified_id": unified}
        params = inputs.render(values) if inputs is not None else values
        async with gate:
            await connector.call(target.action, params, idempotency_key=f"identity:{entity}:{name}:{key}:{unified}")

    async with asyncio.TaskGroup() as group:
        for key, unified in records:
            group.create_task(call(key, unified))
