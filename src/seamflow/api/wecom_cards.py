"""`/approve/card/wecom`: an approver decides from a WeCom template card (模板卡片, `button_interaction`).

The approval notice sent through a `wecom_app` connection is a template card whose buttons have
the key `<decision>:<decision token>` (engine/work_notices.py). WeCom posts the click to the app's
receive-message URL as the documented encrypted callback (https://developer.work.weixin.qq.com/document/path/90930,
event `template_card_event`, https://developer.work.weixin.qq.com/document/path/90240): `msg_signature`,
`timestamp` and `nonce` in the query, `<xml><Encrypt>…</Encrypt></xml>` as the body. It is checked
with `seamflow.oa`'s cipher and signature against the secrets `wecom_card_token`,
`wecom_card_aes_key` and `wecom_corp_id`; the URL-verification GET is answered with the decrypted
`echostr`. A click is refused when the signature does not match or its timestamp is more than five
minutes away (401 `approval.card_forged`), when it does not decrypt for the corp (401
`oa.decrypt_failed`), when the person who clicked (`FromUserName`: the assignee's `im_ids.wecom`,
else their login) is not the task's assignee (403), and when the task was decided already — a replayed click (409).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from seamflow import audit, clock, errors, oa
from seamflow.api import audit as audit_api
from seamflow.api.card_callbacks import CardForged, platform_id
from seamflow.api.decision_links import pending_task
from seamflow.api.dependencies import EngineDep, require_token
from seamflow.ids import JsonObject

__all__ = ["router"]

router = APIRouter(dependencies=[Depends(require_token)], tags=["tasks"], include_in_schema=False)
_FRESH = timedelta(minutes=5)
_DECISIONS = ("approve", "reject", "return")


@router.get("/approve/card/wecom")
async def wecom_url_verification(request: Request, eng: EngineDep) -> Response:
    """WeCom's check of the receive-message URL: answer the decrypted `echostr`."""
    token, cipher = _settings(eng.context)
    query = request.query_params
    echo = (query.get("echostr") or "").replace(" ", "+")  # a "+" sent without URL-encoding arrives as a space
    _check(token, query, echo)
    return Response(cipher.decrypt(echo).encode(), 200, media_type="text/plain; charset=utf-8")


@router.post("/approve/card/wecom")
async def wecom_card_event(request: Request, eng: EngineDep) -> Response:
    """Decide the task a template card's button names, as the person who clicked it."""
    token, cipher = _settings(eng.context)
    envelope = oa.xml_fields((await request.body()).decode("utf-8", "replace"))
    encrypted = envelope.get("Encrypt")
    if not isinstance(encrypted, str) or not encrypted:
        raise errors.InvalidInput("the card callback has no Encrypt field; expected WeCom's encrypted XML")
    _check(token, request.query_params, encrypted)
    event = oa.xml_fields(cipher.decrypt(encrypted))
    decision, decision_token, clicker = _click(event)
    task = await pending_task(eng, decision_token)
    if clicker != await platform_id(eng, task.assignee, "wecom"):
        raise errors.Forbidden(
            f"task {task.id} is assigned to someone else; the card was clicked by {errors.redact(clicker)}",
            code="approval.not_assignee",
        )
    witness = audit_api.decision_witness(request, task.id, decision, actor=audit.Actor(task.assignee, "wecom card"))
    await eng.decide_task(task.id, task.assignee, decision, None, None, witness)
    return Response(b"", 200, media_type="text/plain; charset=utf-8")  # WeCom: an empty answer, no reply message


def _click(event: JsonObject) -> tuple[str, str, str]:
    """(decision, decision token, clicker) of a `template_card_event`."""
    key, clicker = event.get("EventKey"), event.get("FromUserName")
    if event.get("Event") != "template_card_event" or not isinstance(key, str) or not isinstance(clicker, str):
        raise errors.InvalidInput(
            "the card callback is not a template_card_event with EventKey and FromUserName;"
            " expected a click on a Seamflow approval card"
        )
    decision, _, decision_token = key.partition(":")
    if decision not in _DECISIONS or not decision_token:
        raise errors.InvalidInput('EventKey: expected "<approve|reject|return>:<decision token>"')
    return decision, decision_token, clicker


def _check(token: str, query: Mapping[str, str], encrypted: str) -> None:
    signature, timestamp, nonce = (query.get(name, "") for name in ("msg_signature", "timestamp", "nonce"))
    expected = oa.message_signature(token, timestamp, nonce, encrypted)
    if not signature or not hmac.compare_digest(signature.lower().encode(), expected.encode()):
        raise CardForged("the card callback's msg_signature does not match; expected WeCom's signature")
    if not timestamp.isdigit():
        raise CardForged("the card callback has no valid timestamp")
    if abs(clock.now().timestamp() - int(timestamp)) > _FRESH.total_seconds():
        raise CardForged("the card callback's timestamp is more than 5 minutes away; a replay is refused")


def _settings(context: Mapping[str, Any]) -> tuple[str, oa.MessageCipher]:
    names = ("wecom_card_token", "wecom_card_aes_key", "wecom_corp_id")
    secrets = context.get("secrets")
    values = []
    for name in names:
        try:
            value = secrets[name] if secrets is not None else None
        except (KeyError, errors.SeamflowError):
            value = None
        if not isinstance(value, str) or not value:
            raise errors.InvalidInput(
                "WeCom card callbacks need the app's receive-message Token, EncodingAESKey and the corp id as the"
                f" secrets {', '.join(names)} (SEAMFLOW_SECRET_…); {name} is not set",
                code="approval.card_not_configured",
            )
        values.append(value)
    return values[0], oa.MessageCipher(values[1], values[2], where="secrets.wecom_card_aes_key")
