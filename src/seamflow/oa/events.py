"""Approval-instance events as the three platforms deliver them, made into one shape for flows.

A flow sees `event.body` = `{platform, type, event_id, instance_id, process_code, status, raw}`:
`status` is one word across platforms (running, approved, rejected, withdrawn, revoked, deleted,
paid), `raw` is the platform's decrypted event exactly as sent (its strings stay strings), and
`event_id` is what a retried delivery repeats, so it is the trigger's default dedupe key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from seamflow import codec, errors
from seamflow.ids import Json, JsonObject

__all__ = ["OaEvent", "dingtalk_event", "feishu_event", "wecom_event", "xml_fields"]

_DINGTALK_STATUS = {"start": "running", "terminate": "withdrawn"}
_DINGTALK_RESULT = {"agree": "approved", "refuse": "rejected"}
_WECOM_STATUS = {"1": "running", "2": "approved", "3": "rejected", "4": "withdrawn", "6": "revoked", "7": "deleted"}
_WECOM_STATUS |= {"10": "paid"}
_FEISHU_STATUS = {"PENDING": "running", "APPROVED": "approved", "REJECTED": "rejected", "CANCELED": "withdrawn"}
_FEISHU_STATUS |= {"DELETED": "deleted", "REVERTED": "revoked"}


@dataclass(frozen=True, slots=True)
class OaEvent:
    """One approval event from an OA platform, in the shape flows read."""

    platform: str
    type: str
    """The platform's event type: bpms_instance_change, sys_approval_change, approval_instance, …"""
    event_id: str
    """What a retried delivery repeats: the default dedupe key (with the platform in front)."""
    instance_id: str | None
    process_code: str | None
    """The approval form: DingTalk processCode, WeCom TemplateId, Feishu approval_code."""
    status: str | None
    raw: Json

    def as_body(self) -> JsonObject:
        """`event.body` of the run this event starts."""
        return {
            "platform": self.platform,
            "type": self.type,
            "event_id": self.event_id,
            "instance_id": self.instance_id,
            "process_code": self.process_code,
            "status": self.status,
            "raw": self.raw,
        }


def dingtalk_event(message: JsonObject) -> OaEvent:
    """Read a decrypted DingTalk event (`EventType` bpms_instance_change, bpms_task_change, …)."""
    kind = _text(message.get("EventType")) or "unknown"
    instance = _text(message.get("processInstanceId"))
    change, result = _text(message.get("type")) or "", _text(message.get("result")) or ""
    if kind == "bpms_instance_change":
        status = _DINGTALK_RESULT.get(result) if change == "finish" else _DINGTALK_STATUS.get(change)
    else:
        status = "running" if kind == "bpms_task_change" else None
    if instance:
        event_id = ":".join(p for p in (kind, instance, change, result, _text(message.get("taskId"))) if p)
    else:
        event_id = f"{kind}:{_digest(message)}"
    return OaEvent("dingtalk", kind, event_id, instance, _text(message.get("processCode")), status, message)


def wecom_event(fields: JsonObject) -> OaEvent:
    """Read a decrypted WeCom message (`Event` sys_approval_change with its `ApprovalInfo`)."""
    kind = _text(fields.get("Event")) or _text(fields.get("MsgType")) or "unknown"
    info = fields.get("ApprovalInfo")
    info = info if isinstance(info, dict) else {}
    number = _text(info.get("SpNo"))
    state, change = _text(info.get("SpStatus")) or "", _text(info.get("StatuChangeEvent")) or ""
    created = _text(fields.get("CreateTime")) or ""
    if number:
        event_id = f"{kind}:{number}:{state}:{change}:{created}"
    else:
        event_id = f"{kind}:{_digest(fields)}"
    status = _WECOM_STATUS.get(state) if number else None
    return OaEvent("wecom", kind, event_id, number, _text(info.get("TemplateId")), status, fields)


def feishu_event(message: JsonObject) -> OaEvent:
    """Read a decrypted Feishu event: schema 1.0 (`uuid`, `event.type`) or 2.0 (`header.event_id`)."""
    header = message.get("header")
    header = header if isinstance(header, dict) else {}
    event = message.get("event")
    event = event if isinstance(event, dict) else {}
    kind = _text(header.get("event_type")) or _text(event.get("type")) or "unknown"
    event_id = _text(header.get("event_id")) or _text(message.get("uuid")) or f"{kind}:{_digest(message)}"
    instance = _text(event.get("instance_code"))
    state = _text(event.get("status"))
    status = _FEISHU_STATUS.get(state) if state else None
    return OaEvent("feishu", kind, event_id, instance, _text(event.get("approval_code")), status, message)


def xml_fields(text: str) -> JsonObject:
    """A WeCom XML message as nested objects: leaves are strings, repeated tags become lists.

    Raises:
        errors.PayloadInvalid: not XML, or XML with a DTD or entities (refused, never expanded).
    """
    try:
        root = ElementTree.fromstring(text, forbid_dtd=True)
    except (DefusedXmlException, ElementTree.ParseError) as exc:
        raise errors.PayloadInvalid(
            f"the message is not plain XML ({type(exc).__name__}); expected <xml>…</xml> without a DTD",
            code="oa.payload",
        ) from None
    value = _element(root)
    return value if isinstance(value, dict) else {}


def _element(node: Element) -> Json:
    children = list(node)
    if not children:
        return node.text or ""
    out: dict[str, Json] = {}
    for child in children:
        value = _element(child)
        if child.tag in out:
            existing = out[child.tag]
            out[child.tag] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            out[child.tag] = value
    return out


def _text(value: Json) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value) if str(value) else None


def _digest(value: Json) -> str:
    return hashlib.sha256(codec.dumps(value)).hexdigest()[:32]
