"""The `dingtalk`, `wecom` and `feishu` robot connectors against a local robot server on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from seamflow import clock, errors
from seamflow.connectors import Connection, Connector, available_connectors
from seamflow.connectors.im import DingTalkConnector, FeishuConnector, WeComConnector
from seamflow.connectors.im.dingtalk import dingtalk_signature
from seamflow.connectors.im.robot import RobotConnector
from seamflow.ids import Json
from tests.support.im_robots import ImRobots

pytestmark = pytest.mark.asyncio(loop_scope="module")

TOKEN = "tok9f3c0a7e51d24b6c8e2f"
SECRET = "SECa1b2c3d4e5f6g7h8i9j0"
CLASSES: dict[str, type[RobotConnector]] = {
    "dingtalk": DingTalkConnector,
    "wecom": WeComConnector,
    "feishu": FeishuConnector,
}
SIGNED = ("dingtalk", "feishu")
CONTENT = "订单 SO-2024-0001 已发货，金额 ¥19.90 🚚"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running_robots() -> AsyncIterator[ImRobots]:
    async with ImRobots.start() as running:
        yield running


@pytest.fixture
def robots(running_robots: ImRobots) -> Iterator[ImRobots]:
    running_robots.reset()
    yield running_robots
    clock.use_real()


@asynccontextmanager
async def opened(
    platform: str, config: dict[str, Json], *, timeout: timedelta = timedelta(seconds=5)
) -> AsyncIterator[RobotConnector]:
    connector = CLASSES[platform]()
    await connector.open(Connection(name="team", connector=platform, config=config, timeout=timeout))
    try:
        yield connector
    finally:
        await connector.close()


def robot_config(robots: ImRobots, platform: str, *, secret: str | None = SECRET) -> dict[str, Json]:
    """A robot on the server and the matching config (signed on the platforms that sign)."""
    signed = platform in SIGNED and secret is not None
    webhook = robots.add(platform, TOKEN, SECRET if signed else None)
    return {"webhook": webhook, **({"secret": secret} if signed else {})}


async def test_robots_are_connectors_whose_actions_are_not_idempotent() -> None:
    installed = available_connectors()
    for cls in CLASSES.values():
        assert installed[cls.kind] is cls, "registered in the seamflow.connectors entry points"
        assert isinstance(cls(), Connector)
        assert set(cls.actions) == {"text", "markdown", "card"}
        assert not any(action.is_idempotent for action in cls.actions.values())


@pytest.mark.parametrize("platform", list(CLASSES))
async def test_text_is_posted_in_the_documented_format_with_exact_chinese(robots: ImRobots, platform: str) -> None:
    async with opened(platform, robot_config(robots, platform)) as robot:
        answer = await robot.call("text", {"content": CONTENT}, idempotency_key="k1")
    assert isinstance(answer, dict)
    assert answer.get("errcode", answer.get("code")) == 0
    [message] = robots.messages
    body = {k: v for k, v in message.body.items() if k not in ("timestamp", "sign")}
    expected = {
        "dingtalk": {
            "msgtype": "text",
            "text": {"content": CONTENT},
            "at": {"atMobiles": [], "atUserIds": [], "isAtAll": False},
        },
        "wecom": {"msgtype": "text", "text": {"content": CONTENT}},
        "feishu": {"msg_type": "text", "content": {"text": CONTENT}},
    }
    assert (message.platform, message.token, body) == (platform, TOKEN, expected[platform])


@pytest.mark.parametrize("platform", list(CLASSES))
async def test_markdown_is_posted_in_the_documented_format(robots: ImRobots, platform: str) -> None:
    text = "#### 审批通过\n- 申请人：张三\n- 金额：**¥1,280.00**"
    async with opened(platform, robot_config(robots, platform)) as robot:
        await robot.call("markdown", {"title": "审批结果", "text": text}, idempotency_key="k1")
    [message] = robots.messages
    if platform == "dingtalk":
        assert message.body["markdown"] == {"title": "审批结果", "text": text}
    elif platform == "wecom":
        assert message.body == {"msgtype": "markdown", "markdown": {"content": f"### 审批结果\n{text}"}}
    else:
        assert message.body["msg_type"] == "interactive"
        card = message.body["card"]
        assert card["header"]["title"] == {"tag": "plain_text", "content": "审批结果"}
        assert card["elements"] == [{"tag": "markdown", "content": text}]


@pytest.mark.parametrize("platform", list(CLASSES))
async def test_card_with_link_buttons_is_accepted(robots: ImRobots, platform: str) -> None:
    buttons = [{"title": "查看订单", "url": "https://erp.example.com/o/1"}, {"title": "驳回", "url": "https://x.cn/r"}]
    async with opened(platform, robot_config(robots, platform)) as robot:
        await robot.call(
            "card", {"title": "新订单", "text": "客户：**华东贸易**", "buttons": buttons}, idempotency_key="k"
        )
    [message] = robots.messages
    if platform == "dingtalk":
        assert message.body["actionCard"]["btns"][0] == {
            "title": "查看订单",
            "actionURL": "https://erp.example.com/o/1",
        }
    elif platform == "wecom":
        assert message.body["template_card"]["jump_list"][1]["title"] == "驳回"
    else:
        actions = message.body["card"]["elements"][1]["actions"]
        assert [a["url"] for a in actions] == ["https://erp.example.com/o/1", "https://x.cn/r"]


async def test_mentions_use_each_platforms_fields(robots: ImRobots) -> None:
    mentions = {"content": "请处理", "user_ids": ["u1"], "at_all": True}
    for platform in CLASSES:
        async with opened(platform, robot_config(robots, platform)) as robot:
            extra = {"mobiles": ["13800000000"]} if platform != "feishu" else {}
            await robot.call("text", {**mentions, **extra}, idempotency_key="k")
    dingtalk, wecom, feishu = (m.body for m in robots.messages)
    assert dingtalk["at"] == {"atMobiles": ["13800000000"], "atUserIds": ["u1"], "isAtAll": True}
    assert wecom["text"]["mentioned_list"] == ["u1", "@all"]
    assert wecom["text"]["mentioned_mobile_list"] == ["13800000000"]
    assert feishu["content"]["text"] == '请处理 <at user_id="u1"></at> <at user_id="all"></at>'


async def test_feishu_refuses_mentions_by_mobile_without_posting(robots: ImRobots) -> None:
    async with opened("feishu", robot_config(robots, "feishu")) as robot:
        with pytest.raises(errors.Permanent, match=r"team\.text: invalid input: .*mobiles"):
            await robot.call("text", {"content": "x", "mobiles": ["13800000000"]}, idempotency_key="k")
    assert robots.messages == []


async def test_missing_inputs_are_permanent_and_named(robots: ImRobots) -> None:
    async with opened("dingtalk", robot_config(robots, "dingtalk")) as robot:
        with pytest.raises(errors.Permanent, match=r"team\.markdown: invalid input: with\.title: Field required"):
            await robot.call("markdown", {"text": "x"}, idempotency_key="k")
        with pytest.raises(errors.Permanent, match="unknown action"):
            await robot.call("image", {}, idempotency_key="k")


async def test_dingtalk_signature_with_plus_and_slash_is_url_encoded(robots: ImRobots) -> None:
    start = int(datetime.now(UTC).timestamp() * 1000)
    stamp = next(t for t in range(start, start + 10_000) if {"+", "/"} <= set(dingtalk_signature(t, SECRET)))
    clock.set_fixed(datetime.fromtimestamp(stamp / 1000, UTC))
    async with opened("dingtalk", robot_config(robots, "dingtalk")) as robot:
        await robot.call("text", {"content": CONTENT}, idempotency_key="k")
    assert len(robots.messages) == 1  # the server decodes the query: a raw "+" would read as a space


@pytest.mark.parametrize(("platform", "code"), [("dingtalk", "errcode 310000"), ("feishu", "code 19021")])
async def test_a_wrong_secret_is_permanent_with_the_platforms_error(robots: ImRobots, platform: str, code: str) -> None:
    async with opened(platform, robot_config(robots, platform, secret="SECwrong-wrong-wrong")) as robot:
        with pytest.raises(errors.Permanent, match=code) as caught:
            await robot.call("text", {"content": CONTENT}, idempotency_key="k")
    assert caught.value.where == "team.text"
    assert robots.messages == []


@pytest.mark.parametrize("platform", SIGNED)
async def test_a_timestamp_two_hours_off_is_refused(robots: ImRobots, platform: str) -> None:
    clock.set_fixed(datetime.now(UTC) - timedelta(hours=2))
    async with opened(platform, robot_config(robots, platform)) as robot:
        with pytest.raises(errors.Permanent, match=r"errcode 310000|code 19021"):
            await robot.call("text", {"content": "x"}, idempotency_key="k")
    assert robots.messages == []


async def test_a_wrong_webhook_key_is_permanent(robots: ImRobots) -> None:
    robots.add("wecom", TOKEN)
    async with opened("wecom", {"webhook": f"{robots.url}/cgi-bin/webhook/send?key=no-such-key-0000"}) as robot:
        with pytest.raises(errors.Permanent, match="errcode 93000"):
            await robot.call("text", {"content": "x"}, idempotency_key="k")


@pytest.mark.parametrize(
    ("platform", "code"), [("dingtalk", "errcode 130101"), ("wecom", "errcode 45009"), ("feishu", "code 9499")]
)
async def test_a_rate_limit_is_transient_and_a_retry_posts_once(robots: ImRobots, platform: str, code: str) -> None:
    async with opened(platform, robot_config(robots, platform)) as robot:
        robots.rate_limit_next = 1
        with pytest.raises(errors.Transient, match=code):
            await robot.call("text", {"content": CONTENT}, idempotency_key="k")
        await robot.call("text", {"content": CONTENT}, idempotency_key="k")
    assert len(robots.messages) == 1


@pytest.mark.parametrize(
    ("status", "verdict"), [(503, errors.Transient), (429, errors.Transient), (404, errors.Permanent)]
)
async def test_http_statuses_are_classified(
    robots: ImRobots, status: int, verdict: type[errors.ConnectorError]
) -> None:
    robots.fail_status = status
    async with opened("wecom", robot_config(robots, "wecom")) as robot:
        with pytest.raises(verdict, match=f"HTTP {status}"):
            await robot.call("text", {"content": "x"}, idempotency_key="k")


async def test_a_timeout_is_transient(robots: ImRobots) -> None:
    robots.delay_s = 1.0
    async with opened("dingtalk", robot_config(robots, "dingtalk"), timeout=timedelta(seconds=0.2)) as robot:
        with pytest.raises(errors.Transient, match=r"no answer from 127\.0\.0\.1 within 0\.2s"):
            await robot.call("text", {"content": "x"}, idempotency_key="k")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_secrets_and_tokens_appear_in_no_error_and_no_log(
    robots: ImRobots, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    failures: list[BaseException] = []

    async def fail(platform: str, config: dict[str, Json]) -> None:
        async with opened(platform, config, timeout=timedelta(seconds=0.3)) as robot:
            with pytest.raises(errors.ConnectorError) as caught:
                await robot.call("text", {"content": "x"}, idempotency_key="k")
            failures.append(caught.value)

    for platform in CLASSES:
        config = robot_config(robots, platform)
        robots.rate_limit_next = 1
        await fail(platform, config)
        robots.delay_s = 1.0
        await fail(platform, config)
        robots.delay_s = 0.0
        dead = str(config["webhook"]).replace(robots.url, f"http://127.0.0.1:{free_port()}")
        await fail(platform, {**config, "webhook": dead})
    for platform in SIGNED:
        await fail(platform, robot_config(robots, platform, secret="SECwrong-wrong-wrong"))
    with pytest.raises(errors.InvalidInput) as bad_config:
        await DingTalkConnector().open(
            Connection(name="team", connector="dingtalk", config={"webhook": f"ftp://h/?access_token={TOKEN}"})
        )
    failures.append(bad_config.value)
    texts = [caplog.text, *(f"{f!s} {f!r} {f.__cause__!r} {f.__context__!r}" for f in failures)]
    assert len(failures) == 12
    for text in texts:
        assert TOKEN not in text
        assert SECRET not in text
        assert "SECwrong-wrong-wrong" not in text
    assert "posting a text message to the dingtalk robot of team" in caplog.text
