"""The directory on both store backends: import, lockout on a controllable clock, tokens, sessions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from seamflow import clock, directory, errors, store
from tests.support.db import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"

DIRECTORY_YAML = """\
departments:
  - {id: hq, name: 总经办, head: wangfang}
  - {id: finance, name: 财务部, parent: hq, head: zhangwei}
positions:
  - {id: finance_director, name: 财务总监}
  - {id: accountant, name: 会计}
users:
  - login: wangfang
    name: 王芳
    email: wang.fang@hengda-trading.com.cn
    mobile: 139-0211-3344
    department: hq
    roles: [admin]
  - login: zhangwei
    name: 张伟
    email: zhang.wei@hengda-trading.com.cn
    mobile: 138-1234-5678
    department: finance
    positions: [finance_director]
    manager: wangfang
    roles: [approver]
  - login: liuyang
    name: 刘洋
    mobile: "+86 137 0000 1234"
    department: finance
    positions: [accountant]
    manager: zhangwei
    roles: [viewer]
"""


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    clock.set_fixed(T0)
    yield
    clock.use_real()


@pytest.fixture
async def people(db: store.SqlStore) -> directory.Directory:
    d = directory.Directory(db, lockout=directory.LockoutPolicy(attempts=3, window=timedelta(minutes=10)))
    await d.import_file(directory.read_directory_text(DIRECTORY_YAML, "directory.yaml"))
    return d


async def test_import_stores_the_tree_positions_and_managers_and_is_idempotent(people: directory.Directory) -> None:
    await people.import_file(directory.read_directory_text(DIRECTORY_YAML, "directory.yaml"))  # again: same state
    users = {u.login: u for u in await people.db.list_users()}
    assert set(users) == {"wangfang", "zhangwei", "liuyang"}
    assert users["zhangwei"].display_name == "张伟"
    assert users["zhangwei"].mobile == "+8613812345678"
    assert users["zhangwei"].positions == ("finance_director",)
    assert users["liuyang"].manager_login == "zhangwei"
    departments = {d.id: d for d in await people.db.list_departments()}
    assert departments["finance"].parent_id == "hq" and departments["finance"].head_login == "zhangwei"


async def test_a_bad_reference_stores_nothing_of_the_file(db: store.SqlStore) -> None:
    d = directory.Directory(db)
    text = DIRECTORY_YAML.replace("manager: zhangwei", "manager: zhangsan")
    with pytest.raises(errors.InvalidInput) as caught:
        await d.import_file(directory.read_directory_text(text, "directory.yaml"))
    assert caught.value.code == "directory.invalid"
    message = str(caught.value)
    assert "directory.yaml:27:14 users[2].manager" in message and "'zhangsan' does not exist" in message
    assert await db.list_users() == [] and await db.list_departments() == []


async def test_wrong_password_n_times_locks_out_until_the_period_ends(people: directory.Directory) -> None:
    await people.set_password("zhangwei", PASSWORD)
    for _ in range(2):
        with pytest.raises(errors.Unauthorized) as caught:
            await people.sign_in("zhangwei", "wrong password!")
        assert caught.value.code == "auth.unauthorized"
    with pytest.raises(errors.Unauthorized):
        await people.sign_in("zhangwei", "wrong password!")  # the third failure locks
    with pytest.raises(errors.Unauthorized) as caught:
        await people.sign_in("zhangwei", PASSWORD)  # even the right password, while locked
    assert caught.value.code == "auth.locked"
    assert PASSWORD not in str(caught.value)
    clock.set_fixed(T0 + timedelta(minutes=14, seconds=59))
    with pytest.raises(errors.Unauthorized, match="locked until"):
        await people.sign_in("zhangwei", PASSWORD)
    clock.set_fixed(T0 + timedelta(minutes=15))
    session = await people.sign_in("zhangwei", PASSWORD)
    assert (await people.principal_of_session(session.secret)) is not None


async def test_failures_outside_the_window_do_not_add_up(people: directory.Directory) -> None:
    await people.set_password("zhangwei", PASSWORD)
    for minute in (0, 11, 22, 33):  # one failure per 11 minutes, the window is 10
        clock.set_fixed(T0 + timedelta(minutes=minute))
        with pytest.raises(errors.Unauthorized) as caught:
            await people.sign_in("zhangwei", "wrong password!")
        assert caught.value.code == "auth.unauthorized"
    assert await people.sign_in("zhangwei", PASSWORD)


async def test_lockout_holds_for_another_store_on_the_same_database(
    people: directory.Directory, database: Database
) -> None:
    await people.set_password("liuyang", PASSWORD)
    for _ in range(3):
        with pytest.raises(errors.Unauthorized):
            await people.sign_in("liuyang", "wrong password!")
    other = store.PostgresStore(database.url) if database.url else store.SqliteStore(database.path)  # type: ignore[arg-type]
    await other.open()
    try:
        with pytest.raises(errors.Unauthorized) as caught:
            await directory.Directory(other).sign_in("liuyang", PASSWORD)
        assert caught.value.code == "auth.locked"
    finally:
        await other.close()


async def test_tokens_are_stored_hashed_scoped_by_roles_expire_and_revoke(
    people: directory.Directory, db: store.SqlStore
) -> None:
    issued = await people.create_token("zhangwei", "inbox script", expires_in=timedelta(days=1))
    assert issued.secret.startswith("sfp_") and issued.token.scopes == ("approve", "read")
    principal = await people.principal_of_token(issued.secret)
    assert principal is not None and principal.scopes == {directory.Scope.READ, directory.Scope.APPROVE}
    listed = await db.list_user_tokens("zhangwei")
    assert listed[0].last_used == T0 and issued.secret not in repr(listed)
    with pytest.raises(errors.InvalidInput) as caught:
        await people.create_token("zhangwei", "too much", [directory.Scope.ADMIN])
    assert caught.value.code == "directory.scope_not_granted"
    clock.set_fixed(T0 + timedelta(days=1))
    with pytest.raises(errors.Unauthorized, match="expired") as expired:
        await people.principal_of_token(issued.secret)
    assert expired.value.code == "auth.expired"
    other = await people.create_token("zhangwei", "ci")
    await people.revoke_token(other.token.id)
    with pytest.raises(errors.Unauthorized, match="revoked"):
        await people.principal_of_token(other.secret)
    assert await people.principal_of_token("sfp_not-a-token") is None


async def test_sessions_expire_and_sign_out(people: directory.Directory) -> None:
    await people.set_password("wangfang", PASSWORD)
    session = await people.sign_in("wangfang", PASSWORD)
    assert session.expires == T0 + timedelta(hours=8)
    principal = await people.principal_of_session(session.secret)
    assert principal is not None and principal.scopes == frozenset(directory.Scope)
    await people.sign_out(session.secret)
    assert await people.principal_of_session(session.secret) is None
    second = await people.sign_in("wangfang", PASSWORD)
    clock.set_fixed(T0 + timedelta(hours=8))
    assert await people.principal_of_session(second.secret) is None


async def test_deleting_a_user_revokes_their_tokens(people: directory.Directory) -> None:
    issued = await people.create_token("liuyang", "report")
    await people.delete("user", "liuyang")
    with pytest.raises(errors.Unauthorized):
        await people.principal_of_token(issued.secret)
    with pytest.raises(errors.NotFound):
        await people.user("liuyang")


async def test_an_upsert_that_leaves_out_roles_positions_and_head_keeps_them(people: directory.Directory) -> None:
    synced = directory.UserEntry.model_validate({"login": "zhangwei", "name": "张伟", "department": "finance"})
    await people.save(
        users=[synced], departments=[directory.DepartmentEntry.model_validate({"id": "finance", "name": "财务中心"})]
    )
    user = await people.user("zhangwei")
    assert user.roles == ("approver",) and user.positions == ("finance_director",) and user.mobile is None
    [finance] = [d for d in await people.db.list_departments() if d.id == "finance"]
    assert finance.name == "财务中心" and finance.head_login == "zhangwei"
    cleared = directory.UserEntry.model_validate({"login": "zhangwei", "name": "张伟", "roles": [], "positions": []})
    await people.save(users=[cleared])
    user = await people.user("zhangwei")
    assert user.roles == () and user.positions == ()


async def test_deleting_what_others_refer_to_is_refused_naming_them(people: directory.Directory) -> None:
    with pytest.raises(errors.Conflict) as caught:
        await people.delete("department", "finance")
    assert caught.value.code == "directory.in_use"
    assert "user 'zhangwei'" in str(caught.value) and "user 'liuyang'" in str(caught.value)
    with pytest.raises(errors.Conflict, match=r"user 'liuyang' \(manager\), department 'finance' \(head\)"):
        await people.delete("user", "zhangwei")
    with pytest.raises(errors.Conflict, match="user 'liuyang'"):
        await people.delete("position", "accountant")
    assert len(await people.db.list_users()) == 3
    await people.delete("user", "liuyang")
    await people.delete("position", "accountant")
    with pytest.raises(errors.NotFound):
        await people.delete("position", "accountant")


async def test_a_token_revoked_by_another_process_is_refused_within_the_cache_bound(
    people: directory.Directory, database: Database
) -> None:
    issued = await people.create_token("zhangwei", "inbox script")
    assert await people.principal_of_token(issued.secret) is not None  # checked once: remembered
    other = store.PostgresStore(database.url) if database.url else store.SqliteStore(database.path)  # type: ignore[arg-type]
    await other.open()
    try:  # another process of the serve group (its own store and directory) revokes the token
        await directory.Directory(other).revoke_token(issued.token.id)
    finally:
        await other.close()
    bound = directory.TOKEN_CACHE_TTL
    clock.set_fixed(T0 + bound - timedelta(milliseconds=1))
    assert await people.principal_of_token(issued.secret) is not None  # still believed, within the bound
    clock.set_fixed(T0 + bound)
    with pytest.raises(errors.Unauthorized, match="revoked") as caught:
        await people.principal_of_token(issued.secret)
    assert caught.value.code == "auth.expired"


async def test_a_remembered_token_is_refused_at_once_when_this_process_revokes_it_or_it_expires(
    people: directory.Directory,
) -> None:
    revoked = await people.create_token("zhangwei", "ci")
    assert await people.principal_of_token(revoked.secret) is not None
    await people.revoke_token(revoked.token.id)
    with pytest.raises(errors.Unauthorized, match="revoked"):
        await people.principal_of_token(revoked.secret)
    short = await people.create_token("zhangwei", "one second", expires_in=timedelta(seconds=1))
    assert await people.principal_of_token(short.secret) is not None
    clock.set_fixed(T0 + timedelta(seconds=1))  # within the cache's bound, but past the token's expiry
    with pytest.raises(errors.Unauthorized, match="expired"):
        await people.principal_of_token(short.secret)


async def test_a_role_change_in_this_process_reaches_a_remembered_token_at_once(people: directory.Directory) -> None:
    issued = await people.create_token("zhangwei", "inbox script")
    before = await people.principal_of_token(issued.secret)
    assert before is not None and directory.Scope.APPROVE in before.scopes
    demoted = directory.UserEntry.model_validate({"login": "zhangwei", "name": "张伟", "roles": ["viewer"]})
    await people.save(users=[demoted])
    after = await people.principal_of_token(issued.secret)
    assert after is not None and after.scopes == {directory.Scope.READ}
