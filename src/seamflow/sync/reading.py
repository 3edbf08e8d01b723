"""Reading every record of one side of a sync through its `list` (and `count`) actions.

`sync check` compares what both sides hold now, and `sync load` brings a side's records through
the sync in chunks; both read the side the same way, through the side's connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from seamflow import connectors, engine, errors, flows
from seamflow.ids import Json
from seamflow.sync.spec import Sync

__all__ = ["SideReader"]


class SideReader:
    """Reads a side's records with the project's template context (env, secrets)."""

    def __init__(self, pool: engine.Pool, context: Mapping[str, Any]) -> None:
        self._pool = pool
        self._context = dict(context)

    async def records(self, sync: Sync, name: str) -> dict[str, dict[str, Any]]:
        """Every record of side `name` by its key, read in one call of the side's `list` action.

        Raises:
            errors.InvalidInput: `sync.invalid` — the side has no `list`.
            errors.Permanent: `sync.invalid` — `list.items` does not name a list in the result.
        """
        side = sync.sides[name]
        if side.list is None:
            raise errors.InvalidInput(
                f"sync {sync.id}: sides.{name} has no `list`; `sync check` needs it to read every record",
                code="sync.invalid",
            )
        params = self._render(side.list.with_, f"syncs/{sync.id}.sides.{name}.list")
        result: Any = await self._pool.get(side.connection).connector.call(side.list.action, params, idempotency_key="")
        for part in side.list.items.split("."):
            result = result.get(part) if isinstance(result, dict) else None
        if not isinstance(result, list):
            raise errors.Permanent(
                f"sync {sync.id}: sides.{name}.list.items {side.list.items!r} is not a list in the result",
                code="sync.invalid",
            )
        return {str(r[side.key]): r for r in result if isinstance(r, dict) and r.get(side.key) not in (None, "")}

    async def chunks(self, sync: Sync, name: str, position: Json, chunk: int) -> AsyncIterator[tuple[list[Json], Json]]:
        """The side's records `chunk` at a time from `position`, each with the position after it.

        A connector that streams (`connectors.Streams`) is read as a stream; otherwise the side is
        read in one call and cut into chunks (the position is then an offset).
        """
        side = sync.sides[name]
        assert side.list is not None
        start = position.get("after") if isinstance(position, dict) else None
        params = self._render(side.list.with_, f"syncs/{sync.id}.sides.{name}.list")
        connector = self._pool.get(side.connection).connector
        if isinstance(connector, connectors.Streams):
            async for piece in connector.stream(side.list.action, params, start=start, chunk_rows=chunk):
                yield list(piece.rows), {"after": piece.position}
            return
        records = list((await self.records(sync, name)).values())  # no stream: one read, then chunks
        first = int(start) if isinstance(start, int) else 0
        for offset in range(first, len(records), chunk):
            yield list(records[offset : offset + chunk]), {"after": offset + chunk}

    async def count(self, sync: Sync, name: str) -> int | None:
        """How many records the side holds, by its `list.count` action; None without one."""
        side = sync.sides[name]
        if side.list is None or side.list.count is None:
            return None
        spec = side.list.count
        params = self._render(spec.with_, f"syncs/{sync.id}.sides.{name}.list.count")
        result: Any = await self._pool.get(side.connection).connector.call(spec.action, params, idempotency_key="")
        for part in spec.value.split("."):
            if isinstance(result, list) and part.isdigit() and int(part) < len(result):
                result = result[int(part)]
            else:
                result = result.get(part) if isinstance(result, dict) else None
        return int(result) if isinstance(result, int | str) and str(result).isdigit() else None

    def _render(self, value: Json, where: str) -> Json:
        return flows.Template.compile(value, where=where).render(self._context)
