"""A simulated DingTalk for `seamflow demo`: the approval API, work notifications, a group robot, and
approvers who decide each reimbursement at a configurable pace and post DingTalk's encrypted callback.

It speaks DingTalk's documented formats (`gettoken`, `topapi/processinstance/create|get`,
`topapi/message/corpconversation/asyncsend_v2`, `robot/send`) and encrypts and signs each
`bpms_instance_change` callback as DingTalk does; like DingTalk it sometimes delivers a callback
twice, which Seamflow must take as one event.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from seamflow import oa

__all__ = ["Pace", "SimulatedDingTalk"]

_REFUSE_SHARE = 0.2
"""About one reimbursement in five is refused."""
_RETRY_SHARE = 0.25
"""About one callback in four is delivered twice, as DingTalk's retries do."""


@dataclass(frozen=True, slots=True)
class Pace:
    """Seconds an approver takes to decide: a random time between `min_s` and `max_s`."""

    min_s: float
    max_s: float

    @classmethod
    def parse(cls, text: str) -> Pace:
        """Read `MIN:MAX` (or one number) in seconds.

        Raises:
            ValueError: not one or two non-negative numbers with MIN <= MAX.
        """
        low, _, high = text.partition(":")
        pace = cls(float(low), float(high or low))
        if pace.min_s < 0 or pace.max_s < pace.min_s:
            raise ValueError("expected MIN:MAX seconds with 0 <= MIN <= MAX, e.g. 1:4")
        return pace


@dataclass
class SimulatedDingTalk:
    """The local DingTalk of the demo; `figures` counts what happened for the summary."""

    app_key: str
    app_secret: str
    callback_token: str
    aes_key: str
    pace: Pace
    rng: random.Random
    callback_url: str = ""
    url: str = ""
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    figures: dict[str, int] = field(default_factory=dict)
    _tokens: set[str] = field(default_factory=set)
    _deciding: set[asyncio.Task[None]] = field(default_factory=set)
    _runner: Any = None

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        from aiohttp import web  # only the demo needs it; `seamflow --help` should not pay for it

        app = web.Application()
        app.router.add_get("/gettoken", self._token)
        app.router.add_post("/topapi/processinstance/create", self._create)
        app.router.add_post("/topapi/processinstance/get", self._get)
        app.router.add_post("/topapi/message/corpconversation/asyncsend_v2", self._notify)
        app.router.add_post("/robot/send", self._robot)
        self._runner = web.AppRunner(app, access_log=None)  # the access log would show access tokens
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        """Stop deciding and listening."""
        for task in list(self._deciding):
            task.cancel()
        await asyncio.gather(*self._deciding, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def pending(self) -> int:
        """Instances not decided yet."""
        return sum(1 for i in self.instances.values() if i["status"] == "RUNNING")

    def _count(self, name: str, n: int = 1) -> None:
        self.figures[name] = self.figures.get(name, 0) + n

    def _answer(self, body: dict[str, Any]) -> Any:
        from aiohttp import web

        return web.json_response(body)

    async def _token(self, request: Any) -> Any:
        if request.query.get("appkey") != self.app_key or request.query.get("appsecret") != self.app_secret:
            return self._answer({"errcode": 40089, "errmsg": "不合法的corpid或corpsecret"})
        token = secrets.token_hex(16)
        self._tokens.add(token)
        return self._answer({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    def _signed_in(self, request: Any) -> bool:
        return request.query.get("access_token", "") in self._tokens

    async def _create(self, request: Any) -> Any:
        if not self._signed_in(request):
            return self._answer({"errcode": 40014, "errmsg": "不合法的access_token"})
        body = await request.json()
        instance_id = f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}"
        self.instances[instance_id] = {
            "process_code": body["process_code"],
            "originator_userid": body["originator_user_id"],
            "form_component_values": body["form_component_values"],
            "status": "RUNNING",
            "result": "",
        }
        self._count("instances")
        task = asyncio.create_task(self._decide_later(instance_id))
        self._deciding.add(task)
        task.add_done_callback(self._deciding.discard)
        return self._answer({"errcode": 0, "errmsg": "ok", "process_instance_id": instance_id})

    async def _get(self, request: Any) -> Any:
        if not self._signed_in(request):
            return self._answer({"errcode": 40014, "errmsg": "不合法的access_token"})
        found = self.instances.get((await request.json()).get("process_instance_id", ""))
        if found is None:
            return self._answer({"errcode": 1, "errmsg": "审批实例不存在"})
        return self._answer({"errcode": 0, "errmsg": "ok", "process_instance": {"title": "报销", **found}})

    async def _notify(self, request: Any) -> Any:
        if not self._signed_in(request):
            return self._answer({"errcode": 40014, "errmsg": "不合法的access_token"})
        await request.read()
        self._count("work_notifications")
        return self._answer({"errcode": 0, "errmsg": "ok", "task_id": self.figures["work_notifications"]})

    async def _robot(self, request: Any) -> Any:
        await request.read()
        self._count("group_messages")
        return self._answer({"errcode": 0, "errmsg": "ok"})

    async def _decide_later(self, instance_id: str) -> None:
        """An approver decides after the pace; the callback goes out (sometimes twice)."""
        await asyncio.sleep(self.rng.uniform(self.pace.min_s, self.pace.max_s))
        found = self.instances[instance_id]
        is_refused = self.rng.random() < _REFUSE_SHARE
        found["status"], found["result"] = "COMPLETED", "refuse" if is_refused else "agree"
        self._count("refused" if is_refused else "approved")
        message = {
            "EventType": "bpms_instance_change",
            "processInstanceId": instance_id,
            "corpId": "ding8a2f5c7e9b1d3f60",
            "finishTime": int(time.time() * 1000),
            "type": "finish",
            "result": found["result"],
            "staffId": found["originator_userid"],
            "processCode": found["process_code"],
        }
        deliveries = 2 if self.rng.random() < _RETRY_SHARE else 1
        for _ in range(deliveries):
            await self._deliver(message)

    async def _deliver(self, message: dict[str, Any]) -> None:
        """Post one encrypted, signed delivery; DingTalk retries until it reads its encrypted "success"."""
        import aiohttp

        cipher = oa.MessageCipher(self.aes_key, self.app_key)
        for _ in range(5):
            encrypted = cipher.encrypt(json.dumps(message, ensure_ascii=False))
            stamp, nonce = str(int(time.time() * 1000)), secrets.token_hex(4)
            query = {"signature": oa.message_signature(self.callback_token, stamp, nonce, encrypted)}
            query |= {"timestamp": stamp, "nonce": nonce}
            try:
                async with (
                    aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client,
                    client.post(self.callback_url, params=query, json={"encrypt": encrypted}) as answer,
                ):
                    if answer.status == 200 and self._is_success(await answer.json()):
                        self._count("callbacks")
                        return
            except (aiohttp.ClientError, TimeoutError, ValueError):
                pass
            self._count("callback_retries")
            await asyncio.sleep(1)

    def _is_success(self, answer: dict[str, Any]) -> bool:
        expected = oa.message_signature(self.callback_token, answer["timeStamp"], answer["nonce"], answer["encrypt"])
        cipher = oa.MessageCipher(self.aes_key, self.app_key)
        return bool(expected == answer["msg_signature"] and cipher.decrypt(answer["encrypt"]) == "success")
