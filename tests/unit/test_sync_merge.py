"""The merge rules of record sync, as pure functions: ownership, latest wins, queue, echoes, deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seamflow import store
from seamflow.sync import merge
from seamflow.sync.model import FieldType, normalize
from seamflow.sync.spec import Sync

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _sync(**overrides: object) -> Sync:
    side = {
        "connection": "x",
        "key": "id",
        "fields": {"name": "name", "phone": "phone", "address": "address", "credit_limit": "credit"},
        "changes": {"poll": {"feed": "rows"}},
        "create": {"action": "insert", "key": "{{ result.id }}"},
        "update": {"action": "update"},
    }
    spec = {
        "id": "customers",
        "model": "customer",
        "ownership": {"name": "crm", "credit_limit": "erp"},
        "sides": {"crm": {**side, "connection": "crm"}, "erp": {**side, "connection": "erp"}},
        **overrides,
    }
    return Sync.model_validate(spec)


def _empty() -> store.SyncState:
    return store.SyncState("customers", "rec_1", {}, {}, False, 0, {})


def _change(side: str, at: datetime = T0, key: str = "1", **values: object) -> merge.Change:
    return merge.Change(side, key, dict(values), at)  # type: ignore[arg-type]


def _linked(sync: Sync) -> store.SyncState:
    state, outcome = merge.merge(
        sync, _empty(), _change("crm", name="张伟", phone="13812345678", address="上海", credit_limit="100.00")
    )
    [create] = outcome.writes
    assert create.side == "erp" and create.op == "create"
    return merge.written(state, create, "E-1", T0)


def test_a_new_record_is_created_on_the_other_side_with_every_field() -> None:
    sync = _sync()
    _, outcome = merge.merge(sync, _empty(), _change("crm", name="张伟", phone="13812345678"))
    assert outcome.kind == "changed"
    [write] = outcome.writes
    assert (write.side, write.op, write.record["name"]) == ("erp", "create", "张伟")


def test_our_own_write_coming_back_is_an_echo_and_changes_nothing() -> None:
    sync = _sync()
    state = _linked(sync)
    echo = _change("erp", at=T0 + timedelta(seconds=5), key="E-1", **state.data)
    new, outcome = merge.merge(sync, state, echo)
    assert outcome.kind == "echo" and outcome.writes == []
    assert new.data == state.data


def test_the_owner_wins_and_the_loser_is_written_back() -> None:
    sync = _sync()
    state = _linked(sync)
    later = T0 + timedelta(minutes=1)
    new, outcome = merge.merge(sync, state, _change("erp", at=later, key="E-1", **{**state.data, "name": "张三"}))
    assert new.data["name"] == "张伟"
    assert [d.outcome for d in outcome.decisions] == ["lost"]
    assert [(w.side, w.op, w.record["name"]) for w in outcome.writes] == [("erp", "update", "张伟")]
    new, outcome = merge.merge(
        sync, state, _change("erp", at=later, key="E-1", **{**state.data, "credit_limit": "9.00"})
    )
    assert new.data["credit_limit"] == "9.00", "the ERP owns the credit limit"
    assert [(w.side, w.op) for w in outcome.writes] == [("crm", "update")]


def test_an_unowned_field_takes_the_later_change_and_records_the_loser() -> None:
    sync = _sync()
    state = _linked(sync)
    state, _ = merge.merge(
        sync, state, _change("erp", at=T0 + timedelta(minutes=2), key="E-1", **{**state.data, "address": "北京"})
    )
    assert state.data["address"] == "北京"
    older = {**state.data, "address": "广州"}
    new, outcome = merge.merge(sync, state, _change("crm", at=T0 + timedelta(minutes=1), **older))
    assert new.data["address"] == "北京"
    assert outcome.decisions[0].outcome == "lost" and "older" in outcome.decisions[0].reason


def test_a_side_we_wrote_something_else_to_is_written_again_when_its_earlier_content_comes_back() -> None:
    # the ERP was read holding 上海, then Seamflow wrote 北京 there; when the canonical record
    # goes back to 上海, the ERP must be written although 上海 is what was last *read* from it
    sync = _sync()
    state = _linked(sync)
    state, _ = merge.merge(sync, state, _change("erp", at=T0 + timedelta(minutes=1), key="E-1", **state.data))
    beijing = {**state.data, "address": "北京"}
    state, outcome = merge.merge(sync, state, _change("crm", at=T0 + timedelta(minutes=2), **beijing))
    [write] = outcome.writes
    state = merge.written(state, write, None, T0 + timedelta(minutes=2, seconds=1))
    shanghai = {**state.data, "address": "上海"}
    _, outcome = merge.merge(sync, state, _change("crm", at=T0 + timedelta(minutes=3), **shanghai))
    assert [(w.side, w.op, w.record["address"]) for w in outcome.writes] == [("erp", "update", "上海")]


def test_with_the_queue_policy_only_a_field_changed_on_both_sides_waits_for_a_person() -> None:
    sync = _sync(conflicts="queue")
    state = _linked(sync)
    moved = {**state.data, "address": "北京"}
    state, outcome = merge.merge(sync, state, _change("erp", at=T0 + timedelta(minutes=2), key="E-1", **moved))
    assert state.data["address"] == "北京", "the ERP changed the value it held: a clean change, no conflict"
    assert outcome.decisions[0].reason == "changed from the current value"
    stale = {**state.data, "address": "广州"}  # the CRM still held 上海 when it changed it
    new, outcome = merge.merge(sync, state, _change("crm", at=T0 + timedelta(minutes=3), **stale))
    assert new.data["address"] == "北京"
    assert new.new_conflicts == (("address", {"erp": "北京", "crm": "广州"}),)
    assert outcome.decisions[0].outcome == "conflict"


def test_a_propagated_delete_leaves_a_tombstone_that_later_changes_cannot_revive() -> None:
    sync = _sync(deletes="propagate", sides=_sync().model_dump(by_alias=True)["sides"])
    state = _linked(sync)
    deleted = merge.Change("crm", "1", {}, T0 + timedelta(minutes=1), deleted=True)
    state, outcome = merge.merge(sync, state, deleted)
    assert state.deleted and [(w.side, w.op) for w in outcome.writes] == [("erp", "delete")]
    _, outcome = merge.merge(sync, state, _change("erp", at=T0 + timedelta(minutes=2), key="E-1", name="复活"))
    assert outcome.kind == "tombstoned" and outcome.writes == []


@given(
    name=st.text(min_size=1, max_size=10),
    address=st.text(max_size=10),
    credit=st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False),
)
def test_merging_the_same_change_twice_writes_once(name: str, address: str, credit: object) -> None:
    sync = _sync()
    change = _change("crm", name=name, address=address, credit_limit=normalize(FieldType.MONEY, str(credit)))
    state, first = merge.merge(sync, _empty(), change)
    for write in first.writes:
        state = merge.written(state, write, "E-1", T0)
    _, second = merge.merge(sync, state, change)
    assert second.writes == [] and second.kind == "unchanged"


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        (FieldType.PHONE_CN, "+86 138-1234-5678", "13812345678"),
        (FieldType.PHONE_CN, "008613812345678", "13812345678"),
        (FieldType.MONEY, "1,299", "1299.00"),
        (FieldType.MONEY, 50000, "50000.00"),
        (FieldType.USCC, "91310000ma1fl1234x", "91310000MA1FL1234X"),
        (FieldType.TEXT, "  ", None),
        (FieldType.BOOL, "否", False),
    ],
)
def test_canonical_values_are_normalized(kind: FieldType, raw: object, expected: object) -> None:
    assert normalize(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw", "message"),
    [
        (FieldType.PHONE_CN, "12345", "not a mainland China mobile number"),
        (FieldType.MONEY, 19.9, "expected an amount as a string or integer"),
        (FieldType.USCC, "91310000MA1FL1234Z", "not a unified social credit code"),
        (FieldType.EMAIL, "nobody", "not an e-mail address"),
    ],
)
def test_bad_values_are_refused_with_what_was_expected(kind: FieldType, raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize(kind, raw)


def test_a_deactivating_delete_sets_active_false_on_the_other_side() -> None:
    base = _sync().model_dump(by_alias=True)
    for side in base["sides"].values():
        side["fields"]["active"] = "active"
    sync = Sync.model_validate({**base, "deletes": "deactivate"})
    state, outcome = merge.merge(sync, _empty(), _change("crm", name="张伟", active=True))
    state = merge.written(state, outcome.writes[0], "E-1", T0)
    gone = merge.Change("crm", "1", {}, T0 + timedelta(minutes=1), deleted=True)
    new, outcome = merge.merge(sync, state, gone)
    assert new.data["active"] is False and not new.deleted
    assert [(w.side, w.op, w.record["active"]) for w in outcome.writes] == [("erp", "update", False)]


def test_a_flagged_delete_changes_nothing_and_queues_it_for_a_person() -> None:
    sync = Sync.model_validate({**_sync().model_dump(by_alias=True), "deletes": "flag"})
    state = _linked(sync)
    gone = merge.Change("crm", "1", {}, T0 + timedelta(minutes=1), deleted=True)
    new, outcome = merge.merge(sync, state, gone)
    assert new.data == state.data and outcome.writes == []
    assert new.new_conflicts == (("_deleted", {"crm": True, "key": "1"}),)
