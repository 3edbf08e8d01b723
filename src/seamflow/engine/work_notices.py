"""Approval notices sent to one person as a DingTalk work notification, a WeCom app message or a
Feishu app message, through the pack's `dingtalk_app`, `wecom_app` and `feishu_app` connectors.

The person is addressed by their platform user id: the directory's `im_ids` for the platform,
else their login (a directory synced from the platform keeps its user ids as logins; see
docs/howto/approvals.md). Where the platform lets the approver decide from the message, the
buttons carry the task's single-use decision token: WeCom's `button_interaction` template card
(its click comes back to `/approve/card/wecom`) and Feishu's interactive card
(`/approve/card/feishu`). DingTalk gets an action card whose button opens the decision link.
"""

from __future__ import annotations

from dataclasses import dataclass

from seamflow import codec
from seamflow.ids import Json

__all__ = ["APP_CONNECTORS", "WorkNotice", "app_message"]

APP_CONNECTORS = ("dingtalk_app", "wecom_app", "feishu_app")
"""The connectors whose notices go to one person by platform user id."""

_BUTTONS = (("approve", "同意"), ("reject", "驳回"))


@dataclass(frozen=True, slots=True)
class WorkNotice:
    """One rendered notice for one person."""

    notice_id: str
    """Also the idempotency key, the WeCom card's task_id and the Feishu message's uuid."""
    user_id: str
    """The person's platform user id (`im_ids`, else their login)."""
    subject: str
    text: str
    link: str | None
    """The decision link, for an approver asked to decide while the server has a public address."""
    token: str | None
    """The same link's single-use token, carried by the card's buttons."""


def app_message(kind: str, notice: WorkNotice) -> tuple[str, Json]:
    """The connector action and its input that send `notice` through a connection of `kind`."""
    if kind == "dingtalk_app":
        return "send_work_notification", {"userid_list": notice.user_id, "msg": _dingtalk(notice)}
    if kind == "wecom_app":
        return "send_app_message", {"touser": notice.user_id, **_wecom(notice)}
    content: Json = _feishu_card(notice) if notice.link else {"text": f"{notice.subject}\n{notice.text}"}
    return "send_message", {
        "receive_id_type": "user_id",
        "receive_id": notice.user_id,
        "msg_type": "interactive" if notice.link else "text",
        "content": codec.dumps_text(content),
        "uuid": notice.notice_id[:50],
    }


def _dingtalk(notice: WorkNotice) -> Json:
    if notice.link is None:
        return {"msgtype": "text", "text": {"content": f"{notice.subject}\n{notice.text}"}}
    card: Json = {
        "title": notice.subject,
        "markdown": f"### {notice.subject}\n\n{notice.text}",
        "single_title": "去审批 Decide",
        "single_url": notice.link,
    }
    return {"msgtype": "action_card", "action_card": card}


def _wecom(notice: WorkNotice) -> dict[str, Json]:
    if notice.link is None or notice.token is None:
        return {"msgtype": "text", "text": {"content": f"{notice.subject}\n{notice.text}"}}
    buttons: list[Json] = [
        {"text": title, "style": 1 if decision == "approve" else 2, "key": f"{decision}:{notice.token}"}
        for decision, title in _BUTTONS
    ]
    card: Json = {
        "card_type": "button_interaction",
        "main_title": {"title": notice.subject[:26], "desc": "Seamflow 审批"},
        "sub_title_text": notice.text[:1000],
        "card_action": {"type": 1, "url": notice.link},
        "task_id": notice.notice_id,
        "button_list": buttons,
    }
    return {"msgtype": "template_card", "template_card": card}


def _feishu_card(notice: WorkNotice) -> Json:
    actions: list[Json] = [
        {
            "tag": "button",
            "text": {"tag": "plain_text", "content": title},
            "type": "primary" if decision == "approve" else "danger",
            "value": {"token": notice.token, "decision": decision},
        }
        for decision, title in _BUTTONS
        if notice.token is not None
    ]
    actions.append(
        {"tag": "button", "text": {"tag": "plain_text", "content": "打开审批页"}, "type": "default", "url": notice.link}
    )
    return {
        "header": {"title": {"tag": "plain_text", "content": notice.subject}},
        "elements": [{"tag": "markdown", "content": notice.text}, {"tag": "action", "actions": actions}],
    }
