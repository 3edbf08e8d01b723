"""Queueing an approval's notifications in the transaction of what they tell of (`notices.py` sends them)."""

from __future__ import annotations

from datetime import datetime

from seamflow import ids, store

__all__ = ["queue_notice"]


def queue_notice(
    tx: store.RunTx,
    row: store.ApprovalRow,
    kind: str,
    task_id: str | None,
    recipient: str,
    at: datetime,
    *,
    outcome: str | None = None,
) -> None:
    """Queue a notification if the step asks for this kind (`notify.on`); `notices.py` sends it."""
    notify = row.plan.get("notify") if isinstance(row.plan, dict) else None
    on = notify.get("on") if isinstance(notify, dict) else None
    if not isinstance(notify, dict) or not isinstance(on, list) or kind not in on:
        return
    what = outcome or kind  # the outcome names a completed approval's notice: approved, rejected, withdrawn
    notice = store.NewNotice(ids.new_id("ntc"), row.id, task_id, what, recipient, str(notify["connection"]))
    tx.insert_notice(notice, at)
