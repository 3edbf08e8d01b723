"""Checking the audit chain: the first entry that was deleted, edited or moved, named.

Each entry must hash to its stored `hash`, carry the previous entry's hash as `prev_hash` and
follow it in `seq` without a gap. The chain starts either at entry 1 (whose `prev_hash` is
`GENESIS`) or, after pruning, right after the cut that the newest `audit.pruned` anchor records.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

from seamflow import store
from seamflow.audit.entry import GENESIS, Action, entry_hash

__all__ = ["ChainCheck", "Verdict", "anchor_key_id", "sign_anchor"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of `audit verify`.

    Attributes:
        is_intact: every entry checked out.
        checked: how many entries were read.
        first_broken: the `seq` of the first entry that does not check out (None if intact).
        problem: what is wrong with it, in words.
        head_seq: the last entry's `seq` (0 for an empty trail); keep it elsewhere to notice a
            deletion at the end, which no chain can show by itself.
        head_hash: the last entry's hash.
    """

    is_intact: bool
    checked: int
    first_broken: int | None = None
    problem: str | None = None
    head_seq: int = 0
    head_hash: str | None = None
    note: str | None = None
    """What was not checked, and why (an anchor signed with another key, or no key given)."""


def anchor_key_id(key: bytes) -> str:
    """A short public name of an anchor key, so a verifier can tell which key signed an anchor."""
    return hashlib.sha256(b"seamflow.audit.key-id\0" + key).hexdigest()[:12]


def sign_anchor(key: bytes, cut_seq: int, cut_hash: str) -> dict[str, str]:
    """The signature fields of an anchor: HMAC-SHA256 over `<cut_seq>:<cut_hash>`, and the key's id."""
    mac = hmac.new(key, f"{cut_seq}:{cut_hash}".encode(), hashlib.sha256).hexdigest()
    return {"signature": mac, "key_id": anchor_key_id(key)}


@dataclass(slots=True)
class ChainCheck:
    """Walks the entries in `seq` order (fed in pages) and remembers the first break."""

    anchor_key: bytes | None = None
    checked: int = 0
    _note: str | None = None
    _first: store.AuditRow | None = None
    _prev: store.AuditRow | None = None
    _anchor: dict[str, object] | None = None
    _break: tuple[int, str] | None = field(default=None)

    def feed(self, rows: list[store.AuditRow]) -> None:
        """Check the next entries of the chain."""
        for row in rows:
            self.checked += 1
            if self._first is None:
                self._first = row
            elif self._break is None:
                self._link(self._prev, row)
            if self._break is None and entry_hash(row) != row.hash:
                self._break = (row.seq, f"entry {row.seq} was edited: its content does not match its hash")
            if row.action == Action.AUDIT_PRUNED:
                self._anchor = _anchor_of(row)
                if self._anchor is not None:
                    self._anchor["_seq"] = row.seq
            self._prev = row

    def verdict(self) -> Verdict:
        """The verdict over everything fed: a broken start comes first, then the first broken link."""
        head = self._prev
        problems = [p for p in (self._start_problem(), self._break) if p is not None]
        found = min(problems) if problems else None
        head_seq, head_hash = (head.seq, head.hash) if head else (0, None)
        if found is None:
            return Verdict(True, self.checked, head_seq=head_seq, head_hash=head_hash, note=self._note)
        seq, problem = found
        return Verdict(False, self.checked, seq, problem, head_seq=head_seq, head_hash=head_hash, note=self._note)

    def _link(self, prev: store.AuditRow | None, row: store.AuditRow) -> None:
        assert prev is not None
        if row.seq != prev.seq + 1:
            gap = f"{prev.seq + 1}" if row.seq == prev.seq + 2 else f"{prev.seq + 1} to {row.seq - 1}"
            self._break = (row.seq, f"entry {row.seq} follows entry {prev.seq}: entry {gap} was deleted or moved")
        elif row.prev_hash != prev.hash:
            self._break = (
                row.seq,
                f"entry {row.seq} does not link to entry {prev.seq}: its prev_hash is not entry {prev.seq}'s hash"
                " (an entry was replaced or reordered)",
            )

    def _start_problem(self) -> tuple[int, str] | None:
        first = self._first
        if first is None:
            return None
        if first.seq == 1:
            if first.prev_hash != GENESIS:
                return 1, "entry 1 does not start the chain: its prev_hash is not the genesis hash"
            return None
        anchor = self._anchor
        if anchor is None or anchor.get("cut_seq") != first.seq - 1:
            return (
                first.seq,
                f"the trail starts at entry {first.seq}, but no audit.pruned anchor records a cut at entry"
                f" {first.seq - 1}: entries before {first.seq} were deleted",
            )
        if anchor.get("cut_hash") != first.prev_hash:
            return first.seq, f"entry {first.seq} does not link to the hash the audit.pruned anchor kept at the cut"
        return self._anchor_signature_problem(anchor, first.seq - 1)

    def _anchor_signature_problem(self, anchor: dict[str, object], cut_seq: int) -> tuple[int, str] | None:
        where = int(str(anchor.get("_seq")))
        if "signature" not in anchor:
            self._note = f"the audit.pruned anchor (entry {where}) is not signed"
            return None
        if self.anchor_key is None:
            self._note = f"the signature of the audit.pruned anchor (entry {where}) was not checked: no key"
            return None
        if anchor.get("key_id") != anchor_key_id(self.anchor_key):
            self._note = (
                f"the audit.pruned anchor (entry {where}) was signed with another key"
                f" ({anchor.get('key_id')}); its signature was not checked"
            )
            return None
        expected = sign_anchor(self.anchor_key, cut_seq, str(anchor.get("cut_hash")))["signature"]
        if not hmac.compare_digest(str(anchor.get("signature")), expected):
            return where, f"entry {where}, the audit.pruned anchor, carries a signature the key did not make"
        return None


def _anchor_of(row: store.AuditRow) -> dict[str, object] | None:
    try:
        detail = json.loads(row.detail)
    except ValueError:
        return None
    return detail if isinstance(detail, dict) else None
