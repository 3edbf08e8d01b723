"""Reloading a running process's flows: read the project's flow files again, keep what is valid, swap.

A reload never leaves a process without a flow it served: a file with a problem is reported
(file:line:column) and the version of its flows loaded before keeps serving. The new versions
are stored before the swap, so any process can continue a run that starts with them; runs
that started with an older version finish with that version (`Catalog.at_version`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from seamflow import clock, errors
from seamflow.engine.catalog import CatalogChange, FlowSource
from seamflow.engine.runtime import Engine
from seamflow.ids import Json

__all__ = ["FlowReader", "Reload", "Reloader"]

log = logging.getLogger("seamflow.reload")

_GROUP_BOUND = timedelta(seconds=10)
"""How long a save waits for the rest of its serve group (a process killed mid-way counts until its lease ends)."""
_GROUP_POLL_S = 0.02

FlowReader = Callable[[], tuple[dict[str, FlowSource], list[errors.Problem]]]
"""Reads the project's flows: the valid ones by id, and the problems of the others (blocking I/O)."""


@dataclass(frozen=True, slots=True)
class Reload:
    """What one reload did."""

    change: CatalogChange
    invalid: list[errors.Problem] = field(default_factory=list)
    """Problems of the files that were not loaded."""
    kept: list[str] = field(default_factory=list)
    """Flows whose file has a problem: their earlier version keeps serving."""

    def as_json(self) -> dict[str, Json]:
        """The answer of `POST /api/v1/flows/reload`."""
        return {
            "added": list(self.change.added),
            "changed": list(self.change.changed),
            "removed": list(self.change.removed),
            "kept": list(self.kept),
            "invalid": [_problem_json(p) for p in self.invalid],
        }


def _problem_json(problem: errors.Problem) -> dict[str, Json]:
    where = problem.where
    return {
        "file": where.file,
        "line": where.line,
        "column": where.column,
        "path": where.path,
        "problem": problem.problem,
        "expected": problem.expected,
        "message": str(problem),
    }


class Reloader:
    """Reloads an engine's flows from the project, one reload at a time.

    Args:
        eng: the engine whose catalog is swapped.
        read: reads the project's flows (runs in a thread: it reads and parses files).
        after: called after each reload asked with `tell_group` (the default), so the other
            processes of a `serve` group reload too; a reload the group asked for passes False.
    """

    def __init__(self, eng: Engine, read: FlowReader, *, after: Callable[[], None] | None = None) -> None:
        self._engine = eng
        self._read = read
        self._after = after
        self._lock = asyncio.Lock()

    def tell_group_with(self, after: Callable[[], None]) -> None:
        """Call `after` after each reload with `tell_group` (set by a process of a `serve` group)."""
        self._after = after

    async def reload(self, *, cause: str, tell_group: bool = True, by: str | None = None) -> Reload:
        """Read the flows and serve the valid ones from now on; report the others.

        Args:
            cause: why (`watch`, `api`, `signal`), for the log and the flows' deployment rows.
            tell_group: also ask the other processes of the serve group to reload.
            by: who asked (a login), for the deployment rows; default: the cause.
        """
        async with self._lock:
            sources, problems = await asyncio.to_thread(self._read)
            kept = _keep_old_versions(self._engine, sources, problems)
            change = await self._engine.reload_flows(sources, how=cause, by=by or cause)
        result = Reload(change, problems, kept)
        _log(result, cause)
        if tell_group and self._after is not None:
            self._after()
        return result

    async def wait_for_group(self, bound: timedelta = _GROUP_BOUND) -> list[str]:
        """Wait until every live process of this serve group serves the flows this one serves now.

        A reload reaches a group's other processes by SIGHUP, later than its own answer; a caller
        that answers a person (the console's save) waits here first, so the person's next request
        finds the flow whichever process it reaches. Each process reports its `Catalog.digest` to
        the store after loading flows; the group is the live processes on this host.

        Returns:
            The processes still serving other flows when `bound` ran out; [] when all caught up,
            or when this process is in no group.
        """
        if self._after is None:
            return []
        eng, host = self._engine, socket.gethostname()
        deadline = asyncio.get_running_loop().time() + bound.total_seconds()
        while True:
            digests = await eng.db.list_catalogs(host, clock.now() - eng.options.lease)
            want = eng.catalog.digest  # read again each time: another reload may have come meanwhile
            behind = sorted(worker for worker, digest in digests.items() if digest != want)
            if not behind:
                return []
            if asyncio.get_running_loop().time() >= deadline:
                log.warning("processes of the serve group still serve other flows: %s", ", ".join(behind))
                return behind
            await asyncio.sleep(_GROUP_POLL_S)


def _keep_old_versions(eng: Engine, sources: dict[str, FlowSource], problems: list[errors.Problem]) -> list[str]:
    """Add to `sources` the served flows whose file has a problem now; return their ids."""
    invalid_files = {p.where.file for p in problems if p.where.file}
    taken_paths = {s.spec.trigger.hook_path for s in sources.values() if s.spec.trigger.hook_path is not None}
    kept = []
    for flow_id, flow in eng.catalog.current.items():
        # a problem of the folder itself (gone while a checkout runs) covers every file in it
        has_problem = any(flow.path == f or flow.path.startswith(f.rstrip("/") + "/") for f in invalid_files)
        if not has_problem or flow_id in sources:
            continue
        hook = flow.spec.trigger.hook_path
        if hook is not None and hook in taken_paths:  # a valid file took its path over
            continue
        sources[flow_id] = FlowSource(spec=flow.spec, version=flow.version, source=flow.source, path=flow.path)
        kept.append(flow_id)
    return sorted(kept)


def _log(result: Reload, cause: str) -> None:
    for problem in result.invalid:
        log.warning("flow file not loaded: %s", problem, extra={"cause": cause})
    change = result.change
    if not change.is_empty:
        log.info(
            "flows reloaded: %d added, %d changed, %d removed",
            len(change.added),
            len(change.changed),
            len(change.removed),
            extra={"cause": cause, "added": change.added, "changed": change.changed, "removed": change.removed},
        )
    if result.kept:
        log.warning("flows kept at their earlier version: %s", ", ".join(result.kept), extra={"cause": cause})
