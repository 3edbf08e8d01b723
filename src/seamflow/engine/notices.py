"""Sending approvals' notifications: e-mail in zh-CN with a decision link, retried, never blocking a decision.

The approval wrote each notice in the commit of what it tells of (`store.NewNotice`). This loop
takes due notices, renders the message (the task, the request, a signed decision link for the
approver), sends it through the step's connection, and records `notification.sent` — or, after
a failure, tries again later with a growing pause (`notification.failed` once it gives up, or at
once for a permanent error such as a user without an e-mail address). The decision itself was
committed long before: a mail server that is down delays a message, never a decision.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from seamflow import clock, errors, store
from seamflow.engine.connections import Pool
from seamflow.engine.links import DecisionLinks
from seamflow.engine.work_notices import APP_CONNECTORS, WorkNotice, app_message
from seamflow.ids import Json

__all__ = ["NoticeOptions", "NoticeSender"]

log = logging.getLogger("seamflow.notices")

_TITLES = {
    "created": "待审批",
    "reminded": "催办",
    "escalated": "升级审批",
    "returned": "退回修改",
    "approved": "审批通过",
    "rejected": "审批驳回",
    "withdrawn": "已撤回",
}


_IM_ROBOTS = ("dingtalk", "wecom", "feishu")


def _robot_message(kind: str, subject: str, text: str, link: str | None, mobile: str | None) -> tuple[str, Json]:
    """A group-robot message: Feishu gets a card whose button opens the decision link; DingTalk and
    WeCom a text that @-mentions the person by mobile (the link is in the text)."""
    if kind == "feishu" and link is not None:
        return "card", {"title": subject, "text": text, "buttons": [{"title": "去审批 Decide", "url": link}]}
    mobiles: list[Json] = [mobile.removeprefix("+86")] if mobile and kind != "feishu" else []
    return "text", {"content": f"{subject}\n{text}", "mobiles": mobiles}


@dataclass(frozen=True, slots=True)
class NoticeOptions:
    """How the sender polls and retries."""

    poll: timedelta = timedelta(seconds=1)
    """How often to look for due notices when the last round found none."""
    batch: int = 20
    """Notices taken per round."""
    hold: timedelta = timedelta(minutes=2)
    """How long a taken notice is out of other processes' reach (a sender that died mid-send)."""
    max_attempts: int = 8
    """Transient failures before a notice is given up (`notification.failed`)."""
    first_pause: timedelta = timedelta(seconds=5)
    """The pause after the first failure; it doubles each time, up to ten minutes."""


class _Undeliverable(Exception):
    """A notice that no retry can send (no address, an unsupported connection)."""


class NoticeSender:
    """Sends due notices until cancelled.

    Args:
        db: the notices, tasks and the directory.
        pool: the connections the notices name.
        links: the process's decision links (None: messages point to the inbox only).
        options: polling and retries.
    """

    def __init__(
        self, db: store.Store, pool: Pool, links: Callable[[], DecisionLinks | None], options: NoticeOptions
    ) -> None:
        self._db = db
        self._pool = pool
        self._links = links
        self._options = options

    async def run(self) -> None:
        """Send due notices, round after round, until cancelled."""
        while True:
            try:
                sent = await self.send_due()
            except asyncio.CancelledError:
                raise
            except errors.StoreError as exc:
                log.warning("taking notices failed", extra={"error": exc.message})
                sent = 0
            except Exception:  # a boundary: the loop outlives any bug in one round
                log.exception("sending notices failed")
                sent = 0
            if sent == 0:
                await asyncio.sleep(self._options.poll.total_seconds())

    async def send_due(self) -> int:
        """One round: send the notices due now; returns how many were taken."""
        now = clock.now()
        hold, limit = now + self._options.hold, self._options.batch
        taken = await self._db.transact(lambda tx: tx.take_due_notices(now, hold, limit))
        for notice in taken:
            await self._send(notice)
        return len(taken)

    async def _send(self, notice: store.Notice) -> None:
        task = None if notice.task_id is None else await self._db.get_task(notice.task_id)
        attempts = notice.attempts + 1
        try:
            if task is None:
                raise _Undeliverable(f"the notice's task {notice.task_id} does not exist")
            await self._deliver(notice, task)
        except asyncio.CancelledError:
            raise
        except (_Undeliverable, errors.Permanent, errors.InvalidInput, errors.NotFound) as exc:
            await self._finish(notice, task, "failed", attempts, str(exc))
        except Exception as exc:  # a boundary: any failure of a send is retried, the loop keeps going
            text = exc.message if isinstance(exc, errors.SeamflowError) else f"{type(exc).__name__}"
            status = "failed" if attempts >= self._options.max_attempts else "pending"
            await self._finish(notice, task, status, attempts, text)
        else:
            await self._finish(notice, task, "sent", attempts, None)

    async def _deliver(self, notice: store.Notice, task: store.StoredTask) -> None:
        opened = self._pool.get(notice.connection)
        kind = opened.connector.kind
        users = [u for u in await self._db.list_users(notice.recipient) if u.login == notice.recipient]
        if not users:
            raise _Undeliverable(f"{notice.recipient} is not in the directory")
        user = users[0]
        name = user.display_name or user.login
        token = self._token(notice, task)
        link = None if token is None else self._links_url(token)
        subject, text = self._message(notice, task, name, link)
        params: Json
        if kind == "email":
            if not user.email:
                raise _Undeliverable(f"{notice.recipient} has no e-mail address in the directory")
            to: list[Json] = [f"{name} <{user.email}>"]
            action, params = "send", {"to": to, "subject": subject, "text": text}
        elif kind in _IM_ROBOTS:
            action, params = _robot_message(kind, subject, text, link, user.mobile)
        elif kind in APP_CONNECTORS:
            user_id = user.im_ids.get(kind.removesuffix("_app")) or user.login
            action, params = app_message(kind, WorkNotice(notice.id, user_id, subject, text, link, token))
        else:
            raise _Undeliverable(
                f"connection {notice.connection} is a {kind} connection; approval notifications are sent"
                f" through an email, {', '.join((*_IM_ROBOTS, *APP_CONNECTORS))} connection"
            )
        async with asyncio.timeout(opened.connection.timeout.total_seconds()):
            await opened.connector.call(action, params, idempotency_key=notice.id)

    @staticmethod
    def _message(notice: store.Notice, task: store.StoredTask, name: str, link: str | None) -> tuple[str, str]:
        """The subject and text, in zh-CN; approvers get a decision link if the server has a public address."""
        what = task.subject or task.approval_id
        title = _TITLES.get(notice.kind, notice.kind)
        lines = [f"{name}，您好：", ""]
        if notice.kind in ("created", "reminded", "escalated"):
            behalf = f"（代 {task.on_behalf_of} 审批）" if task.on_behalf_of else ""
            lines.append(f"{task.requester} 提交的「{what}」等待您审批{behalf}（第 {task.level + 1} 级）。")
            if task.due is not None:
                lines.append(f"截止时间：{task.due.isoformat()}")
            if link is not None:
                lines += ["", f"同意、驳回或退回修改，请打开：{link}"]
            lines += ["", f"也可在审批收件箱中处理：seamflow tasks show {task.id}"]
        elif notice.kind == "returned":
            lines.append(f"您提交的「{what}」被退回修改。请修改后重新提交，或撤回申请。")
            lines += ["", f"重新提交：seamflow tasks resubmit {task.id} --as {task.requester} --changes '{{…}}'"]
        else:
            lines.append(f"您提交的「{what}」：{title}。")
        lines += ["", "—— Seamflow 审批"]
        return f"【{title}】{what}", "\n".join(lines) + "\n"

    def _token(self, notice: store.Notice, task: store.StoredTask) -> str | None:
        """The decision token for an approver asked to decide, if the server has a public address."""
        links = self._links()
        is_asked = notice.kind in ("created", "reminded", "escalated") and task.status == "pending"
        if links is None or links.base_url is None or not is_asked:
            return None
        return links.issue(links.grant_for(task))

    def _links_url(self, token: str) -> str | None:
        links = self._links()
        return None if links is None else links.url_of(token)

    async def _finish(
        self, notice: store.Notice, task: store.StoredTask | None, status: str, attempts: int, error: str | None
    ) -> None:
        now = clock.now()
        pause = min(self._options.first_pause * 2 ** (attempts - 1), timedelta(minutes=10))
        next_at: datetime = now + pause if status == "pending" else now
        kind = {"sent": "notification.sent", "failed": "notification.failed"}.get(status)
        rows = []
        if kind is not None and task is not None:
            objects: Json = {"approval": notice.approval_id, "task": task.id, "notice": notice.id}
            attributes: Json = {"who": notice.recipient, "notice": notice.kind, "attempts": attempts, "error": error}
            rows.append(store.LogRow(now, kind, task.flow_id, task.run_id, task.path, kind, objects, attributes))
        if status == "pending":
            log.warning("sending a notification failed; trying again", extra={"notice": notice.id, "error": error})

        def unit(tx: store.RunTx) -> None:
            tx.finish_notice(notice.id, status, attempts, next_at, error)
            if rows:
                tx.append_log(rows)

        await self._db.transact(unit)
