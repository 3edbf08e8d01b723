"""`/approve/card/feishu`: an approver decides from a Feishu interactive card (卡片回传交互).

The card's buttons carry `{"token": <decision token>, "decision": "approve"}` as their `value`;
both callback shapes are read (the card action of schema 2.0, `event.operator`/`event.action`,
and the older flat one), plain or encrypted (`{"encrypt": …}`: AES-256-CBC with the SHA-256 of
the Encrypt Key, the IV in the first 16 bytes, as Feishu documents).
Feishu posts the click here, signed as its documentation says for a request URL with an Encrypt
Key: `X-Lark-Signature` = hex SHA-256 of `X-Lark-Request-Timestamp` + `X-Lark-Request-Nonce` +
the Encrypt Key + the raw body. The Encrypt Key is the project secret `feishu_card_key`
(`SEAMFLOW_SECRET_FEISHU_CARD_KEY`). A callback is refused when its signature does not match or
its timestamp is more than five minutes away (401 `approval.card_forged`), when the person who
clicked (`user_id`: the assignee's `im_ids.feishu` in the directory, else their login) is not
the task's assignee (403), and when the task was decided already — a replayed click (409). The
URL-verification handshake is answered once the signature is checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from seamflow import audit, clock, codec, engine, errors
from seamflow.api import audit as audit_api
from seamflow.api.decision_links import pending_task
from seamflow.api.dependencies import EngineDep, json_response, require_token
from seamflow.ids import Json

__all__ = ["CardForged", "platform_id", "router"]

router = APIRouter(dependencies=[Depends(require_token)], tags=["tasks"], include_in_schema=False)
_FRESH = timedelta(minutes=5)
_DONE = {"approve": "已同意", "reject": "已驳回", "return": "已退回修改"}


class CardForged(errors.SeamflowError):
    """A card callback whose signature or timestamp does not hold."""

    code = "approval.card_forged"
    http_status = 401


@router.post("/approve/card/feishu")
async def feishu_card_action(request: Request, eng: EngineDep) -> Response:
    """Decide the task a card button names, as the person who clicked it."""
    raw = await request.body()
    key = _encrypt_key(eng.context)
    _check_signature(request.headers, raw, key)
    body = _body(raw, key)
    if body.get("type") == "url_verification":
        return json_response({"challenge": body.get("challenge")})
    nested = body.get("event")
    event = nested if isinstance(nested, dict) else body
    action, operator = event.get("action"), event.get("operator")
    clicker = operator.get("user_id") if isinstance(operator, dict) else event.get("user_id")
    value = action.get("value") if isinstance(action, dict) else None
    if not isinstance(value, dict) or not isinstance(value.get("token"), str) or value.get("decision") not in _DONE:
        raise errors.InvalidInput(
            'action.value: expected {"token": <decision token>, "decision": "approve" | "reject" | "return"}'
        )
    task = await pending_task(eng, str(value["token"]))
    if clicker != await platform_id(eng, task.assignee, "feishu"):
        raise errors.Forbidden(
            f"task {task.id} is assigned to someone else; the card was clicked by {errors.redact(clicker)}",
            code="approval.not_assignee",
        )
    decision = str(value["decision"])
    witness = audit_api.decision_witness(request, task.id, decision, actor=audit.Actor(task.assignee, "feishu card"))
    await eng.decide_task(task.id, task.assignee, decision, None, None, witness)
    return json_response({"toast": {"type": "success", "content": f"{_DONE[decision]}：{task.subject or task.id}"}})


async def platform_id(eng: engine.Engine, login: str, platform: str) -> str:
    """`login`'s user id on `platform` (the directory's `im_ids`), or the login itself."""
    users = [u for u in await eng.db.list_users(login) if u.login == login]
    return (users[0].im_ids.get(platform) if users else None) or login


def _body(raw: bytes, key: str) -> dict[str, Json]:
    """The callback's JSON object, decrypted if Feishu sent it encrypted."""
    try:
        body = codec.loads(raw) if raw else None
        if isinstance(body, dict) and isinstance(body.get("encrypt"), str):
            sealed = base64.b64decode(str(body["encrypt"]))
            aes = Cipher(algorithms.AES(hashlib.sha256(key.encode()).digest()), modes.CBC(sealed[:16]))
            decryptor = aes.decryptor()
            padded = decryptor.update(sealed[16:]) + decryptor.finalize()
            unpadder = padding.PKCS7(128).unpadder()
            body = codec.loads(unpadder.update(padded) + unpadder.finalize())
    except (ValueError, TypeError) as exc:
        raise errors.InvalidInput(f"the card callback could not be read ({type(exc).__name__})") from None
    if not isinstance(body, dict):
        raise errors.InvalidInput("the card callback is not a JSON object; expected Feishu's card action body")
    return body


def _encrypt_key(context: Mapping[str, Any]) -> str:
    secrets = context.get("secrets")
    try:
        key = secrets["feishu_card_key"] if secrets is not None else None
    except (KeyError, errors.SeamflowError):
        key = None
    if not isinstance(key, str) or not key:
        raise errors.InvalidInput(
            "Feishu card callbacks need the app's Encrypt Key as the secret feishu_card_key"
            " (SEAMFLOW_SECRET_FEISHU_CARD_KEY); none is set",
            code="approval.card_not_configured",
        )
    return key


def _check_signature(headers: Mapping[str, str], raw: bytes, key: str) -> None:
    timestamp, nonce, given = (
        headers.get(h, "") for h in ("x-lark-request-timestamp", "x-lark-request-nonce", "x-lark-signature")
    )
    expected = hashlib.sha256(f"{timestamp}{nonce}{key}".encode() + raw).hexdigest()
    if not given or not hmac.compare_digest(str(given).encode(), expected.encode()):
        raise CardForged("the card callback's X-Lark-Signature does not match; expected Feishu's signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise CardForged("the card callback has no valid X-Lark-Request-Timestamp") from None
    if abs(clock.now().timestamp() - sent) > _FRESH.total_seconds():
        raise CardForged("the card callback's timestamp is more than 5 minutes away; a replay is refused")
