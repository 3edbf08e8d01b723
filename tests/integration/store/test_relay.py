"""A serve group's one writer on SQLite: the other processes' journal units commit in the first's writer.

Two stores on one file stand for two processes of a group (the relay is a real Unix socket;
only the process boundary is left out — `tests/acceptance/test_serve_processes.py` runs the
real group).
"""

from __future__ import annotations

import asyncio
import functools
import os
import pickle
import socket
import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from seamflow import engine, errors, store
from seamflow.ids import FlowId, RunId

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
FLOW = FlowId("orders")


def _event(key: str, lease: store.Lease | None = None) -> store.NewEvent:
    body = {"order_no": key, "customer": "上海宏达贸易有限公司", "amount": "1280.50"}
    return store.NewEvent(FLOW, "v1", "webhook", {"body": body}, T0, dedupe_key=key, lease=lease)


@pytest.fixture
async def group(tmp_path: Path) -> AsyncIterator[tuple[store.SqliteStore, store.SqliteStore]]:
    """The first process's store and another process's, on one database file."""
    first = store.SqliteStore(tmp_path / "seamflow.db", shared=True)
    first.join_group(is_first=True)
    await first.open()
    other = store.SqliteStore(tmp_path / "seamflow.db", shared=True)
    other.join_group(is_first=False)
    await other.open()
    yield first, other
    await other.close()
    await first.close()


def _units(s: store.SqliteStore) -> int:
    assert s._writer is not None
    return s._writer.units


async def test_another_process_s_accept_commits_in_the_first_s_writer(
    group: tuple[store.SqliteStore, store.SqliteStore],
) -> None:
    first, other = group
    before_first, before_other = _units(first), _units(other)
    accepted = await engine.Journal(other).accept(_event("SO-20261207-0001"))
    assert not accepted.is_duplicate
    assert (_units(first) - before_first, _units(other) - before_other) == (1, 0)
    state = await first.load_run(accepted.run_id)
    assert state.status is store.RunStatus.QUEUED
    again = await engine.Journal(other).accept(_event("SO-20261207-0001"))
    assert (again.run_id, again.is_duplicate) == (accepted.run_id, True)


async def test_a_relayed_unit_s_error_reaches_its_caller(group: tuple[store.SqliteStore, store.SqliteStore]) -> None:
    first, other = group
    journal = engine.Journal(other)
    run = await journal.accept(_event("SO-20261207-0002", store.Lease("w1", T0 + timedelta(seconds=30))))
    later = T0 + timedelta(minutes=5)
    [taken] = await first.claim_runs("w2", later, later + timedelta(seconds=30), limit=1)
    entry = store.JournalEntry("post", 1, 0, "action", store.StepStatus.COMPLETED, None, {"ok": True}, None, T0, T0)
    with pytest.raises(errors.LeaseLost, match=f"run {run.run_id} was taken over"):
        await journal.record_step(store.StepRecord(run.run_id, FLOW, entry, epoch=1))
    await journal.record_step(store.StepRecord(run.run_id, FLOW, entry, epoch=taken.epoch))
    assert [e.path for e in (await first.load_run(run.run_id)).journal] == ["post"]


async def test_a_closure_commits_in_its_own_process(group: tuple[store.SqliteStore, store.SqliteStore]) -> None:
    first, other = group
    before_first, before_other = _units(first), _units(other)
    event = _event("SO-20261207-0003")
    accepted = await other.transact(lambda tx: engine.journal.accept(tx, event))
    assert (_units(first) - before_first, _units(other) - before_other) == (0, 1)
    assert (await first.load_run(accepted.run_id)).status is store.RunStatus.QUEUED


async def test_the_writer_refuses_a_unit_naming_foreign_code(
    group: tuple[store.SqliteStore, store.SqliteStore], tmp_path: Path
) -> None:
    path = str(tmp_path / "seamflow.db-writer.sock")
    payload = pickle.dumps(functools.partial(os.system, "touch pwned"))
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        conn.sendall(struct.pack("<IQ", len(payload), 7) + payload)
        reader = conn.makefile("rb")
        size, request_id = struct.unpack("<IQ", await loop.run_in_executor(None, reader.read, 12))
        is_ok, error = pickle.loads(await loop.run_in_executor(None, reader.read, size))
        reader.close()
    assert (request_id, is_ok) == (7, False)
    assert isinstance(error, errors.StoreError)
    assert "posix.system may not travel to the group writer" in str(error)
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


async def test_without_the_first_process_another_commits_its_own_units(tmp_path: Path) -> None:
    first = store.SqliteStore(tmp_path / "seamflow.db", shared=True)
    first.join_group(is_first=True)
    await first.open()
    other = store.SqliteStore(tmp_path / "seamflow.db", shared=True)
    other.join_group(is_first=False)
    await other.open()
    try:
        assert first._relay_server is not None
        for _ in range(200):  # the first process registers the connection on its event loop
            if first._relay_server._incoming:
                break
            await asyncio.sleep(0.01)
        await first.close()
        assert other._relay is not None
        for _ in range(200):  # the hang-up arrives through the event loop
            if not other._relay.is_connected:
                break
            await asyncio.sleep(0.01)
        assert not other._relay.is_connected
        accepted = await engine.Journal(other).accept(_event("SO-20261207-0004"))
        assert (await other.load_run(accepted.run_id)).status is store.RunStatus.QUEUED
    finally:
        await other.close()


async def test_an_unreachable_writer_leaves_the_process_committing_its_own(tmp_path: Path) -> None:
    other = store.SqliteStore(tmp_path / "seamflow.db", shared=True)
    other.join_group(is_first=False)
    await other.open()
    try:
        assert other._relay is None
        run_id: RunId = (await engine.Journal(other).accept(_event("SO-20261207-0005"))).run_id
        assert (await other.load_run(run_id)).status is store.RunStatus.QUEUED
    finally:
        await other.close()
