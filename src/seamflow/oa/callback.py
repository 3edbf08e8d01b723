"""Verifying one OA callback request: signature, freshness, replay, decryption, handshake.

`verify_callback` takes the request's parts and the trigger's settings and returns what to
answer and, unless the request was a URL-verification handshake, the event to accept. Every
refusal is an `errors.SeamflowError` with an `oa.*` code, raised before anything is stored; no
message carries a token, a key or the decrypted text.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from seamflow import codec, errors
from seamflow.ids import Json, JsonObject
from seamflow.oa.cipher import MessageCipher, message_signature
from seamflow.oa.events import OaEvent, dingtalk_event, feishu_event, wecom_event, xml_fields
from seamflow.oa.feishu import FeishuCipher, feishu_signature

__all__ = ["PLATFORMS", "Answer", "CallbackRequest", "CallbackSettings", "Replays", "Verified", "verify_callback"]

PLATFORMS = ("dingtalk", "wecom", "feishu")


@dataclass(frozen=True, slots=True)
class CallbackSettings:
    """A trigger's platform and secrets, rendered from the project's secrets."""

    platform: str
    token: str
    """DingTalk/WeCom: the callback Token; Feishu: the Verification Token."""
    aes_key: str
    """DingTalk/WeCom: the EncodingAESKey; Feishu: the Encrypt Key."""
    receiver_id: str = ""
    """DingTalk: the app key (or corp id, suite key); WeCom: the corp id. Unused for Feishu."""
    max_age: timedelta = timedelta(minutes=5)
    """How far a request's timestamp may be from now; also how long a nonce is remembered."""


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """The parts of an HTTP request a callback is verified from."""

    method: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Lower-case names."""
    body: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    """What the platform expects back when the callback was taken (a handshake, or an accepted event)."""

    body: bytes
    media_type: str


@dataclass(frozen=True, slots=True)
class Verified:
    """A verified callback: the answer to send and the event (None for a handshake)."""

    answer: Answer
    event: OaEvent | None
    replay_key: str | None
    """Remember it with `Replays.remember` once the event is committed."""


class Replays:
    """The nonces this process accepted recently: the same signed request twice is refused at once.

    The cluster-wide check is the store's (`store.NonceStore`, claimed by the `oa` trigger);
    this one spares that write for a replay that reaches the process that took the original.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._seen: OrderedDict[str, datetime] = OrderedDict()
        self._limit = limit

    def is_seen(self, key: str, now: datetime) -> bool:
        """Whether `key` was remembered and has not expired."""
        until = self._seen.get(key)
        return until is not None and until > now

    def remember(self, key: str, until: datetime) -> None:
        """Remember `key` until `until`, dropping the oldest keys beyond the limit."""
        self._seen[key] = until
        self._seen.move_to_end(key)
        while len(self._seen) > self._limit:
            self._seen.popitem(last=False)


def verify_callback(settings: CallbackSettings, request: CallbackRequest, now: datetime, replays: Replays) -> Verified:
    """Verify one callback request for a trigger.

    Raises:
        errors.Unauthorized: a signature or token that does not match, or a message that does not decrypt.
        errors.InvalidInput: a timestamp outside `max_age` (`oa.stale`), a missing parameter, a bad key.
        errors.Conflict: the same signed request again within `max_age` (`oa.replayed`).
        errors.PayloadInvalid: a body that is not the platform's format.
    """
    for name in ("token", "aes_key"):
        if not getattr(settings, name):
            raise errors.InvalidInput(
                f"trigger.oa.{name} is empty; expected the value from the platform's console", code="oa.key_invalid"
            )
    if settings.platform == "feishu":
        return _feishu(settings, request, now, replays)
    return _encrypted(settings, request, now, replays)


def _encrypted(settings: CallbackSettings, request: CallbackRequest, now: datetime, replays: Replays) -> Verified:
    """DingTalk and WeCom: signature over the encrypted text, then decryption for the receiver id."""
    query = request.query
    signature = query.get("msg_signature") or query.get("signature") or ""
    timestamp = query.get("timestamp") or query.get("timeStamp") or ""
    nonce = query.get("nonce") or ""
    if not (signature and timestamp and nonce):
        raise errors.Unauthorized(
            "callback refused: the query lacks msg_signature, timestamp or nonce; expected all three",
            code="oa.signature_missing",
        )
    cipher = MessageCipher(settings.aes_key, settings.receiver_id, where="trigger.oa.aes_key")
    is_wecom = settings.platform == "wecom"
    if is_wecom and request.method == "GET":
        # base64 has no spaces: a "+" sent without URL-encoding was decoded as one
        encrypted = (query.get("echostr") or "").replace(" ", "+")
    elif is_wecom:
        encrypted = _text_field(xml_fields(request.body.decode("utf-8", "replace")), "Encrypt")
    else:
        encrypted = _text_field(_json_object(request.body), "encrypt")
    _check_signature(message_signature(settings.token, timestamp, nonce, encrypted), signature)
    replay_key = _check_fresh(settings, timestamp, f"{settings.platform}:{nonce}:{timestamp}", now, replays)
    message = cipher.decrypt(encrypted)
    if is_wecom and request.method == "GET":
        return Verified(Answer(message.encode(), "text/plain; charset=utf-8"), None, replay_key)
    if is_wecom:
        return Verified(Answer(b"", "text/plain; charset=utf-8"), wecom_event(xml_fields(message)), replay_key)
    answer = _dingtalk_success(settings, cipher, now)
    event = _json_object(message.encode())
    if event.get("EventType") == "check_url":
        return Verified(answer, None, replay_key)
    return Verified(answer, dingtalk_event(event), replay_key)


def _dingtalk_success(settings: CallbackSettings, cipher: MessageCipher, now: datetime) -> Answer:
    """DingTalk's acknowledgement: "success" encrypted and signed the way it sent the event."""
    timestamp, nonce = str(int(now.timestamp() * 1000)), secrets.token_hex(8)
    encrypted = cipher.encrypt("success")
    body: JsonObject = {
        "msg_signature": message_signature(settings.token, timestamp, nonce, encrypted),
        "timeStamp": timestamp,
        "nonce": nonce,
        "encrypt": encrypted,
    }
    return Answer(codec.dumps(body), "application/json")


def _feishu(settings: CallbackSettings, request: CallbackRequest, now: datetime, replays: Replays) -> Verified:
    """Feishu: signature over the raw body (when sent), decryption, Verification Token, then the event."""
    encrypted = _json_object(request.body).get("encrypt")
    if not isinstance(encrypted, str):
        raise errors.Unauthorized(
            'callback refused: the body is not encrypted; expected {"encrypt": …} (the trigger has an Encrypt Key)',
            code="oa.decrypt_failed",
        )
    headers = request.headers
    timestamp = headers.get("x-lark-request-timestamp", "")
    nonce = headers.get("x-lark-request-nonce", "")
    signature = headers.get("x-lark-signature", "")
    is_signed = bool(signature and timestamp and nonce)
    replay_key = None
    if is_signed:
        _check_signature(feishu_signature(timestamp, nonce, settings.aes_key, request.body), signature)
        replay_key = _check_fresh(settings, timestamp, f"feishu:{nonce}:{timestamp}", now, replays)
    message = _json_object(FeishuCipher(settings.aes_key).decrypt(encrypted).encode())
    _check_feishu_token(settings, message)
    if message.get("type") == "url_verification":  # the console's check of the URL: not signed
        return Verified(Answer(codec.dumps({"challenge": message.get("challenge")}), "application/json"), None, None)
    if not is_signed:
        raise errors.Unauthorized(
            "callback refused: X-Lark-Signature, X-Lark-Request-Timestamp or X-Lark-Request-Nonce is missing;"
            " expected all three on an event",
            code="oa.signature_missing",
        )
    return Verified(Answer(b"{}", "application/json"), feishu_event(message), replay_key)


def _check_feishu_token(settings: CallbackSettings, message: JsonObject) -> None:
    header = message.get("header")
    given = header.get("token") if isinstance(header, dict) else message.get("token")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), settings.token.encode()):
        raise errors.Unauthorized(
            "callback refused: the event's token is not the app's Verification Token", code="oa.token_invalid"
        )


def _check_signature(expected: str, given: str) -> None:
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
        raise errors.Unauthorized(
            "callback refused: the signature does not match the request; expected the platform's signature"
            " made with the trigger's token",
            code="oa.signature_invalid",
        )


def _check_fresh(settings: CallbackSettings, timestamp: str, key: str, now: datetime, replays: Replays) -> str:
    """Refuse a timestamp outside `max_age` and a nonce seen within it; return the replay key."""
    if not timestamp.isdigit():
        raise errors.InvalidInput(
            f"callback refused: timestamp {errors.redact(timestamp)} is not a number; expected Unix time",
            code="oa.stale",
        )
    seconds = int(timestamp) / 1000 if len(timestamp) > 11 else int(timestamp)  # DingTalk sends milliseconds
    age = abs(now.timestamp() - seconds)
    if age > settings.max_age.total_seconds():
        raise errors.InvalidInput(
            f"callback refused: its timestamp is {age:.0f} s from now;"
            f" expected within {settings.max_age.total_seconds():.0f} s (trigger.oa.max_age)",
            code="oa.stale",
        )
    if replays.is_seen(key, now):
        raise errors.Conflict(
            "callback refused: this nonce and timestamp were already delivered; a platform's retry carries new ones",
            code="oa.replayed",
        )
    return key


def _json_object(raw: bytes) -> JsonObject:
    try:
        value = codec.parse_untrusted(raw)
    except errors.PayloadInvalid as exc:
        raise errors.PayloadInvalid(f"the callback body is not JSON: {exc.message}", code="oa.payload") from None
    if not isinstance(value, dict):
        raise errors.PayloadInvalid("the callback body is not a JSON object; expected {…}", code="oa.payload")
    return value


def _text_field(fields: Mapping[str, Json], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        raise errors.PayloadInvalid(
            f"the callback body has no {name} field; expected the encrypted message", code="oa.payload"
        )
    return value
