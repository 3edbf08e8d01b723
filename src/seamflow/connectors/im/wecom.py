"""The `wecom` connector: a WeCom (企业微信) group robot, whose webhook key is its only credential.

Bodies follow WeCom's group robot API: `text` with mention lists, `markdown` and a
`template_card` text notice. WeCom robots have no signing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import BaseModel

from seamflow.connectors.base import Action
from seamflow.connectors.im.messages import CardInput, MarkdownInput, TextInput, robot_actions
from seamflow.connectors.im.robot import RobotConfig, RobotConnector, invalid_input
from seamflow.ids import Json, JsonObject

__all__ = ["WeComConfig", "WeComConnector"]

_MAX_JUMPS = 3
"""A text notice card holds at most three links (`jump_list`)."""


class WeComConfig(RobotConfig):
    """A WeCom robot: `webhook` is `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`."""


class WeComConnector(RobotConnector):
    """Posts to a WeCom group robot: actions `text`, `markdown`, `card` (a `text_notice` template card).

    None is idempotent: WeCom takes no idempotency key. Mentions in `text`: `mobiles`,
    `user_ids`, `at_all`; in `markdown` only `user_ids` (written as `<@userid>`).
    """

    kind: ClassVar[str] = "wecom"
    Config: ClassVar[type[BaseModel]] = WeComConfig
    actions: ClassVar[Mapping[str, Action]] = robot_actions("WeCom", has_card=True)
    transient_codes: ClassVar[frozenset[int]] = frozenset({-1, 45009})
    """-1: system busy; 45009: over the API rate limit (20 messages a minute per robot)."""

    def body(self, action: str, inputs: BaseModel, where: str) -> JsonObject:
        """Return the WeCom JSON body for `action`."""
        if isinstance(inputs, TextInput):
            text: JsonObject = {"content": inputs.content}
            users: list[Json] = [*inputs.user_ids, *(["@all"] if inputs.at_all else [])]
            if users:
                text["mentioned_list"] = users
            if inputs.mobiles:
                text["mentioned_mobile_list"] = list[Json](inputs.mobiles)
            return {"msgtype": "text", "text": text}
        if isinstance(inputs, MarkdownInput):
            if inputs.mobiles or inputs.at_all:
                raise invalid_input("WeCom markdown mentions only user_ids, not mobiles or at_all", where)
            mentions = "".join(f"<@{user}>" for user in inputs.user_ids)
            content = f"### {inputs.title}\n{inputs.text}" + (f"\n{mentions}" if mentions else "")
            return {"msgtype": "markdown", "markdown": {"content": content}}
        assert isinstance(inputs, CardInput)
        if not inputs.buttons or len(inputs.buttons) > _MAX_JUMPS:
            raise invalid_input(f"a WeCom card needs 1 to {_MAX_JUMPS} buttons, got {len(inputs.buttons)}", where)
        card: JsonObject = {
            "card_type": "text_notice",
            "main_title": {"title": inputs.title},
            "sub_title_text": inputs.text,
            "jump_list": [{"type": 1, "title": b.title, "url": b.url} for b in inputs.buttons],
            "card_action": {"type": 1, "url": inputs.buttons[0].url},
        }
        return {"msgtype": "template_card", "template_card": card}
