"""Merging one change into a canonical record: ownership, conflict policy, echoes, deletes, writes.

Pure functions over `store.SyncState`; `sync.service` runs them inside a store transaction.

- **Echo detection by content hash.** What Seamflow writes to a system is remembered as the
  hash of that system's projection. When the same content comes back as a "change", it is an
  echo and changes nothing — not a timing guess, so it holds however late the echo arrives.
- **Ownership.** A field owned by a system takes only that system's values; another system's
  different value loses (recorded) and that system is written back with the owner's value.
- **Fields nobody owns** follow the sync's policy: the later change wins (`latest`), or a person
  decides (`queue`): the conflict is queued with both values and the record keeps its value.
- **Tombstones.** A record deleted on one side (policy `propagate`) stays as a tombstone, so a
  late change or the next compare does not bring it back.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from seamflow import codec, store
from seamflow.ids import Json
from seamflow.sync.spec import Conflicts, Deletes, Sync

__all__ = ["Change", "Decision", "Outcome", "Write", "merge", "projection", "projection_hash", "written"]

ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class Change:
    """A record as one system reports it now, in canonical field names and normalized values."""

    side: str
    key: str
    values: dict[str, Json]
    at: datetime
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """What happened to one changed field."""

    field: str
    value: Json
    outcome: str
    """`accepted`, `lost` (the record kept its value) or `conflict` (queued for a person)."""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Write:
    """A write the change calls for: create, update or delete the record on a side."""

    side: str
    op: str
    key: str | None
    record: dict[str, Json]
    hash: str
    cause: str = ""
    """What led to the write (the change's side and content hash): part of its idempotency key, so
    writing the same content again for a new reason (a losing edit written back) is a new write,
    while a retry of the same change is the same one."""


@dataclass(slots=True)
class Outcome:
    """The result of merging a change."""

    canonical_id: str
    kind: str
    """`changed`, `unchanged`, `echo` (our own write coming back) or `tombstoned`."""
    decisions: list[Decision] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)

    def as_json(self) -> Json:
        return {
            "canonical_id": self.canonical_id,
            "kind": self.kind,
            "decisions": [dataclasses.asdict(d) for d in self.decisions],
            "writes": [{"side": w.side, "op": w.op, "key": w.key} for w in self.writes],
        }


def projection(sync: Sync, side: str, data: dict[str, Json]) -> dict[str, Json]:
    """The canonical values a side holds (the fields it maps), in canonical names."""
    return {f: data.get(f) for f in sorted(sync.sides[side].fields)}


def projection_hash(values: dict[str, Json]) -> str:
    """A content hash of a side's projection (order-independent)."""
    return hashlib.sha256(codec.dumps({k: values[k] for k in sorted(values)})).hexdigest()[:32]


def merge(sync: Sync, state: store.SyncState, change: Change) -> tuple[store.SyncState, Outcome]:
    """Merge `change` into `state`; return the new state and what to write where."""
    incoming = projection(sync, change.side, change.values)
    incoming_hash = projection_hash(incoming)
    link = state.links.get(change.side)
    seen = store.SyncLink(
        change.side,
        change.key,
        incoming_hash,
        link.written_hash if link else None,
        link.written_at if link else None,
    )
    links = {**state.links, change.side: seen}
    if state.deleted:
        return dataclasses.replace(state, links=links), Outcome(state.canonical_id, "tombstoned")
    if link is not None and link.written_hash == incoming_hash:
        return dataclasses.replace(state, links=links), Outcome(state.canonical_id, "echo")
    data, meta = dict(state.data), dict(state.meta)
    outcome = Outcome(state.canonical_id, "unchanged")
    conflicts: list[tuple[str, Json]] = []
    deleted = False
    values = dict(change.values)
    # read before our last write to this system: it held something else since, so this is concurrent
    stale = link is not None and link.written_at is not None and change.at.isoformat() < link.written_at
    if change.deleted:
        if sync.deletes is Deletes.PROPAGATE:
            deleted = True
            values = {}
        elif sync.deletes is Deletes.DEACTIVATE:
            values = {ACTIVE: False}
        else:
            conflicts.append(("_deleted", {change.side: True, "key": change.key}))
            values = {}
    for name, value in sorted(values.items()):
        if name not in incoming and name != ACTIVE:
            continue
        entry = _meta(meta, name)
        held = dict(entry.get("held") or {})
        if data.get(name) != value:
            decision = _decide(sync, change, name, value, data, entry, held, stale=stale)
            outcome.decisions.append(decision)
            if decision.outcome == "accepted":
                data[name] = value
                entry = {"side": change.side, "at": change.at.isoformat()}
            elif decision.outcome == "conflict":
                conflicts.append((name, {str(entry.get("side", "?")): data.get(name), change.side: value}))
        held[change.side] = value
        meta[name] = {**entry, "held": held}
    changed = deleted or any(d.outcome == "accepted" for d in outcome.decisions)
    outcome.kind = "changed" if changed else "unchanged"
    new = dataclasses.replace(state, data=data, meta=meta, deleted=deleted, links=links, new_conflicts=tuple(conflicts))
    outcome.writes = _writes(sync, new, change, incoming_hash)
    return new, outcome


def _meta(meta: dict[str, Json], name: str) -> dict[str, Any]:
    entry = meta.get(name)
    return dict(entry) if isinstance(entry, dict) else {}


def _decide(
    sync: Sync,
    change: Change,
    name: str,
    value: Json,
    data: dict[str, Json],
    entry: dict[str, Any],
    held: dict[str, Any],
    *,
    stale: bool = False,
) -> Decision:
    if name not in data or data.get(name) is None:
        return Decision(name, value, "accepted", "first value")
    owner = sync.ownership.get(name)
    if owner == change.side:
        return Decision(name, value, "accepted", f"owned by {owner}")
    if owner is not None:
        return Decision(name, value, "lost", f"owned by {owner}")
    previous_side, previous_at = entry.get("side"), entry.get("at")
    if not stale and change.side in held and held[change.side] == data.get(name):
        return Decision(name, value, "accepted", "changed from the current value")
    if not stale and previous_side in (None, change.side):
        return Decision(name, value, "accepted", "same system")
    # the system changed a value it had before the other system's change reached it: both changed it
    if sync.conflicts is Conflicts.QUEUE:
        return Decision(name, value, "conflict", f"changed on {previous_side} and {change.side}")
    if previous_at is None or change.at.isoformat() >= str(previous_at):
        return Decision(name, value, "accepted", f"later than {previous_side}'s change at {previous_at}")
    return Decision(name, value, "lost", f"older than {previous_side}'s change at {previous_at}")


def _writes(sync: Sync, state: store.SyncState, change: Change, incoming_hash: str) -> list[Write]:
    cause = f"{change.side}-{incoming_hash[:16]}"
    writes = []
    for target in sync.targets(change.side):
        wanted = projection(sync, target, state.data)
        wanted_hash = projection_hash(wanted)
        link = state.links.get(target)
        if state.deleted:
            if link is not None and link.key is not None and sync.deletes is Deletes.PROPAGATE:
                writes.append(Write(target, "delete", link.key, wanted, "deleted", cause))
            continue
        if link is None or link.key is None:
            writes.append(Write(target, "create", None, wanted, wanted_hash, cause))
        elif wanted_hash != link.seen_hash:  # what the target holds as far as we know (read or written last)
            writes.append(Write(target, "update", link.key, wanted, wanted_hash, cause))
    source_values = projection(sync, change.side, state.data)
    source_hash = projection_hash(source_values)
    source = state.links.get(change.side)
    read_before_our_write = (
        source is not None
        and source.written_at is not None
        and change.at.isoformat() < source.written_at
        and source_hash != source.written_hash
    )  # we wrote to the source after this record was changed: it may hold our older write now
    if (
        sync.mode.value == "two_way"
        and not state.deleted
        and not change.deleted  # the source removed the record: nothing to write back to it
        and (source_hash != incoming_hash or read_before_our_write)
        and sync.sides[change.side].update is not None
    ):  # the source holds a value that lost (ownership or an older change): write it back
        writes.append(Write(change.side, "update", change.key, source_values, source_hash, cause))
    return writes


def written(state: store.SyncState, write: Write, key: str | None, at: datetime) -> store.SyncState:
    """The state after `write` succeeded at `at`: remember the key (a create), the hash and time written.

    The side now holds what was written, so that is also its last known content (`seen_hash`): a
    later change that wants the side's previous content back must write it again.
    """
    link = state.links.get(write.side)
    new_key = key or (link.key if link else None) or write.key
    links = {**state.links, write.side: store.SyncLink(write.side, new_key, write.hash, write.hash, at.isoformat())}
    meta = dict(state.meta)
    for name, value in write.record.items():  # the side now holds what was written
        entry = _meta(meta, name)
        meta[name] = {**entry, "held": {**(entry.get("held") or {}), write.side: value}}
    return dataclasses.replace(state, links=links, meta=meta, new_conflicts=())
