"""Who gets a task while its approver is away: the delegation chain, its period, loops and the requester."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from seamflow import store
from seamflow.engine.delegation import resolve_assignee

NOW = datetime(2026, 12, 10, 1, 0, tzinfo=UTC)
WEEK = (NOW - timedelta(days=1), NOW + timedelta(days=6))


def away(login: str, delegate: str, period: tuple[datetime, datetime] = WEEK) -> store.Delegation:
    return store.Delegation(login, delegate, period[0], period[1], login)


def test_a_task_for_someone_away_goes_to_their_delegate_on_their_behalf() -> None:
    assert resolve_assignee([away("zhang.wei", "liu.yang")], "zhang.wei", NOW, "li.na") == ("liu.yang", "zhang.wei")


def test_someone_not_away_keeps_their_task() -> None:
    assert resolve_assignee([away("zhang.wei", "liu.yang")], "chen.jing", NOW, "li.na") == ("chen.jing", None)


def test_a_delegation_outside_its_period_does_not_apply_and_its_end_is_exclusive() -> None:
    later = (NOW + timedelta(days=1), NOW + timedelta(days=2))
    assert resolve_assignee([away("zhang.wei", "liu.yang", later)], "zhang.wei", NOW, "li.na") == ("zhang.wei", None)
    ended = (NOW - timedelta(days=2), NOW)
    assert resolve_assignee([away("zhang.wei", "liu.yang", ended)], "zhang.wei", NOW, "li.na") == ("zhang.wei", None)


def test_a_delegate_who_is_away_too_passes_it_on_and_the_first_login_is_on_whose_behalf() -> None:
    chain = [away("zhang.wei", "liu.yang"), away("liu.yang", "chen.jing")]
    assert resolve_assignee(chain, "zhang.wei", NOW, "li.na") == ("chen.jing", "zhang.wei")


def test_a_loop_stops_at_the_last_login_not_seen_before() -> None:
    loop = [away("zhang.wei", "liu.yang"), away("liu.yang", "chen.jing"), away("chen.jing", "zhang.wei")]
    assert resolve_assignee(loop, "zhang.wei", NOW, "li.na") == ("chen.jing", "zhang.wei")


def test_a_chain_never_ends_at_the_requester() -> None:
    chain = [away("zhang.wei", "liu.yang"), away("liu.yang", "li.na")]
    assert resolve_assignee(chain, "zhang.wei", NOW, "li.na") == ("liu.yang", "zhang.wei")
    assert resolve_assignee([away("zhang.wei", "li.na")], "zhang.wei", NOW, "li.na") == ("zhang.wei", None)
