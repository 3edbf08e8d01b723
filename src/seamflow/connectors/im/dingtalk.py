"""The `dingtalk` connector: a DingTalk (钉钉) group's custom robot, with optional signing (加签).

Bodies follow DingTalk's custom robot API: `text`, `markdown` and `actionCard` messages with an
`at` block. With a signing secret each request carries `timestamp` (ms) and `sign` in its query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote_plus

import yarl
from pydantic import BaseModel, SecretStr

from seamflow import clock
from seamflow.connectors.base import Action
from seamflow.connectors.im.messages import CardInput, MarkdownInput, Mentions, TextInput, robot_actions
from seamflow.connectors.im.robot import RobotConfig, RobotConnector
from seamflow.ids import Json, JsonObject

__all__ = ["DingTalkConfig", "DingTalkConnector", "dingtalk_signature"]


class DingTalkConfig(RobotConfig):
    """A DingTalk robot: `webhook` is `https://oapi.dingtalk.com/robot/send?access_token=…`."""

    secret: SecretStr | None = None
    """The signing secret (`SEC…`) when the robot's security setting is 加签."""

    def secrets(self) -> list[str]:
        """Every secret value of the config, to mask in messages."""
        return super().secrets() + ([self.secret.get_secret_value()] if self.secret else [])


def dingtalk_signature(timestamp_ms: int, secret: str) -> str:
    """Return DingTalk's `sign`: base64 of HMAC-SHA256 over `"<timestamp>\\n<secret>"` keyed by the secret.

    The value is not URL-encoded yet.
    """
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class DingTalkConnector(RobotConnector):
    """Posts to a DingTalk custom robot: actions `text`, `markdown`, `card` (an `actionCard`).

    None is idempotent: DingTalk takes no idempotency key. Mentions: `mobiles`, `user_ids`, `at_all`.
    """

    kind: ClassVar[str] = "dingtalk"
    Config: ClassVar[type[BaseModel]] = DingTalkConfig
    actions: ClassVar[Mapping[str, Action]] = robot_actions("DingTalk", has_card=True)
    transient_codes: ClassVar[frozenset[int]] = frozenset({-1, 130101})
    """-1: system busy; 130101: sending too fast (20 messages a minute per robot)."""

    def __init__(self) -> None:
        super().__init__()
        self._secret: str | None = None

    def _configure(self, config: RobotConfig) -> None:
        assert isinstance(config, DingTalkConfig)
        self._secret = config.secret.get_secret_value() if config.secret else None

    def body(self, action: str, inputs: BaseModel, where: str) -> JsonObject:
        """Return the DingTalk JSON body for `action`."""
        if isinstance(inputs, TextInput):
            return {"msgtype": "text", "text": {"content": inputs.content}, "at": _at(inputs)}
        if isinstance(inputs, MarkdownInput):
            return {"msgtype": "markdown", "markdown": {"title": inputs.title, "text": inputs.text}, "at": _at(inputs)}
        assert isinstance(inputs, CardInput)
        card: JsonObject = {"title": inputs.title, "text": inputs.text}
        if len(inputs.buttons) == 1:
            card |= {"singleTitle": inputs.buttons[0].title, "singleURL": inputs.buttons[0].url}
        else:
            card |= {"btnOrientation": "0", "btns": [{"title": b.title, "actionURL": b.url} for b in inputs.buttons]}
        return {"msgtype": "actionCard", "actionCard": card}

    def sign(self, url: yarl.URL, body: JsonObject) -> yarl.URL:
        """Append `&timestamp=<ms>&sign=<url-encoded signature>` when the robot has a secret."""
        if self._secret is None:
            return url
        stamp = int(clock.now().timestamp() * 1000)
        sign = quote_plus(dingtalk_signature(stamp, self._secret))
        separator = "&" if url.raw_query_string else "?"
        return yarl.URL(f"{url}{separator}timestamp={stamp}&sign={sign}", encoded=True)


def _at(inputs: Mentions) -> Json:
    """The `at` block; in markdown a mention shows only if the text contains `@<mobile>` too."""
    return {"atMobiles": list(inputs.mobiles), "atUserIds": list(inputs.user_ids), "isAtAll": inputs.at_all}
