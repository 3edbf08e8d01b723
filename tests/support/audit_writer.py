"""One process of a concurrent-append race on the audit trail.

`python -m tests.support.audit_writer <sqlite path | postgres URL> NAME COUNT GO_FILE`: opens its
own store, waits until GO_FILE exists (so both processes start together), then appends COUNT
entries as actor NAME, one after the other, and exits 0.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from seamflow import audit, store


async def _main(where: str, name: str, count: int, go: Path) -> None:
    db = store.PostgresStore(where) if store.is_postgres_url(where) else store.SqliteStore(Path(where))
    await db.open()
    try:
        deadline = time.monotonic() + 60
        while not go.exists():
            if time.monotonic() > deadline:
                raise SystemExit("GO_FILE never appeared")
            await asyncio.sleep(0.005)
        trail = audit.AuditTrail(db)
        for n in range(count):
            await trail.record(
                audit.Action.RUN_REPLAYED, f"run:{name}-{n}", actor=audit.Actor(name, "cli"), detail={"n": n}
            )
    finally:
        await db.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])))
