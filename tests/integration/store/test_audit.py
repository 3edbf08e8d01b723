"""The audit trail's chain in the store, on both backends: tampering named, pruning verifiable, one chain."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from seamflow import audit, clock, store
from tests.support.db import Database

ADMIN = audit.Actor("wang.fang", "session")
OFFICE = audit.Origin("10.8.1.23", "Mozilla/5.0 (Windows NT 10.0) Chrome/120")


async def _record_five(trail: audit.AuditTrail) -> None:
    for n, (action, obj) in enumerate(
        [
            (audit.Action.FLOW_DEPLOYED, "flow:contract-signed-to-erp"),
            (audit.Action.ROLE_GRANTED, "user:zhang.wei"),
            (audit.Action.TOKEN_CREATED, "token:tok_01"),
            (audit.Action.RUN_REPLAYED, "run:run_0042"),
            (audit.Action.SIGN_IN_FAILED, "user:li.na"),
        ]
    ):
        await trail.record(action, obj, actor=ADMIN, origin=OFFICE, detail={"n": n, "金额": "19.90"})


async def test_a_clean_chain_verifies_and_links_every_entry(db: store.SqlStore) -> None:
    trail = audit.AuditTrail(db)
    assert (await trail.verify()).is_intact, "an empty trail is intact"
    await _record_five(trail)
    verdict = await trail.verify()
    assert verdict.is_intact and verdict.checked == 5 and verdict.first_broken is None, verdict
    entries = await trail.entries()
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev_hash"] == audit.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(entries))
    assert entries[1]["actor"] == "wang.fang" and entries[1]["client"] == "10.8.1.23"
    assert entries[0]["detail"] == {"n": 0, "金额": "19.90"}
    assert verdict.head_seq == 5 and verdict.head_hash == entries[-1]["hash"]


async def test_an_edited_entry_is_named(db: store.SqlStore, database: Database) -> None:
    trail = audit.AuditTrail(db)
    await _record_five(trail)
    database.query("UPDATE audit_log SET actor = 'someone.else' WHERE seq = 3")
    verdict = await trail.verify()
    assert not verdict.is_intact and verdict.first_broken == 3, verdict
    assert verdict.problem is not None and "edited" in verdict.problem


async def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(db: store.SqlStore, database: Database) -> None:
    trail = audit.AuditTrail(db)
    await _record_five(trail)
    (row,) = [r for r in await db.list_audit_entries() if r.seq == 2]
    forged = store.AuditRow(**{**_fields(row), "detail": json.dumps({"n": 99}), "hash": ""})
    database.query("UPDATE audit_log SET detail = ?, hash = ? WHERE seq = 2", (forged.detail, audit.entry_hash(forged)))
    verdict = await trail.verify()
    assert not verdict.is_intact and verdict.first_broken == 3, verdict
    assert verdict.problem is not None and "does not link to entry 2" in verdict.problem


async def test_a_deleted_entry_is_named(db: store.SqlStore, database: Database) -> None:
    trail = audit.AuditTrail(db)
    await _record_five(trail)
    database.query("DELETE FROM audit_log WHERE seq = 2")
    verdict = await trail.verify()
    assert not verdict.is_intact and verdict.first_broken == 3, verdict
    assert verdict.problem is not None and "entry 2 was deleted" in verdict.problem


async def test_deleting_the_oldest_entries_is_named(db: store.SqlStore, database: Database) -> None:
    trail = audit.AuditTrail(db)
    await _record_five(trail)
    database.query("DELETE FROM audit_log WHERE seq <= 2")
    verdict = await trail.verify()
    assert not verdict.is_intact and verdict.first_broken == 3, verdict
    assert verdict.problem is not None and "no audit.pruned anchor" in verdict.problem


async def test_reordered_entries_are_named(db: store.SqlStore, database: Database) -> None:
    trail = audit.AuditTrail(db)
    await _record_five(trail)
    # swap entries 2 and 4 by their position in the chain
    database.query("UPDATE audit_log SET seq = -1 WHERE seq = 2")
    database.query("UPDATE audit_log SET seq = 2 WHERE seq = 4")
    database.query("UPDATE audit_log SET seq = 4 WHERE seq = -1")
    verdict = await trail.verify()
    assert not verdict.is_intact and verdict.first_broken == 2, verdict


async def test_pruning_leaves_an_anchor_and_a_chain_that_verifies(db: store.SqlStore, database: Database) -> None:
    trail = audit.AuditTrail(db)
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    try:
        for day in range(4):
            clock.set_fixed(start + timedelta(days=day))
            await trail.record(audit.Action.SECRET_SET, f"secret:erp_token_{day}", actor=ADMIN, origin=OFFICE)
        clock.set_fixed(start + timedelta(days=10))
        deleted = await trail.prune(start + timedelta(days=2), actor=ADMIN)
    finally:
        clock.use_real()
    assert deleted == 2
    entries = await trail.entries()
    assert [e["seq"] for e in entries] == [3, 4, 5]
    anchor = entries[-1]
    assert anchor["action"] == "audit.pruned"
    assert isinstance(anchor["detail"], dict) and anchor["detail"]["cut_seq"] == 2
    assert (await trail.verify()).is_intact
    database.query("DELETE FROM audit_log WHERE seq = 3")  # deleting past the cut still shows
    verdict = await trail.verify()
    assert not verdict.is_intact and verdict.first_broken == 4, verdict


async def test_a_planted_secret_never_reaches_an_entry(db: store.SqlStore, database: Database) -> None:
    from seamflow import redact

    planted = "sk-live-PLANTED-7f3a9c21e4"
    redact.register(planted)
    trail = audit.AuditTrail(db)
    await trail.record(
        audit.Action.SECRET_SET,
        "secret:erp_token",
        actor=ADMIN,
        origin=audit.Origin("10.8.1.23", f"curl/8.5 {planted}"),
        detail={"value": planted, "note": f"rotated from {planted}"},
    )
    stored = database.query("SELECT * FROM audit_log")
    assert stored and planted not in repr(stored)
    exported = [e async for e in trail.export()]
    assert planted not in json.dumps(exported, ensure_ascii=False)
    assert (await trail.verify()).is_intact


@pytest.mark.timeout(120)
async def test_two_processes_appending_at_once_keep_one_chain(database: Database, tmp_path: Path) -> None:
    where = database.url or str(database.path)
    db = store.PostgresStore(database.url) if database.url else store.SqliteStore(database.path)
    await db.open()  # migrate once before the writers start
    go = tmp_path / "go"
    count = 60
    writers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.audit_writer", where, name, str(count), str(go)
        )
        for name in ("proc-a", "proc-b")
    ]
    go.touch()
    codes = [await asyncio.wait_for(w.wait(), 100) for w in writers]
    try:
        assert codes == [0, 0]
        trail = audit.AuditTrail(db)
        verdict = await trail.verify()
        assert verdict.is_intact and verdict.checked == 2 * count, verdict
        actors = [e["actor"] for e in await trail.entries()]
        assert actors.count("proc-a") == count and actors.count("proc-b") == count
    finally:
        await db.close()


def _fields(row: store.AuditRow) -> dict[str, object]:
    return {name: getattr(row, name) for name in row.__dataclass_fields__}


async def test_a_signed_anchor_verifies_and_a_forged_one_is_named(db: store.SqlStore, database: Database) -> None:
    key, other_key = b"k" * 32, b"o" * 32
    trail = audit.AuditTrail(db, anchor_key=key)
    start = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
    try:
        for day in range(3):
            clock.set_fixed(start + timedelta(days=day))
            await trail.record(audit.Action.TOKEN_REVOKED, f"token:tok_{day}", actor=ADMIN)
        clock.set_fixed(start + timedelta(days=30))
        assert await trail.prune(start + timedelta(days=2), actor=ADMIN) == 2
    finally:
        clock.use_real()
    verdict = await trail.verify()
    assert verdict.is_intact and verdict.note is None, verdict
    elsewhere = await audit.AuditTrail(db, anchor_key=other_key).verify()
    assert elsewhere.is_intact and elsewhere.note is not None and "another key" in elsewhere.note
    unkeyed = await audit.AuditTrail(db).verify()
    assert unkeyed.is_intact and unkeyed.note is not None and "no key" in unkeyed.note

    (anchor,) = [r for r in await db.list_audit_entries() if r.action == "audit.pruned"]
    detail = {**json.loads(anchor.detail), "signature": "0" * 64}
    forged = store.AuditRow(**{**_fields(anchor), "detail": json.dumps(detail), "hash": ""})
    database.query(
        "UPDATE audit_log SET detail = ?, hash = ? WHERE seq = ?", (forged.detail, audit.entry_hash(forged), anchor.seq)
    )
    verdict = await trail.verify()
    assert not verdict.is_intact and verdict.first_broken == anchor.seq, verdict
    assert verdict.problem is not None and "signature the key did not make" in verdict.problem
