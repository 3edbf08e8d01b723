"""The audit chain's check on hand-made entries: what each kind of tampering is reported as."""

from __future__ import annotations

import dataclasses
import json

from seamflow import audit, store
from seamflow.audit.chain import ChainCheck


def _chain(count: int) -> list[store.AuditRow]:
    rows: list[store.AuditRow] = []
    prev = audit.GENESIS
    for seq in range(1, count + 1):
        draft = store.AuditRow(
            seq, 1_796_634_723_000 + seq, "wangfang", "session", "run.replayed", f"run:run_{seq:04d}",
            "10.8.1.23", "Mozilla/5.0", json.dumps({"n": seq}), prev, "",
        )  # fmt: skip
        row = dataclasses.replace(draft, hash=audit.entry_hash(draft))
        rows.append(row)
        prev = row.hash
    return rows


def _verdict(rows: list[store.AuditRow]) -> audit.Verdict:
    check = ChainCheck()
    check.feed(rows[:2])  # in pages, as the trail reads them
    check.feed(rows[2:])
    return check.verdict()


def test_an_intact_chain_names_its_head() -> None:
    rows = _chain(6)
    verdict = _verdict(rows)
    assert verdict.is_intact and verdict.checked == 6
    assert (verdict.head_seq, verdict.head_hash) == (6, rows[-1].hash)


def test_an_empty_chain_is_intact() -> None:
    assert _verdict([]) == audit.Verdict(True, 0)


def test_a_changed_field_is_an_edit_of_that_entry() -> None:
    rows = _chain(6)
    rows[3] = dataclasses.replace(rows[3], client="203.0.113.9")
    verdict = _verdict(rows)
    assert (verdict.is_intact, verdict.first_broken) == (False, 4)
    assert verdict.problem == "entry 4 was edited: its content does not match its hash"


def test_a_rehashed_edit_breaks_the_link_of_the_next_entry() -> None:
    rows = _chain(6)
    forged = dataclasses.replace(rows[2], actor="someone", hash="")
    rows[2] = dataclasses.replace(forged, hash=audit.entry_hash(forged))
    verdict = _verdict(rows)
    assert verdict.first_broken == 4 and verdict.problem is not None and "does not link to entry 3" in verdict.problem


def test_a_gap_names_the_missing_entries() -> None:
    rows = _chain(7)
    verdict = _verdict(rows[:2] + rows[4:])
    assert verdict.first_broken == 5
    assert verdict.problem == "entry 5 follows entry 2: entry 3 to 4 was deleted or moved"


def test_a_missing_start_without_an_anchor_is_named_before_later_breaks() -> None:
    rows = _chain(6)
    rows[4] = dataclasses.replace(rows[4], detail="{}")
    verdict = _verdict(rows[2:])
    assert verdict.first_broken == 3 and verdict.problem is not None and "no audit.pruned anchor" in verdict.problem


def test_a_genesis_entry_with_another_prev_hash_is_named() -> None:
    rows = _chain(2)
    forged = dataclasses.replace(rows[0], prev_hash="f" * 64, hash="")
    rows[0] = dataclasses.replace(forged, hash=audit.entry_hash(forged))
    verdict = _verdict(rows)
    assert verdict.first_broken == 1 and verdict.problem is not None and "genesis" in verdict.problem
