"""A data steward's corrections: merge two clusters, split records off a cluster, with the reason kept.

Each decision is stored (every later batch run honours it: a merge links the two groups, a split
keeps them apart), lands in the event log (`identity.merged`, `identity.split`) in the same
transaction, and in the audit trail. A merge keeps the older unified ID and remembers the retired
one on the records it moved; a split that takes exactly such records off again gives them their
old ID back, so a merge followed by its split restores the clusters as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seamflow import audit, clock, errors, ids, store
from seamflow.identity.golden import Survivor, golden_record
from seamflow.ids import Json

__all__ = ["Steward", "StewardResult", "member_json"]


def member_json(cluster: store.IdentityCluster, records: Sequence[store.IdentityRecord]) -> dict[str, Json]:
    """A unified member as JSON: its golden record and its source records."""
    return {
        "unified_id": cluster.unified_id,
        "golden": cluster.golden,
        "records": [{"record": f"{r.source}:{r.key}", "trust": r.trust, "data": r.data} for r in records],
    }


@dataclass(frozen=True, slots=True)
class StewardResult:
    """What a merge or split did: the clusters as they are now (the retired one: size 0)."""

    decision: store.IdentityDecision
    clusters: list[store.IdentityCluster]

    def as_json(self) -> dict[str, Json]:
        """The result as JSON."""
        d = self.decision
        return {
            "decision": {
                "id": d.id,
                "kind": d.kind,
                "left": list(d.left),
                "right": list(d.right),
                "reason": d.reason,
                "actor": d.actor,
                "at": d.at.isoformat(),
            },
            "clusters": [{"unified_id": c.unified_id, "size": c.size, "golden": c.golden} for c in self.clusters],
        }


class Steward:
    """Merges and splits the clusters of one entity type.

    Args:
        db: the store (identity state, and the audit trail's entries).
        entity: the entity type, as resolved before (`member`).
        trail: where the decision is recorded for auditors (None: not recorded there, as in some tests).
    """

    def __init__(self, db: store.IdentityStore, entity: str, trail: audit.AuditTrail | None = None) -> None:
        self.db, self.entity, self._trail = db, entity, trail

    async def cluster(self, unified_id: str) -> tuple[store.IdentityCluster, list[store.IdentityRecord]]:
        """A cluster's golden record and records.

        Raises:
            errors.NotFound: no such unified ID (`identity.cluster_unknown`).
        """
        found, records = await self.db.get_identity_cluster(self.entity, unified_id)
        if found is None or not records:
            raise errors.NotFound(
                f"{self.entity} {unified_id} is not a unified ID; expected one that `identity resolve` gave",
                code="identity.cluster_unknown",
            )
        return found, records

    async def merge(
        self, first: str, second: str, reason: str, actor: audit.Actor, origin: audit.Origin | None = None
    ) -> StewardResult:
        """Merge two clusters; the older unified ID stays, the records of the other move to it.

        Raises:
            errors.InvalidInput: the same ID twice, or no reason (`identity.merge_same`, `identity.reason_missing`).
            errors.NotFound: an unknown unified ID.
        """
        _require_reason(reason)
        if first == second:
            raise errors.InvalidInput(f"{first} cannot be merged with itself", code="identity.merge_same")
        kept_id, retired_id = sorted((first, second))
        _, kept = await self.cluster(kept_id)
        _, retired = await self.cluster(retired_id)
        moved = [
            store.IdentityRecord(r.source, r.key, kept_id, r.trust, r.data, r.origin_id or retired_id) for r in retired
        ]
        decision = self._decision("merge", kept, retired, reason, actor)
        settings = await self._settings()
        clusters = [
            store.IdentityCluster(kept_id, _golden([*kept, *moved], settings), len(kept) + len(moved)),
            store.IdentityCluster(retired_id, {}, 0),
        ]
        log = self._log("identity.merged", "Members merged", [kept_id, retired_id], decision)
        await self.db.save_identity_update(
            store.IdentityUpdate(self.entity, records=moved, clusters=clusters, decision=decision, log=log),
            decision.at,
        )
        await self._audit(audit.Action.IDENTITY_MERGED, kept_id, decision, (actor, origin), retired=retired_id)
        return StewardResult(decision, clusters)

    async def split(
        self,
        unified_id: str,
        refs: Sequence[str],
        reason: str,
        actor: audit.Actor,
        origin: audit.Origin | None = None,
    ) -> StewardResult:
        """Take the records `refs` (`source:key`) off cluster `unified_id` into a cluster of their own.

        Raises:
            errors.InvalidInput: no reason, or `refs` empty, not all in the cluster, or all of it
                (`identity.reason_missing`, `identity.split_records`).
            errors.NotFound: an unknown unified ID.
        """
        _require_reason(reason)
        _, records = await self.cluster(unified_id)
        by_ref = {f"{r.source}:{r.key}": r for r in records}
        wanted = list(dict.fromkeys(refs))
        strangers = [ref for ref in wanted if ref not in by_ref]
        if not wanted or strangers or len(wanted) == len(records):
            raise errors.InvalidInput(
                f"cannot split {unified_id} by {', '.join(wanted) or 'no records'}"
                + (f": {', '.join(strangers)} not in it" if strangers else ""),
                code="identity.split_records",
            )
        leaving = [by_ref[ref] for ref in wanted]
        staying = [r for r in records if f"{r.source}:{r.key}" not in set(wanted)]
        restored = await self._restorable(leaving)
        settings = await self._settings()
        moved = [store.IdentityRecord(r.source, r.key, restored or "", r.trust, r.data, None) for r in leaving]
        decision = self._decision("split", staying, leaving, reason, actor)
        clusters = [
            store.IdentityCluster(unified_id, _golden(staying, settings), len(staying)),
            store.IdentityCluster(restored or "", _golden(moved, settings), len(moved)),
        ]
        dropped = [d.id for d in await self.db.list_identity_decisions(self.entity) if _crosses(d, staying, leaving)]
        log = self._log("identity.split", "Members split", [unified_id], decision)
        prefix = None if restored else str(settings.get("id_prefix") or "U")
        taken = await self.db.save_identity_update(
            store.IdentityUpdate(
                self.entity,
                records=moved,
                clusters=clusters,
                decision=decision,
                dropped_decisions=dropped,
                log=log,
                new_id_prefix=prefix,
            ),
            decision.at,
        )
        new_id = restored or taken or ""
        clusters[1] = store.IdentityCluster(new_id, clusters[1].golden, clusters[1].size)
        await self._audit(audit.Action.IDENTITY_SPLIT, unified_id, decision, (actor, origin), new_id=new_id)
        return StewardResult(decision, clusters)

    async def _restorable(self, leaving: Sequence[store.IdentityRecord]) -> str | None:
        origins = {r.origin_id for r in leaving}
        if len(origins) != 1 or None in origins:
            return None
        (origin,) = origins
        assert origin is not None
        current, _ = await self.db.get_identity_cluster(self.entity, origin)
        return origin if current is None else None

    async def _settings(self) -> dict[str, Json]:
        found = await self.db.get_identity_settings(self.entity)
        return dict(found[1]) if found is not None and isinstance(found[1], dict) else {}

    def _decision(
        self,
        kind: str,
        left: Sequence[store.IdentityRecord],
        right: Sequence[store.IdentityRecord],
        reason: str,
        actor: audit.Actor,
    ) -> store.IdentityDecision:
        return store.IdentityDecision(
            ids.new_id("idd"),
            kind,
            [f"{r.source}:{r.key}" for r in left],
            [f"{r.source}:{r.key}" for r in right],
            reason.strip(),
            actor.id,
            clock.now(),
        )

    def _log(
        self, kind: str, activity: str, unified_ids: list[str], decision: store.IdentityDecision
    ) -> list[store.LogRow]:
        objects: Json = {self.entity: list(unified_ids)}
        attributes: Json = {"reason": decision.reason, "actor": decision.actor, "decision": decision.id}
        return [store.LogRow(decision.at, kind, None, None, None, activity, objects, attributes)]

    async def _audit(
        self,
        action: audit.Action,
        unified_id: str,
        decision: store.IdentityDecision,
        who: tuple[audit.Actor, audit.Origin | None],
        **more: Json,
    ) -> None:
        if self._trail is None:
            return
        detail: dict[str, Json] = {"reason": decision.reason, "decision": decision.id, **more}
        actor, origin = who
        if origin is None:
            await self._trail.record(action, f"{self.entity}:{unified_id}", actor=actor, detail=detail)
        else:
            await self._trail.record(action, f"{self.entity}:{unified_id}", actor=actor, origin=origin, detail=detail)


def _require_reason(reason: str) -> None:
    if not reason or not reason.strip():
        raise errors.InvalidInput(
            "a merge or split needs a reason; expected --reason TEXT", code="identity.reason_missing"
        )


def _golden(records: Sequence[store.IdentityRecord], settings: dict[str, Json]) -> dict[str, Json]:
    listed = settings.get("fields")
    fields = [str(f) for f in listed] if isinstance(listed, list) else sorted({k for r in records for k in r.data})
    rules_raw = settings.get("golden")
    rules = {str(k): str(v) for k, v in rules_raw.items()} if isinstance(rules_raw, dict) else {}
    updated = settings.get("updated")
    members = [
        Survivor(f"{r.source}:{r.key}", r.trust, str(r.data.get(str(updated)) or "") if updated else "", r.data)
        for r in records
    ]
    return golden_record(members, rules, fields)


def _crosses(
    decision: store.IdentityDecision,
    staying: Sequence[store.IdentityRecord],
    leaving: Sequence[store.IdentityRecord],
) -> bool:
    """A merge that joined records now split apart is undone by the split."""
    if decision.kind != "merge":
        return False
    refs = set(decision.left) | set(decision.right)
    return any(f"{r.source}:{r.key}" in refs for r in staying) and any(f"{r.source}:{r.key}" in refs for r in leaving)
