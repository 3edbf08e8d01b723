"""Reconciliation (`seamflow sync check`): compare both sides record by record, and repair.

Repair feeds each side's current record through `sync.apply` — the owner's side first — so
ownership and the conflict policy decide, exactly as for a change noticed live; a linked record
missing on a side is handled by the delete policy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seamflow import store
from seamflow.ids import Json
from seamflow.sync.reading import SideReader
from seamflow.sync.spec import Sync

if TYPE_CHECKING:
    from seamflow.sync.service import SyncService

__all__ = ["CheckReport", "check_sync"]

_Listed = dict[str, dict[str, dict[str, Any]]]
"""Per side, every record it holds by its key."""


@dataclass(slots=True)
class CheckReport:
    """What `sync check` found: records missing on a side, and fields that differ."""

    sync: str
    compared: int = 0
    missing: list[Json] = field(default_factory=list)
    unlinked: list[Json] = field(default_factory=list)
    differing: list[Json] = field(default_factory=list)
    repaired: int = 0

    def as_json(self) -> Json:
        """The report as the CLI prints it and the API answers it, with `in_sync`."""
        return {
            "sync": self.sync,
            "compared": self.compared,
            "missing": self.missing,
            "unlinked": self.unlinked,
            "differing": self.differing,
            "repaired": self.repaired,
            "in_sync": not (self.missing or self.unlinked or self.differing),
        }


async def check_sync(service: SyncService, reader: SideReader, sync: Sync, *, repair: bool = False) -> CheckReport:
    """Compare both sides of `sync` record by record; with `repair`, converge them by the sync's rules."""
    report = CheckReport(sync.id)
    listed = {name: await reader.records(sync, name) for name in sync.sides}
    states = {s.canonical_id: s for s in await service.db.list_sync_records(sync.id)}
    linked: dict[str, set[str]] = {name: set() for name in sync.sides}
    for state in states.values():
        if not state.deleted:
            _compare(service, sync, state, listed, linked, report)
    for name in sync.sides:
        for key in sorted(set(listed[name]) - linked[name]):
            report.unlinked.append({"side": name, "key": key})
    if repair:
        report.repaired = await _repair(service, sync, report, listed, states)
    return report


def _compare(
    service: SyncService,
    sync: Sync,
    state: store.SyncState,
    listed: _Listed,
    linked: dict[str, set[str]],
    report: CheckReport,
) -> None:
    """Compare one canonical record's linked records on both sides; note what is missing or differs."""
    report.compared += 1
    per_side: dict[str, dict[str, Json]] = {}
    for name in sync.sides:
        link = state.links.get(name)
        if link is None or link.key is None:
            report.missing.append({"canonical_id": state.canonical_id, "side": name, "reason": "never written"})
            continue
        linked[name].add(link.key)
        record = listed[name].get(link.key)
        if record is None:
            report.missing.append({"canonical_id": state.canonical_id, "side": name, "key": link.key})
            continue
        per_side[name] = service.canonical_values(sync, name, record)
    if len(per_side) != 2:
        return
    first, second = sync.sides
    shared = set(sync.sides[first].fields) & set(sync.sides[second].fields)
    for name in sorted(shared):
        if per_side[first].get(name) != per_side[second].get(name):
            report.differing.append(
                {
                    "canonical_id": state.canonical_id,
                    "field": name,
                    first: per_side[first].get(name),
                    second: per_side[second].get(name),
                }
            )


async def _repair(
    service: SyncService,
    sync: Sync,
    report: CheckReport,
    listed: _Listed,
    states: dict[str, store.SyncState],
) -> int:
    repaired = 0
    touched = {str(d["canonical_id"]) for d in report.differing if isinstance(d, dict)}
    order = sorted(sync.sides, key=lambda n: -sum(1 for o in sync.ownership.values() if o == n))
    for canonical_id in sorted(touched):
        state = states[canonical_id]
        for name in order:
            link = state.links.get(name)
            record = listed[name].get(link.key) if link and link.key else None
            if record is not None:
                await _forget_written(service.db, sync, canonical_id, name)
                await service.apply(sync.id, name, record)
        repaired += 1
    for item in report.missing:
        if isinstance(item, dict) and "key" in item:
            side, key = str(item["side"]), str(item["key"])
            await service.apply(sync.id, side, {sync.sides[side].key: key}, deleted=True)
            repaired += 1
    for item in report.unlinked:
        if isinstance(item, dict):
            side = str(item["side"])
            if sync.targets(side):
                await service.apply(sync.id, side, listed[side][str(item["key"])])
                repaired += 1
    return repaired


async def _forget_written(db: store.SyncStore, sync: Sync, canonical_id: str, side: str) -> None:
    """A record changed behind Seamflow's back: what it holds now is not our echo any more."""

    def decide(state: store.SyncState) -> tuple[store.SyncState, None]:
        link = state.links.get(side)
        if link is None:
            return state, None
        links = {**state.links, side: store.SyncLink(side, link.key, None, None, None)}
        return dataclasses.replace(state, links=links, new_conflicts=()), None

    await db.sync_transact(sync.id, side, None, None, decide, canonical_id=canonical_id)
