"""A flow's owner may not ask for a promotion of their own flow: they could not approve it (four eyes)."""

from __future__ import annotations

import pytest

from seamflow import errors, lifecycle


def test_the_owner_asking_is_refused_and_anyone_else_may_ask() -> None:
    with pytest.raises(errors.Conflict) as refused:
        lifecycle.check_requester("refunds", "zhang.wei", "zhang.wei")
    assert refused.value.code == "promotion.self_request"
    assert "zhang.wei" in refused.value.message and "another builder" in refused.value.message
    lifecycle.check_requester("refunds", "zhang.wei", "li.na")  # no error: li.na asks, zhang.wei approves
