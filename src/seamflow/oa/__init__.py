"""Approvals decided in the company's OA system: DingTalk, WeCom and Feishu approval callbacks.

`cipher` and `feishu` hold each platform's documented callback encryption and signatures,
`events` reads their approval events into one shape for flows, and `callback` verifies one
request (signature, freshness, replay, decryption, URL-verification handshake). The `oa`
trigger (`api/oa_callbacks.py`) uses it; docs/howto/oa-approvals.md explains the setup.
"""

from __future__ import annotations

from seamflow.oa.callback import (
    PLATFORMS,
    Answer,
    CallbackRequest,
    CallbackSettings,
    Replays,
    Verified,
    verify_callback,
)
from seamflow.oa.cipher import MessageCipher, message_signature
from seamflow.oa.events import OaEvent, xml_fields
from seamflow.oa.feishu import FeishuCipher, feishu_signature

__all__ = [
    "PLATFORMS",
    "Answer",
    "CallbackRequest",
    "CallbackSettings",
    "FeishuCipher",
    "MessageCipher",
    "OaEvent",
    "Replays",
    "Verified",
    "feishu_signature",
    "message_signature",
    "verify_callback",
    "xml_fields",
]
