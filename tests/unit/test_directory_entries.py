"""Directory entries as written: mainland mobiles, rows of directory.yaml, the lockout rule, role scopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from seamflow import directory, errors, store


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("13812345678", "+8613812345678"),
        ("138-1234-5678", "+8613812345678"),
        ("138 1234 5678", "+8613812345678"),
        ("+86 138 1234 5678", "+8613812345678"),
        ("+86-13812345678", "+8613812345678"),
        ("008613812345678", "+8613812345678"),
        ("19912345678", "+8619912345678"),
    ],
)
def test_a_mainland_mobile_is_kept_in_e164(written: str, stored: str) -> None:
    assert directory.mainland_mobile(written) == stored


@pytest.mark.parametrize(
    "written",
    [
        "1381234567",  # a digit short
        "138123456789",  # a digit too many
        "010-62345678",  # a Beijing landline
        "+852 9123 4567",  # Hong Kong
        "+1 650 253 0000",
        "12345678901",  # no such mobile prefix
        "not a number",
        "",
    ],
)
def test_anything_but_a_mainland_mobile_is_refused_saying_what_is_expected(written: str) -> None:
    with pytest.raises(ValueError, match="expected a mainland China mobile number such as 13812345678"):
        directory.mainland_mobile(written)


def test_the_rows_of_a_file_are_checked_each_at_its_line() -> None:
    text = (
        "departments:\n"
        "  - {id: finance, name: 财务部, head: zhangwei}\n"
        "  - {id: 财务, name: 财务部}\n"
        "users:\n"
        "  - {login: zhangwei, name: 张伟, roles: [approver, superuser]}\n"
        "  - {login: liuyang, name: 刘洋, email: liuyang.qq.com}\n"
        "groups: []\n"
    )
    with pytest.raises(errors.InvalidInput) as caught:
        directory.read_directory_text(text, "directory.yaml")
    problems = [str(p) for p in caught.value.problems]
    assert caught.value.code == "directory.invalid"
    assert problems[0].startswith("directory.yaml:7:1 groups: unknown section 'groups'")
    assert any(
        p.startswith("directory.yaml:3:10 departments[1].id: got '财务'; expected letters, digits") for p in problems
    ), problems
    assert any(
        p.startswith("directory.yaml:5:51 users[0].roles[1]: got 'superuser'; expected one of 'viewer'")
        for p in problems
    ), problems
    assert any(
        p.startswith("directory.yaml:6:39 users[1].email: got 'liuyang.qq.com'; expected an e-mail address")
        for p in problems
    ), problems
    assert len(problems) == 4


def test_a_file_that_is_not_a_mapping_or_not_yaml_says_so() -> None:
    with pytest.raises(errors.InvalidInput, match="the file is not a mapping"):
        directory.read_directory_text("- zhangwei\n", "directory.yaml")
    with pytest.raises(errors.InvalidInput) as caught:
        directory.read_directory_text("users: [\n", "directory.yaml")
    assert caught.value.code == "directory.invalid" and "directory.yaml:" in str(caught.value)


T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = directory.LockoutPolicy(attempts=3, window=timedelta(minutes=10), lock_for=timedelta(minutes=30))
FRESH = store.SignInState("hash", 0, None, None, True)


def test_the_third_failure_within_the_window_locks_for_the_period() -> None:
    state = FRESH
    for minute in (0, 4, 9):
        state = directory.record_attempt(state, False, T0 + timedelta(minutes=minute), POLICY)
    assert state.locked_until == T0 + timedelta(minutes=39) and state.failures == 0
    during = directory.record_attempt(state, True, T0 + timedelta(minutes=38), POLICY)
    assert during == state, "a correct password changes nothing while locked"
    after = directory.record_attempt(state, True, T0 + timedelta(minutes=39), POLICY)
    assert after.locked_until is None and after.failures == 0


def test_a_success_clears_the_failures() -> None:
    state = directory.record_attempt(FRESH, False, T0, POLICY)
    state = directory.record_attempt(state, True, T0 + timedelta(minutes=1), POLICY)
    state = directory.record_attempt(state, False, T0 + timedelta(minutes=2), POLICY)
    state = directory.record_attempt(state, False, T0 + timedelta(minutes=3), POLICY)
    assert state.locked_until is None and state.failures == 2


def test_roles_grant_scopes_from_one_table() -> None:
    assert directory.scopes_of(["viewer"]) == {directory.Scope.READ}
    assert directory.scopes_of(["approver", "operator"]) == {"read", "operate", "approve"}
    assert directory.scopes_of(["admin"]) == frozenset(directory.Scope)
    assert directory.scopes_of(["superuser"]) == frozenset()


def test_sign_in_settings_come_from_the_environment_and_bad_ones_are_named() -> None:
    settings = directory.SignInSettings.from_env(
        {"SEAMFLOW_LOCKOUT_ATTEMPTS": "3", "SEAMFLOW_LOCKOUT_PERIOD": "1h", "SEAMFLOW_SESSION_TTL": "30m"}
    )
    assert settings.lockout == directory.LockoutPolicy(3, timedelta(minutes=15), timedelta(hours=1))
    assert settings.session_ttl == timedelta(minutes=30)
    assert directory.SignInSettings.from_env({}) == directory.SignInSettings()
    with pytest.raises(errors.InvalidInput, match="SEAMFLOW_LOCKOUT_ATTEMPTS is 'five'; expected an integer"):
        directory.SignInSettings.from_env({"SEAMFLOW_LOCKOUT_ATTEMPTS": "five"})
    with pytest.raises(errors.InvalidInput, match="SEAMFLOW_LOCKOUT_WINDOW is '0s'; expected a positive duration"):
        directory.SignInSettings.from_env({"SEAMFLOW_LOCKOUT_WINDOW": "0s"})
