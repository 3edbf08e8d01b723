"""Local stand-ins for the open platforms of DingTalk, WeCom, Feishu and Kingdee K/3 Cloud.

Each follows the platform's published documents (the URL is cited beside each route): the
sign-in, the request and answer shapes, the error codes and the token lifetime. They run on
127.0.0.1 with one small API, shared by every test that needs them (connectors, approvals):

```python
async with DingTalk.start() as dingtalk:           # also WeCom, Feishu, Kingdee
    dingtalk.base_url                               # http://127.0.0.1:PORT
    dingtalk.requests                               # every request received, in order (Recorded)
    dingtalk.token_requests                         # how many sign-ins were answered with a token
    dingtalk.revoke_tokens()                        # every token (session) issued so far stops working
    dingtalk.fail_next(90018, "…")                  # the next API call answers this error code
    dingtalk.per_second = 20                        # refuse calls beyond this rate, as the platform does
```
"""

from __future__ import annotations

from tests.support.platforms.base import Platform, Recorded
from tests.support.platforms.dingtalk import DingTalk
from tests.support.platforms.feishu import Feishu
from tests.support.platforms.kingdee import Kingdee
from tests.support.platforms.wecom import WeCom

__all__ = ["DingTalk", "Feishu", "Kingdee", "Platform", "Recorded", "WeCom"]
