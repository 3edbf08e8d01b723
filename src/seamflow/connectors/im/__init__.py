"""IM group-robot connectors: `dingtalk`, `wecom` and `feishu` post notifications to a chat group.

`robot.py` holds the shared posting and verdicts, `messages.py` the action inputs, and one
module per platform its body format and signing. See docs/howto/connectors/im.md.
"""

from __future__ import annotations

from seamflow.connectors.im.dingtalk import DingTalkConnector
from seamflow.connectors.im.feishu import FeishuConnector
from seamflow.connectors.im.wecom import WeComConnector

__all__ = ["DingTalkConnector", "FeishuConnector", "WeComConnector"]
