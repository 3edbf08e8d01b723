"""Grants on flows and folders, tokens limited to flows, and OIDC sign-in requests, on both store backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from seamflow import clock, directory, errors, store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DIRECTORY_YAML = """\
departments:
  - {id: finance, name: 财务部, head: zhangwei}
  - {id: sales, name: 销售部}
positions:
  - {id: buyer, name: 采购员}
users:
  - {login: zhangwei, name: 张伟, department: finance, roles: [viewer]}
  - {login: liuyang, name: 刘洋, department: sales, positions: [buyer]}
  - {login: chenjing, name: 陈静, department: sales}
"""


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    clock.set_fixed(T0)
    yield
    clock.use_real()


@pytest.fixture
async def people(db: store.SqlStore, tmp_path: Path) -> directory.Directory:
    d = directory.Directory(db, flows_root=tmp_path / "flows")
    await d.import_file(directory.read_directory_text(DIRECTORY_YAML, "directory.yaml"))
    return d


def _flow(people: directory.Directory, flow_id: str, relative: str) -> directory.FlowRef:
    assert people.flows_root is not None
    return people.flow_ref(flow_id, str(people.flows_root / relative))


async def test_a_folder_grant_covers_the_flows_below_it_and_no_other(people: directory.Directory) -> None:
    row, is_new = await people.grant("zhangwei", "operator", "folder:finance", by="wangfang")
    assert is_new and (row.subject, row.target, row.created_by) == ("user:zhangwei", "folder:finance/", "wangfang")
    assert (await people.grant("user:zhangwei", "operator", "folder:finance/", by="wangfang"))[1] is False
    session = await people.principal_of_session(await _session(people, "zhangwei"))
    assert session is not None
    pay = _flow(people, "pay-invoice", "finance/ap/pay.yaml")
    orders = _flow(people, "sync-orders", "sales/orders.yaml")
    assert session.scopes_on(pay) == {directory.Scope.READ, directory.Scope.OPERATE}
    assert session.scopes_on(orders) == {directory.Scope.READ}  # the global viewer role only
    assert not session.may(directory.Scope.OPERATE)  # not on every flow
    top = _flow(people, "financial-report", "financial.yaml")  # a name that starts like the folder
    assert directory.Scope.OPERATE not in session.scopes_on(top)


async def test_department_and_position_grants_reach_their_members(people: directory.Directory) -> None:
    await people.grant("department:sales", "viewer", "flow:sync-orders", by="wangfang")
    await people.grant("position:buyer", "builder", "flow:purchase-order", by="wangfang")
    liuyang = await people.grants_of(await people.user("liuyang"))
    chenjing = await people.grants_of(await people.user("chenjing"))
    assert {(g.target, g.role) for g in liuyang} == {
        ("flow:sync-orders", directory.Role.VIEWER),
        ("flow:purchase-order", directory.Role.BUILDER),
    }
    assert {(g.target, g.role) for g in chenjing} == {("flow:sync-orders", directory.Role.VIEWER)}


async def test_a_grant_to_nobody_or_on_nothing_is_refused_and_nothing_is_stored(people: directory.Directory) -> None:
    with pytest.raises(errors.NotFound, match="department 'hr' does not exist"):
        await people.grant("department:hr", "viewer", "flow:payroll", by="wangfang")
    for subject, role, target in [
        ("zhangwei", "owner", "flow:pay"),
        ("zhangwei", "viewer", "flows/pay.yaml"),
        ("zhangwei", "viewer", "folder:../secrets/"),
        ("team:finance", "viewer", "flow:pay"),
    ]:
        with pytest.raises(errors.InvalidInput) as caught:
            await people.grant(subject, role, target, by="wangfang")
        assert caught.value.code == "directory.grant_invalid"
    assert await people.db.list_grants() == []
    with pytest.raises(errors.NotFound) as missing:
        await people.revoke_grant("zhangwei", "viewer", "flow:pay")
    assert missing.value.code == "directory.grant_not_found"


async def test_revoking_a_grant_takes_it_away_at_the_next_request(people: directory.Directory) -> None:
    await people.grant("liuyang", "operator", "flow:sync-orders", by="wangfang")
    secret = await _session(people, "liuyang")
    flow = directory.FlowRef("sync-orders")
    assert directory.Scope.OPERATE in (await _principal(people, secret)).scopes_on(flow)
    await people.revoke_grant("user:liuyang", "operator", "flow:sync-orders")
    assert (await _principal(people, secret)).scopes_on(flow) == frozenset()


async def test_a_token_limited_to_flows_never_exceeds_its_user_there(people: directory.Directory) -> None:
    await people.grant("liuyang", "operator", "folder:sales/", by="wangfang")
    issued = await people.create_token("liuyang", "nightly replay", ["operate"], targets=["flow:sync-orders"])
    assert issued.token.targets == ("flow:sync-orders",)
    principal = await people.principal_of_token(issued.secret)
    assert principal is not None and principal.is_limited
    assert principal.scopes_on(_flow(people, "sync-orders", "sales/orders.yaml")) == {directory.Scope.OPERATE}
    assert principal.scopes_on(_flow(people, "sync-returns", "sales/returns.yaml")) == frozenset()
    with pytest.raises(errors.InvalidInput) as caught:  # liuyang holds no build anywhere
        await people.create_token("liuyang", "deploy", ["build"], targets=["flow:sync-orders"])
    assert caught.value.code == "directory.scope_not_granted"
    await people.revoke_grant("liuyang", "operator", "folder:sales/")
    principal = await people.principal_of_token(issued.secret)
    assert principal is not None
    assert principal.scopes_on(_flow(people, "sync-orders", "sales/orders.yaml")) == frozenset()


async def test_a_sign_in_request_is_taken_once_and_not_after_it_expires(db: store.SqlStore) -> None:
    until = T0 + timedelta(minutes=10)
    await db.save_sign_in_request(store.SignInRequest("st-1", "n-1", "v-1", until), T0)
    await db.save_sign_in_request(store.SignInRequest("st-2", "n-2", "v-2", until), T0)
    taken = await db.take_sign_in_request("st-1", T0 + timedelta(minutes=1))
    assert taken is not None and (taken.nonce, taken.verifier) == ("n-1", "v-1")
    assert await db.take_sign_in_request("st-1", T0 + timedelta(minutes=1)) is None  # replayed state
    assert await db.take_sign_in_request("st-2", until + timedelta(seconds=1)) is None  # expired


async def _session(people: directory.Directory, login: str) -> str:
    await people.set_password(login, "Hengda-2026-finance")
    return (await people.sign_in(login, "Hengda-2026-finance")).secret


async def _principal(people: directory.Directory, secret: str) -> directory.Principal:
    found = await people.principal_of_session(secret)
    assert found is not None
    return found
