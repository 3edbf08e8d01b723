"""The `feishu` connector: a Feishu/Lark (飞书) group's custom bot, with optional signature verification.

Bodies follow Feishu's custom bot API: `text`, and `interactive` cards with a markdown element.
With a signing secret each body carries `timestamp` (seconds, a string) and `sign`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import ClassVar

import yarl
from pydantic import BaseModel, SecretStr

from seamflow import clock
from seamflow.connectors.base import Action
from seamflow.connectors.im.messages import CardInput, MarkdownInput, Mentions, TextInput, robot_actions
from seamflow.connectors.im.robot import RobotConfig, RobotConnector, invalid_input
from seamflow.ids import Json, JsonObject

__all__ = ["FeishuConfig", "FeishuConnector", "feishu_signature"]


class FeishuConfig(RobotConfig):
    """A Feishu bot: `webhook` is `https://open.feishu.cn/open-apis/bot/v2/hook/<token>`."""

    secret: SecretStr | None = None
    """The signing secret when the bot's security setting is 签名校验 (signature verification)."""

    def secrets(self) -> list[str]:
        """Every secret value of the config, to mask in messages."""
        return super().secrets() + ([self.secret.get_secret_value()] if self.secret else [])


def feishu_signature(timestamp_s: int, secret: str) -> str:
    """Return Feishu's `sign`: base64 of HMAC-SHA256 keyed by `"<timestamp>\\n<secret>"` over an empty message."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FeishuConnector(RobotConnector):
    """Posts to a Feishu custom bot: actions `text`, `markdown` and `card` (both `interactive` cards).

    None is idempotent: Feishu takes no idempotency key. Mentions: `user_ids` (open_id) and
    `at_all`; a custom bot cannot mention by mobile.
    """

    kind: ClassVar[str] = "feishu"
    Config: ClassVar[type[BaseModel]] = FeishuConfig
    actions: ClassVar[Mapping[str, Action]] = robot_actions("Feishu", has_card=True)
    code_field: ClassVar[str] = "code"
    message_field: ClassVar[str] = "msg"
    transient_codes: ClassVar[frozenset[int]] = frozenset({9499, 11232})
    """9499: too many requests; 11232: message frequency limited (100 a minute, 5 a second per bot)."""

    def __init__(self) -> None:
        super().__init__()
        self._secret: str | None = None

    def _configure(self, config: RobotConfig) -> None:
        assert isinstance(config, FeishuConfig)
        self._secret = config.secret.get_secret_value() if config.secret else None

    def body(self, action: str, inputs: BaseModel, where: str) -> JsonObject:
        """Return the Feishu JSON body for `action`."""
        if isinstance(inputs, Mentions) and inputs.mobiles:
            raise invalid_input("a Feishu custom bot mentions by user_ids (open_id) or at_all, not mobiles", where)
        if isinstance(inputs, TextInput):
            ats = [f'<at user_id="{user}"></at>' for user in _mentioned(inputs)]
            return {"msg_type": "text", "content": {"text": " ".join([inputs.content, *ats])}}
        assert isinstance(inputs, MarkdownInput | CardInput)
        text = inputs.text
        if isinstance(inputs, MarkdownInput):
            text = " ".join([text, *(f"<at id={user}></at>" for user in _mentioned(inputs))])
        elements: list[Json] = [{"tag": "markdown", "content": text}]
        if isinstance(inputs, CardInput) and inputs.buttons:
            buttons: list[Json] = [
                {"tag": "button", "text": {"tag": "plain_text", "content": b.title}, "type": "default", "url": b.url}
                for b in inputs.buttons
            ]
            elements.append({"tag": "action", "actions": buttons})
        card: JsonObject = {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": inputs.title}},
            "elements": elements,
        }
        return {"msg_type": "interactive", "card": card}

    def sign(self, url: yarl.URL, body: JsonObject) -> yarl.URL:
        """Add `timestamp` (seconds, as a string) and `sign` to the body when the bot has a secret."""
        if self._secret is not None:
            stamp = int(clock.now().timestamp())
            body["timestamp"] = str(stamp)
            body["sign"] = feishu_signature(stamp, self._secret)
        return url


def _mentioned(inputs: Mentions) -> list[str]:
    return [*inputs.user_ids, *(["all"] if inputs.at_all else [])]
