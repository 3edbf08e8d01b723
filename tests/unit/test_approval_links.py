"""Decision links: a token names a task and its assignee, is sealed with the project's key and expires."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet, MultiFernet

from seamflow import clock, engine, errors

NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def links(key: bytes | None = None) -> engine.DecisionLinks:
    secret = engine.secrets.SecretKey(MultiFernet([Fernet(key or Fernet.generate_key())]), "test")
    return engine.DecisionLinks(lambda: secret, "https://seamflow.example.cn/")


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    clock.set_fixed(NOW)
    yield
    clock.use_real()


def test_a_token_carries_its_task_assignee_and_expiry_and_hides_them() -> None:
    signer = links()
    grant = engine.LinkGrant("tsk_01m98d0r1sj1g972b54e5v8bdj", "zhang.wei", NOW + timedelta(days=2))
    token = signer.issue(grant)
    assert signer.check(token) == grant
    assert "zhang.wei" not in token and "tsk_" not in token and "=" not in token
    assert signer.url(grant).startswith("https://seamflow.example.cn/approve/t/")


@pytest.mark.parametrize("change", ["flip", "truncate", "garbage", "other_key"])
def test_an_altered_or_foreign_token_is_refused(change: str) -> None:
    key = Fernet.generate_key()
    token = links(key).issue(engine.LinkGrant("tsk_1", "zhang.wei", NOW + timedelta(days=1)))
    altered = {
        "flip": token[:20] + ("A" if token[20] != "A" else "B") + token[21:],
        "truncate": token[:-10],
        "garbage": "not a token ✓",
        "other_key": links().issue(engine.LinkGrant("tsk_1", "zhang.wei", NOW + timedelta(days=1))),
    }[change]
    with pytest.raises(errors.Forbidden) as refused:
        links(key).check(altered)
    assert refused.value.code == "approval.link_invalid"


def test_a_token_past_its_expiry_is_gone() -> None:
    signer = links()
    token = signer.issue(engine.LinkGrant("tsk_1", "zhang.wei", NOW + timedelta(hours=1)))
    clock.set_fixed(NOW + timedelta(hours=1))
    with pytest.raises(engine.LinkExpired) as gone:
        signer.check(token)
    assert gone.value.http_status == 410 and "tsk_1" in str(gone.value)
