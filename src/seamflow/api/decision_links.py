"""`/approve/t/{token}`: deciding a task from a link in an e-mail or IM message, without signing in.

`GET` shows a small confirm page (the request, and buttons); `POST` decides. The token is the
credential (`engine.DecisionLinks`): it names the task and its assignee, and expires. A link of
a task decided already answers 409, an expired one 410, a forged one or one whose task went to
someone else since 403 — each a page that says so. Nothing is decided by a `GET`, so a mail
scanner that follows links decides nothing.
"""

from __future__ import annotations

import html
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import HTMLResponse

from seamflow import audit, codec, engine, errors, store
from seamflow.api import audit as audit_api
from seamflow.api.dependencies import EngineDep, require_token
from seamflow.api.tasks import decision_links

__all__ = ["pending_task", "router"]

router = APIRouter(dependencies=[Depends(require_token)], tags=["tasks"], include_in_schema=False)
Token = Annotated[str, Path(max_length=1000)]
_LABELS = {"approve": "同意 Approve", "reject": "驳回 Reject", "return": "退回修改 Return for changes"}


@router.get("/approve/t/{token}")
async def confirm_page(token: Token, eng: EngineDep) -> HTMLResponse:
    """The request and the decision buttons; deciding needs the POST."""
    try:
        task = await pending_task(eng, token)
    except errors.SeamflowError as exc:
        return _page(exc.http_status, "无法审批 Cannot decide", str(exc))
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in (
            ("事项 Subject", task.subject or "-"),
            ("申请人 Requester", task.requester),
            ("审批人 Approver", task.assignee + (f"（代 {task.on_behalf_of}）" if task.on_behalf_of else "")),
            ("级别 Level", str(task.level + 1)),
            ("内容 Request", codec.dumps_text(task.data)[:2000]),
        )
    )
    buttons = "".join(
        f'<button name="decision" value="{d}">{html.escape(label)}</button> ' for d, label in _LABELS.items()
    )
    form = (
        f"<table>{rows}</table><form method='post'><p><label>意见 Comment "
        f"<input name='comment' maxlength='4000'></label></p><p>{buttons}</p></form>"
    )
    return _page(200, "审批 Approval", form, is_markup=True)


@router.post("/approve/t/{token}")
async def decide_by_link(token: Token, request: Request, eng: EngineDep) -> HTMLResponse:
    """Decide the link's task as its assignee; the form is `decision` (approve|reject|return) and `comment`."""
    try:
        decision, comment = _decision(await request.body(), request.headers.get("content-type", ""))
        task = await pending_task(eng, token)
        witness = audit_api.decision_witness(request, task.id, decision, actor=audit.Actor(task.assignee, "link"))
        is_settled = (await eng.decide_task(task.id, task.assignee, decision, comment, None, witness)).is_settled
    except errors.SeamflowError as exc:
        return _page(exc.http_status, "无法审批 Cannot decide", str(exc))
    outcome = (
        "审批已完成 The approval is settled." if is_settled else "已记录，审批继续 Recorded; the approval goes on."
    )
    return _page(200, "已审批 Decided", f"{_LABELS[decision]}: {task.subject or task.id}. {outcome}")


async def pending_task(eng: engine.Engine, token: str) -> store.StoredTask:
    """The pending task a decision token names, for the assignee it names (else 403, 404, 409, 410)."""
    grant = decision_links(eng).check(token)
    task = await eng.db.get_task(grant.task_id)
    if task is None:
        raise errors.NotFound(f"task {grant.task_id} does not exist", code="approval.task_not_found")
    if task.assignee != grant.assignee:
        raise errors.Forbidden(
            f"task {task.id} is assigned to someone else now; this link was for {grant.assignee}",
            code="approval.not_assignee",
        )
    if task.status != "pending":
        raise errors.Conflict(
            f"task {task.id} was already decided ({task.status}); this link has been used",
            code="approval.already_decided",
        )
    return task


def _decision(body: bytes, content_type: str) -> tuple[str, str | None]:
    """`decision` and `comment` from a form post or a JSON object."""
    if content_type.startswith("application/json"):
        value = codec.loads(body) if body else {}
        fields = {k: str(v) for k, v in value.items() if v is not None} if isinstance(value, dict) else {}
    else:
        fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    decision = fields.get("decision", "")
    if decision not in _LABELS:
        raise errors.InvalidInput(f"decision: got {errors.redact(decision)}; expected one of {', '.join(_LABELS)}")
    comment = fields.get("comment") or None
    return decision, None if comment is None else comment[:4000]


def _page(status: int, title: str, body: str, *, is_markup: bool = False) -> HTMLResponse:
    text = body if is_markup else f"<p>{html.escape(body)}</p>"
    return HTMLResponse(
        f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<meta name='viewport' content='width=device-width'></head><body><h1>{html.escape(title)}</h1>{text}"
        "</body></html>",
        status_code=status,
    )
