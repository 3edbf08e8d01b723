"""The cost of verifying an OA approval callback, beside a signed webhook's HMAC check of the same event.

Usage: .venv/bin/python benchmarks/oa_callbacks.py [--calls 2000] [--rounds 5]

For DingTalk, WeCom and Feishu, `--calls` deliveries of one approval event are built beforehand as
the platform sends them (fresh nonce each, encrypted, signed; tests/support/oa_platforms.py); each
round times `oa.verify_callback` over them (signature, freshness, nonce, decryption, parsing, the
platform's answer — DingTalk's is encrypted and signed too) and, side by side, the webhook
trigger's HMAC-SHA256 check of the plain JSON event with `hmac.compare_digest`. Rounds alternate;
medians per callback are printed and saved to benchmarks/results/oa-callbacks-<time>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.oa_platforms import DingTalkSender, FeishuSender, WeComSender, aes_key

from seamflow import oa

EVENT = {
    "EventType": "bpms_instance_change",
    "processInstanceId": "5d8f1a3c-7e92-4b60-a1d4-9c3e5f7a2b81",
    "type": "finish",
    "result": "agree",
    "processCode": "PROC-9A2C4E6F-REIMB",
    "staffId": "wangfang02",
    "title": "王芳提交的报销：上海客户拜访差旅费 1280.50 元",
}
WECOM_XML = (
    "<xml><ToUserName>ww5f2a9c3e71d0b846</ToUserName><FromUserName>sys</FromUserName><CreateTime>1765101600</CreateTime>"
    "<MsgType>event</MsgType><Event>sys_approval_change</Event><AgentID>3010040</AgentID><ApprovalInfo>"
    "<SpNo>202612070017</SpNo><SpName>费用报销</SpName><SpStatus>2</SpStatus><TemplateId>C4RbNgKQ3JLa</TemplateId>"
    "<Applyer><UserId>LiuYang</UserId><Party>3</Party></Applyer><StatuChangeEvent>2</StatuChangeEvent></ApprovalInfo></xml>"
)
FEISHU_EVENT = {
    "uuid": "8b7e4cf2a1d93e5f60c1b2a3d4e5f607",
    "token": "fs-verification-6d0c",
    "ts": "1765101600.431",
    "type": "event_callback",
    "event": {
        "type": "approval_instance",
        "instance_code": "81D31358-93AF-92D6-7425-01A5D67C4E71",
        "approval_code": "7C468A54-8745-2245-9675-08B7C63E7A85",
        "status": "APPROVED",
    },
}


def deliveries(platform: str, calls: int) -> tuple[oa.CallbackSettings, list[oa.CallbackRequest]]:
    if platform == "dingtalk":
        ding = DingTalkSender("dt-token-4e7a", aes_key(), "dingoa5x7r2k9m")
        built = [ding.request(EVENT) for _ in range(calls)]
        settings = oa.CallbackSettings("dingtalk", ding.token, ding.key, ding.app_key)
        return settings, [oa.CallbackRequest("POST", dict(parse_qsl(q)), {}, b) for q, b in built]
    if platform == "wecom":
        wecom = WeComSender("wc-token-81b2", aes_key(), "ww5f2a9c3e71d0b846")
        built = [wecom.request(WECOM_XML) for _ in range(calls)]
        settings = oa.CallbackSettings("wecom", wecom.token, wecom.key, wecom.corp_id)
        return settings, [oa.CallbackRequest("POST", dict(parse_qsl(q)), {}, b) for q, b in built]
    feishu = FeishuSender("fs-verification-6d0c", "fs-encrypt-key-2f9e71")
    requests = []
    for _ in range(calls):
        headers, body = feishu.request(FEISHU_EVENT)
        requests.append(oa.CallbackRequest("POST", {}, {k.lower(): v for k, v in headers.items()}, body))
    return oa.CallbackSettings("feishu", feishu.verification_token, feishu.encrypt_key), requests


def timed(work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    secret = b"crm-webhook-secret-5d1e8a"
    body = json.dumps(EVENT, ensure_ascii=False).encode()
    signature = hmac.new(secret, body, hashlib.sha256).hexdigest()

    def webhook() -> None:
        for _ in range(args.calls):
            expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(signature.encode(), expected.encode())
            json.loads(body)

    results: dict[str, object] = {"calls": args.calls, "rounds": args.rounds, "platforms": {}}
    webhook_s: list[float] = []
    for platform in oa.PLATFORMS:
        settings, requests = deliveries(platform, args.calls)
        per_round: list[float] = []
        for _ in range(args.rounds):

            def verify(requests: list[oa.CallbackRequest] = requests, settings: oa.CallbackSettings = settings) -> None:
                replays = oa.Replays()
                now = datetime.now(UTC)
                for request in requests:
                    assert oa.verify_callback(settings, request, now, replays).event is not None

            per_round.append(timed(verify) / args.calls)
            webhook_s.append(timed(webhook) / args.calls)
        median_us = statistics.median(per_round) * 1e6
        results["platforms"][platform] = {"median_us_per_callback": round(median_us, 1)}  # type: ignore[index]
    webhook_us = statistics.median(webhook_s) * 1e6
    results["webhook_hmac_median_us"] = round(webhook_us, 2)
    for platform, figures in results["platforms"].items():  # type: ignore[attr-defined]
        figures["ratio_to_webhook_hmac"] = round(figures["median_us_per_callback"] / webhook_us, 1)
        figures["callbacks_per_s_one_core"] = round(1e6 / figures["median_us_per_callback"])
        print(
            f"{platform:9} {figures['median_us_per_callback']:8.1f} µs per callback"
            f" ({figures['callbacks_per_s_one_core']:,}/s on one core; {figures['ratio_to_webhook_hmac']}×"
            " a webhook's HMAC check)"
        )
    print(f"webhook   {webhook_us:8.2f} µs per HMAC-SHA256 check and JSON parse of the same event")
    out = Path(__file__).parent / "results"
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")
    for name in (f"oa-callbacks-{stamp}.json", "oa-callbacks-latest.json"):
        (out / name).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"saved benchmarks/results/oa-callbacks-{stamp}.json")


if __name__ == "__main__":
    main()
