"""`seamflow sync check` and the systems it compares: each side is checked first, and one that does not answer is named.

A comparison reads both systems. Rather than a transient error from the first read that
fails, the command says per side which connection at which address cannot be reached, with
a hint, and exits 3.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from seamflow import errors, redact

if TYPE_CHECKING:
    from seamflow import engine, sync

__all__ = ["UNREACHABLE_EXIT", "Unreachable", "check", "reachable_sides"]

UNREACHABLE_EXIT = 3
"""The exit code of `sync check` when a side cannot be reached (1: the sides differ)."""


class Unreachable(Exception):
    """A side of a sync cannot be reached; `report` says which, where, and what to do."""

    exit_code = UNREACHABLE_EXIT

    def __init__(self, report: str) -> None:
        super().__init__(report)
        self.report = report


async def reachable_sides(pool: engine.Pool, spec: sync.Sync) -> set[str]:
    """Check the connection of each side of `spec`; return their names if every one answers.

    Raises:
        Unreachable: a side's connection did not answer (every side is reported).
    """
    names = sorted({side.connection for side in spec.sides.values()})
    answers = dict(zip(names, await asyncio.gather(*(pool.check(name) for name in names)), strict=True))
    if all(answer.is_ok for answer in answers.values()):
        return set(names)
    lines = [f"sync {spec.id}: cannot compare; a side cannot be reached"]
    down = []
    for side_name, side in spec.sides.items():
        answer = answers[side.connection]
        address = pool.address_of(side.connection)
        where = f"connection {side.connection!r}" + (f" at {address}" if address else "")
        if answer.is_ok:
            lines.append(f"  side {side_name}: {where}: answers")
        else:
            message = answer.message.removeprefix(f"connection {side.connection!r}: ")
            lines.append(f"  side {side_name}: {where}: cannot be reached: {redact.mask_text(message)}")
            down.append(side.connection)
    tests = " and ".join(f"`seamflow connections test {name}`" for name in down)
    lines.append(
        f"hint: start {'that system' if len(down) == 1 else 'those systems'} or correct the address in"
        f" connections.yaml; {tests} {'checks' if len(down) == 1 else 'check'} again"
    )
    raise Unreachable("\n".join(lines))


async def check(service: sync.SyncService, sync_id: str, repair: bool) -> sync.CheckReport:
    """`service.check`, with a system that stops answering during the comparison reported as `Unreachable`."""
    try:
        return await service.check(sync_id, repair=repair)
    except errors.Transient as exc:
        raise Unreachable(
            f"sync {sync_id}: stopped; a system did not answer during the comparison: {redact.mask_text(exc.message)}\n"
            f"hint: run `seamflow sync check {sync_id}` again when it is back"
        ) from None
