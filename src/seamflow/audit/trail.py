"""The audit trail: record an action, verify the chain, export it, prune it keeping it verifiable.

`AuditTrail.record` is the one function every surface calls (the REST API, the CLI; the
approvals code appends `entry_after` in a decision's own transaction); it masks secret values in the detail before the
entry is hashed and stored, so no secret reaches an entry, an export or an API answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime

from seamflow import clock, redact, store
from seamflow.audit.chain import ChainCheck, Verdict, sign_anchor
from seamflow.audit.entry import GENESIS, Action, Actor, Origin, detail_text, entry_hash, entry_json
from seamflow.ids import Json

__all__ = ["PAGE_SIZE", "AuditTrail", "entry_after"]

PAGE_SIZE = 2000
"""Entries read per page by `verify` and `export`, so memory stays flat on a long trail."""

_LOCAL = Origin()
"""Where the CLI acts from."""
_FIELD_LIMIT = 512
"""The longest actor, object, client or user agent kept (a user agent is the client's to choose)."""


class AuditTrail:
    """The audit trail over a store (`store.AuditStore`).

    Args:
        db: the store the entries live in.
        anchor_key: signs the anchors `prune` writes and checks them in `verify` (HMAC-SHA256);
            `seamflow audit` derives it from the project's secret key. None: anchors are
            written unsigned and their signatures are not checked.
    """

    def __init__(self, db: store.AuditStore, *, anchor_key: bytes | None = None) -> None:
        self.db = db
        self._anchor_key = anchor_key

    async def record(
        self,
        action: Action,
        obj: str,
        *,
        actor: Actor,
        origin: Origin = _LOCAL,
        detail: dict[str, Json] | None = None,
    ) -> store.AuditRow:
        """Append one entry, hash-chained to the last one; returns it as stored.

        Args:
            action: what was done.
            obj: on which object, as `kind:id` (`flow:orders`, `user:zhang.wei`, `run:run_…`).
            actor: who did it.
            origin: from where (client address, user agent).
            detail: what else an auditor needs (new roles, a decision); secret values are masked.
        """
        return await self.db.append_audit_entry(entry_after(action, obj, actor=actor, origin=origin, detail=detail))

    async def entries(
        self, *, since: datetime | None = None, after_seq: int = 0, limit: int | None = None
    ) -> list[dict[str, Json]]:
        """Entries as JSON objects, in chain order, from `since` and after `after_seq`, at most `limit`."""
        rows = await self.db.list_audit_entries(since=since, after_seq=after_seq, limit=limit)
        return [entry_json(r) for r in rows]

    async def export(self, *, since: datetime | None = None) -> AsyncIterator[dict[str, Json]]:
        """Every entry from `since`, in chain order, a page at a time (for JSON Lines)."""
        after = 0
        while True:
            rows = await self.db.list_audit_entries(since=since, after_seq=after, limit=PAGE_SIZE)
            for row in rows:
                yield entry_json(row)
            if len(rows) < PAGE_SIZE:
                return
            after = rows[-1].seq

    async def verify(self) -> Verdict:
        """Check the whole chain; the verdict names the first entry deleted, edited or moved."""
        check = ChainCheck(anchor_key=self._anchor_key)
        after = 0
        while True:
            rows = await self.db.list_audit_entries(after_seq=after, limit=PAGE_SIZE)
            check.feed(rows)
            if len(rows) < PAGE_SIZE:
                return check.verdict()
            after = rows[-1].seq

    async def prune(self, before: datetime, *, actor: Actor, origin: Origin = _LOCAL) -> int:
        """Delete entries older than `before`; an `audit.pruned` anchor keeps the hash at the cut.

        The anchor is appended to the chain (so it is itself chained and checked) and records
        the last deleted entry's `seq` and hash, signed with the anchor key when there is one
        (so a forged prune needs the key); `verify` then starts the chain right after it.
        Returns how many entries were deleted.
        """
        at_ms = _now_ms()

        def anchor(cut: store.AuditRow, end: store.ChainEnd) -> store.AuditRow:
            detail: dict[str, Json] = {
                "cut_seq": cut.seq,
                "cut_hash": cut.hash,
                "cut_at": entry_json(cut)["at"],
                "before": before.isoformat(),
            }
            if self._anchor_key is not None:
                detail.update(sign_anchor(self._anchor_key, cut.seq, cut.hash))
            draft = store.AuditRow(
                seq=end.seq + 1,
                at_ms=at_ms,
                actor=_short(actor.id),
                via=_short(actor.via),
                action=str(Action.AUDIT_PRUNED),
                object="audit:trail",
                client=_short(origin.client),
                user_agent=_short(origin.user_agent),
                detail=detail_text(detail),
                prev_hash=end.hash or GENESIS,
                hash="",
            )
            return _sealed(draft)

        return await self.db.prune_audit_entries(before, anchor)


def _sealed(draft: store.AuditRow) -> store.AuditRow:
    return replace(draft, hash=entry_hash(draft))


def _now_ms() -> int:
    return int(clock.now().timestamp() * 1000)


def _short(value: str) -> str:
    masked = redact.mask_text(value)
    return masked if len(masked) <= _FIELD_LIMIT else masked[: _FIELD_LIMIT - 1] + "…"


def entry_after(
    action: Action,
    obj: str,
    *,
    actor: Actor,
    origin: Origin = _LOCAL,
    detail: dict[str, Json] | None = None,
) -> Callable[[store.ChainEnd], store.AuditRow]:
    """The entry `AuditTrail.record` appends, as the function that seals it after the chain's end.

    Give it to `store.RunTx.append_audit_entry` to record an action in the transaction that does
    it (a decision and its entry commit together). Arguments as for `AuditTrail.record`.
    """
    at_ms = _now_ms()
    fields = {
        "actor": _short(actor.id),
        "via": _short(actor.via),
        "object": _short(obj),
        "client": _short(origin.client),
        "user_agent": _short(origin.user_agent),
    }
    text = detail_text(detail or {})

    def link(end: store.ChainEnd) -> store.AuditRow:
        draft = store.AuditRow(
            seq=end.seq + 1,
            at_ms=at_ms,
            action=str(action),
            detail=text,
            prev_hash=end.hash or GENESIS,
            hash="",
            **fields,
        )
        return _sealed(draft)

    return link
