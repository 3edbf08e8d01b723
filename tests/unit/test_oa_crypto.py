"""OA callback crypto against the platforms' published sample vectors, and `verify_callback`'s refusals.

Vectors: DingTalk's callback debugging sample (token 123456, suite4xxxxxxxxxxxxxxx), WeCom's
WXBizMsgCrypt sample (QDG6eK, wx5823bf96d3bd56c7: the GET verification and the POST message),
Feishu's event decryption sample ("test key" → "hello world").
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from seamflow import errors, oa
from tests.support.oa_platforms import DingTalkSender, FeishuSender, WeComSender, aes_key

DINGTALK_ENCRYPT = (
    "1a3NBxmCFwkCJvfoQ7WhJHB+iX3qHPsc9JbaDznE1i03peOk1LaOQoRz3+nlyGNhwmwJ3vDMG+OzrHMeiZI7gTRWVdUBmfxjZ8Ej23JVYa9VrYeJ5as7"
    "XM/ZpulX8NEQis44w53h1qAgnC3PRzM7Zc/D6Ibr0rgUathB6zRHP8PYrfgnNOS9PhSBdHlegK+AGGanfwjXuQ9+0pZcy0w9lQ=="
)
WECOM_KEY, WECOM_CORP = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
WECOM_ECHO = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
WECOM_MESSAGE = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TU"
    "UkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ek"
    "UNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rU"
    "PA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN"
    "+E7Q=="
)


def test_dingtalk_sample_vector_signs_and_decrypts() -> None:
    assert oa.message_signature("123456", "1445827045067", "nEXhMP4r", DINGTALK_ENCRYPT) == (
        "5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0"
    )
    cipher = oa.MessageCipher("4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij", "suite4xxxxxxxxxxxxxxx")
    assert json.loads(cipher.decrypt(DINGTALK_ENCRYPT)) == {
        "EventType": "check_create_suite_url",
        "Random": "LPIdSnlF",
        "TestSuiteKey": "suite4xxxxxxxxxxxxxxx",
    }


def test_wecom_sample_vectors_verify_the_url_and_decrypt_the_message() -> None:
    cipher = oa.MessageCipher(WECOM_KEY, WECOM_CORP)
    assert oa.message_signature("QDG6eK", "1409659589", "263014780", WECOM_ECHO) == (
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
    )
    assert cipher.decrypt(WECOM_ECHO) == "1616140317555161061"
    assert oa.message_signature("QDG6eK", "1409659813", "1372623149", WECOM_MESSAGE) == (
        "477715d11cdb4164915debcba66cb864d751f3e6"
    )
    fields = oa.xml_fields(cipher.decrypt(WECOM_MESSAGE))
    assert fields["Content"] == "hello" and fields["MsgId"] == "4561255354251345929"


def test_feishu_sample_vector_decrypts() -> None:
    assert oa.FeishuCipher("test key").decrypt("P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=") == "hello world"
    with pytest.raises(errors.Unauthorized):
        oa.FeishuCipher("other key").decrypt("P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=")


def test_a_message_for_another_receiver_or_under_another_key_is_refused() -> None:
    with pytest.raises(errors.Unauthorized, match="another receiver id"):
        oa.MessageCipher(WECOM_KEY, "wwOtherCorp").decrypt(WECOM_MESSAGE)
    with pytest.raises(errors.Unauthorized) as refused:
        oa.MessageCipher(aes_key(), WECOM_CORP).decrypt(WECOM_MESSAGE)
    assert refused.value.code == "oa.decrypt_failed"


def test_a_key_that_is_not_an_encoding_aes_key_is_a_clear_error() -> None:
    with pytest.raises(errors.InvalidInput, match="43 characters") as bad:
        oa.MessageCipher("short", "ding123", where="trigger.oa.aes_key")
    assert bad.value.code == "oa.key_invalid"
    assert "short" not in str(bad.value)


NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
DING = DingTalkSender("ding-token-7f3a", aes_key(), "dingoa8k2m4n6p")
DING_SETTINGS = oa.CallbackSettings("dingtalk", DING.token, DING.key, DING.app_key)
APPROVED = {
    "EventType": "bpms_instance_change",
    "processInstanceId": "a3c5e7f9-1b2d-4e6f-8a0c-2e4f6a8c0e12",
    "type": "finish",
    "result": "agree",
    "processCode": "PROC-REIMBURSE-01",
    "staffId": "zhangwei01",
}


def _dingtalk(query: str, body: bytes) -> oa.CallbackRequest:
    pairs = dict(p.split("=", 1) for p in query.split("&"))
    return oa.CallbackRequest("POST", pairs, {"content-type": "application/json"}, body)


def test_dingtalk_approval_is_read_into_the_common_shape_and_answered_with_an_encrypted_success() -> None:
    query, body = DING.request(APPROVED, timestamp_ms=int(NOW.timestamp() * 1000))
    verified = oa.verify_callback(DING_SETTINGS, _dingtalk(query, body), NOW, oa.Replays())
    assert verified.event is not None
    shape = verified.event.as_body()
    assert shape["status"] == "approved" and shape["instance_id"] == APPROVED["processInstanceId"]
    assert shape["process_code"] == "PROC-REIMBURSE-01" and shape["raw"] == APPROVED
    assert shape["event_id"] == "bpms_instance_change:a3c5e7f9-1b2d-4e6f-8a0c-2e4f6a8c0e12:finish:agree"
    assert DING.decrypt_answer(json.loads(verified.answer.body)) == "success"


def test_dingtalk_check_url_is_a_handshake_without_an_event() -> None:
    query, body = DING.request({"EventType": "check_url"}, timestamp_ms=int(NOW.timestamp() * 1000))
    verified = oa.verify_callback(DING_SETTINGS, _dingtalk(query, body), NOW, oa.Replays())
    assert verified.event is None
    assert DING.decrypt_answer(json.loads(verified.answer.body)) == "success"


def test_forged_signature_wrong_key_stale_and_replayed_callbacks_are_refused() -> None:
    stamp = int(NOW.timestamp() * 1000)
    query, body = DING.request(APPROVED, timestamp_ms=stamp)
    forged = query.replace("signature=", "signature=0")
    with pytest.raises(errors.Unauthorized) as refused:
        oa.verify_callback(DING_SETTINGS, _dingtalk(forged, body), NOW, oa.Replays())
    assert refused.value.code == "oa.signature_invalid"
    assert DING.token not in str(refused.value) and DING.key not in str(refused.value)

    other_key = oa.CallbackSettings("dingtalk", DING.token, aes_key(), DING.app_key)
    with pytest.raises(errors.Unauthorized) as wrong:
        oa.verify_callback(other_key, _dingtalk(query, body), NOW, oa.Replays())
    assert wrong.value.code == "oa.decrypt_failed"

    old_query, old_body = DING.request(APPROVED, timestamp_ms=stamp - 10 * 60 * 1000)
    with pytest.raises(errors.InvalidInput) as stale:
        oa.verify_callback(DING_SETTINGS, _dingtalk(old_query, old_body), NOW, oa.Replays())
    assert stale.value.code == "oa.stale" and "600 s from now" in str(stale.value)

    replays = oa.Replays()
    first = oa.verify_callback(DING_SETTINGS, _dingtalk(query, body), NOW, replays)
    assert first.replay_key is not None
    replays.remember(first.replay_key, NOW + timedelta(minutes=5))
    with pytest.raises(errors.Conflict) as again:
        oa.verify_callback(DING_SETTINGS, _dingtalk(query, body), NOW, replays)
    assert again.value.code == "oa.replayed"


def test_wecom_verification_and_approval_change() -> None:
    sender = WeComSender("wecom-token-91", aes_key(), "ww5f2a9c3e71d0b846")
    settings = oa.CallbackSettings("wecom", sender.token, sender.key, sender.corp_id)
    verification = dict(p.split("=", 1) for p in sender.verification("1616140317555161061").split("&"))
    from urllib.parse import unquote

    query = {k: unquote(v) for k, v in verification.items()}
    answer = oa.verify_callback(settings, oa.CallbackRequest("GET", query, {}, b""), datetime.now(UTC), oa.Replays())
    assert answer.event is None and answer.answer.body == b"1616140317555161061"

    xml = (
        "<xml><ToUserName>ww5f2a9c3e71d0b846</ToUserName><FromUserName>sys</FromUserName><CreateTime>1765101600</CreateTime>"
        "<MsgType>event</MsgType><Event>sys_approval_change</Event><AgentID>3010040</AgentID><ApprovalInfo>"
        "<SpNo>202612070001</SpNo><SpName>费用报销</SpName><SpStatus>3</SpStatus><TemplateId>C4RbNgKQ3JLa</TemplateId>"
        "<Applyer><UserId>LiNa</UserId><Party>2</Party></Applyer><StatuChangeEvent>3</StatuChangeEvent></ApprovalInfo></xml>"
    )
    raw_query, body = sender.request(xml)
    pairs = {k: unquote(v) for k, v in (p.split("=", 1) for p in raw_query.split("&"))}
    verified = oa.verify_callback(
        settings, oa.CallbackRequest("POST", pairs, {}, body), datetime.now(UTC), oa.Replays()
    )
    assert verified.event is not None
    assert (verified.event.status, verified.event.instance_id, verified.event.type) == (
        "rejected",
        "202612070001",
        "sys_approval_change",
    )
    assert verified.event.raw["ApprovalInfo"]["Applyer"]["UserId"] == "LiNa"  # type: ignore[index, call-overload]


def test_wecom_xml_with_a_dtd_is_refused_not_expanded() -> None:
    with pytest.raises(errors.PayloadInvalid) as refused:
        oa.xml_fields('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>')
    assert refused.value.code == "oa.payload"


def test_feishu_challenge_needs_the_verification_token_and_events_need_the_signature() -> None:
    sender = FeishuSender("feishu-verify-3c9d", "feishu-encrypt-key-8e1b")
    settings = oa.CallbackSettings("feishu", sender.verification_token, sender.encrypt_key)
    now = datetime.now(UTC)
    headers, body = sender.request(
        {"challenge": "ajls384kdjx98XX", "token": sender.verification_token, "type": "url_verification"}
    )
    verified = oa.verify_callback(settings, oa.CallbackRequest("POST", {}, {}, body), now, oa.Replays())
    assert verified.event is None and json.loads(verified.answer.body) == {"challenge": "ajls384kdjx98XX"}

    _, stranger = sender.request({"challenge": "x", "token": "someone-else", "type": "url_verification"})
    with pytest.raises(errors.Unauthorized) as refused:
        oa.verify_callback(settings, oa.CallbackRequest("POST", {}, {}, stranger), now, oa.Replays())
    assert refused.value.code == "oa.token_invalid"

    event = {
        "uuid": "41b5f371157e3a7d2cb2ef0c3a5d1f7e",
        "token": sender.verification_token,
        "ts": "1765101600.123",
        "type": "event_callback",
        "event": {
            "type": "approval_instance",
            "instance_code": "81D31358-93AF-92D6-7425-01A5D67C4E71",
            "approval_code": "7C468A54-8745-2245-9675-08B7C63E7A85",
            "status": "APPROVED",
        },
    }
    headers, body = sender.request(event)
    lowered = {k.lower(): v for k, v in headers.items()}
    verified = oa.verify_callback(settings, oa.CallbackRequest("POST", {}, lowered, body), now, oa.Replays())
    assert verified.event is not None and verified.event.status == "approved"
    assert verified.event.event_id == "41b5f371157e3a7d2cb2ef0c3a5d1f7e"
    unsigned = {k: v for k, v in lowered.items() if k != "x-lark-signature"}
    with pytest.raises(errors.Unauthorized) as missing:
        oa.verify_callback(settings, oa.CallbackRequest("POST", {}, unsigned, body), now, oa.Replays())
    assert missing.value.code == "oa.signature_missing"


def test_a_wecom_echostr_whose_plus_signs_arrived_as_spaces_still_verifies() -> None:
    from urllib.parse import parse_qsl

    sender = WeComSender("wecom-token-91", aes_key(), "ww5f2a9c3e71d0b846")
    settings = oa.CallbackSettings("wecom", sender.token, sender.key, sender.corp_id)
    for _ in range(20):  # until the random ciphertext has a "+"
        raw = sender.verification("5274819")
        if "%2B" in raw:
            break
    query = dict(parse_qsl(raw.replace("%2B", "+")))  # sent unencoded: "+" reads as " "
    assert " " in query["echostr"]
    answer = oa.verify_callback(settings, oa.CallbackRequest("GET", query, {}, b""), datetime.now(UTC), oa.Replays())
    assert answer.answer.body == b"5274819"


@pytest.mark.parametrize(
    ("message", "status", "event_id"),
    [
        (
            {"EventType": "bpms_instance_change", "processInstanceId": "p1", "type": "start"},
            "running",
            "bpms_instance_change:p1:start",
        ),
        (
            {"EventType": "bpms_instance_change", "processInstanceId": "p1", "type": "finish", "result": "refuse"},
            "rejected",
            "bpms_instance_change:p1:finish:refuse",
        ),
        (
            {"EventType": "bpms_instance_change", "processInstanceId": "p1", "type": "terminate"},
            "withdrawn",
            "bpms_instance_change:p1:terminate",
        ),
        (
            {
                "EventType": "bpms_task_change",
                "processInstanceId": "p1",
                "type": "finish",
                "result": "agree",
                "taskId": 64820119,
            },
            "running",
            "bpms_task_change:p1:finish:agree:64820119",
        ),
    ],
)
def test_dingtalk_events_map_to_one_status_word_and_a_stable_event_id(
    message: dict[str, object], status: str, event_id: str
) -> None:
    query, body = DING.request(message, timestamp_ms=int(NOW.timestamp() * 1000))
    event = oa.verify_callback(DING_SETTINGS, _dingtalk(query, body), NOW, oa.Replays()).event
    assert event is not None and (event.status, event.event_id) == (status, event_id)
