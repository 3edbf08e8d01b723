"""The outbound guard against real sockets: SSRF targets are refused before any connection is made.

A trap listens on loopback and must see no connection; each target below reaches it (or
another refused address) through a different spelling, a name resolved by a test hosts table,
or a redirect. The guards here are built explicitly, without the loopback the test suite
allows through `SEAMFLOW_OUTBOUND_ALLOW`.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web

from seamflow import connectors, errors
from seamflow.connectors.http import HttpConnector
from seamflow.connectors.http.pinning import GuardedConnector
from seamflow.connectors.im import DingTalkConnector
from seamflow.connectors.openapi import OpenApiConnector
from seamflow.ids import Json
from tests.support.hosts_table import HostsTable

HOSTS = """
127.0.0.1   localhost erp.test docs.test rebind.test
::1         localhost v6-loopback.test
::ffff:127.0.0.1  mapped.test
93.184.216.34 mixed.test
127.0.0.1   mixed.test
10.0.0.1    private-a.test
172.16.5.4  private-b.test
192.168.1.1 private-c.test
169.254.169.254 metadata-alias.test
169.254.10.10   link-local.test
100.64.0.1  cgnat.test
100.100.100.200 aliyun-metadata.test
224.0.0.251 multicast.test
255.255.255.255 broadcast.test
0.0.0.0     unspecified.test
240.0.0.1   reserved.test
fe80::1     v6-link-local.test
fc00::1     v6-private.test
fd00:ec2::254 v6-metadata.test
ff02::1     v6-multicast.test
::          v6-unspecified.test
2002:a00:1::  sixtofour.test
64:ff9b::a9fe:a9fe nat64.test
::10.0.0.1  compatible.test
"""


class Trap:
    """A listening socket that no refused request may reach: `was_reached()` takes any pending connection."""

    def __init__(self, family: socket.AddressFamily, host: str) -> None:
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.bind((host, 0))
        self.socket.listen(16)
        self.socket.setblocking(False)
        self.port = int(self.socket.getsockname()[1])

    def was_reached(self) -> bool:
        try:
            conn, _ = self.socket.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True


@pytest.fixture
def trap() -> Iterator[Trap]:
    found = Trap(socket.AF_INET, "127.0.0.1")
    yield found
    found.socket.close()


@pytest.fixture
def trap6() -> Iterator[Trap]:
    try:
        found = Trap(socket.AF_INET6, "::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback on this machine: {exc}")
    yield found
    found.socket.close()


@pytest.fixture
def table() -> HostsTable:
    return HostsTable.parse(HOSTS)


@contextlib.asynccontextmanager
async def http_connection(outbound: connectors.Outbound, config: Json = None) -> AsyncIterator[HttpConnector]:
    connector = HttpConnector()
    settings = config if isinstance(config, dict) else {}
    await connector.open(
        connectors.Connection("erp", "http", settings, timeout=timedelta(seconds=5), outbound=outbound)
    )
    try:
        yield connector
    finally:
        await connector.close()


async def refusal(outbound: connectors.Outbound, url: str) -> connectors.OutboundRefused:
    async with http_connection(outbound) as connector:
        with pytest.raises(connectors.OutboundRefused) as refused:
            await connector.call("get", {"url": url}, idempotency_key="k-1")
    return refused.value


LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "localhost",
    "LOCALHOST.",
    "ｌｏｃａｌｈｏｓｔ",
    "2130706433",
    "0177.0.0.1",
    "0x7f.1",
    "0x7f000001",
    "017700000001",
    "127.1",
    "127.0.1",
    "127.0.0.1.",
    "１２７.０.０.１",
    "①②⑦.0.0.①",
    "127。0。0。1",
    "127．0．0．1",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:127.0.0.1]",
    "[::127.0.0.1]",
    "[2002:7f00:1::]",
    "rebind.test",
    "mapped.test",
    "mixed.test",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_every_spelling_of_loopback_is_refused_without_a_connection(
    host: str, trap: Trap, table: HostsTable
) -> None:
    refused = await refusal(connectors.Outbound().with_resolver(table.resolve), f"http://{host}:{trap.port}/orders")
    assert "loopback" in refused.rule
    assert refused.code == "connector.outbound_refused"
    assert isinstance(refused, errors.Permanent), "a refusal is permanent: retrying resolves the same way"
    assert "outbound guard refused" in refused.message and "/orders" not in refused.message
    assert not trap.was_reached()


@pytest.mark.parametrize("host", ["[::1]", "[0:0:0:0:0:0:0:1]", "v6-loopback.test"])
async def test_ipv6_loopback_is_refused_without_a_connection(host: str, trap6: Trap, table: HostsTable) -> None:
    refused = await refusal(connectors.Outbound().with_resolver(table.resolve), f"http://{host}:{trap6.port}/")
    assert refused.rule == "loopback"
    assert not trap6.was_reached()


@pytest.mark.parametrize(
    ("host", "rule"),
    [
        ("private-a.test", "private network"),
        ("private-b.test", "private network"),
        ("private-c.test", "private network"),
        ("10.1.2.3", "private network"),
        ("012.1.2.3", "private network"),
        ("metadata-alias.test", "cloud metadata address"),
        ("169.254.169.254", "cloud metadata address"),
        ("2852039166", "cloud metadata address"),
        ("0xa9.0xfe.0xa9.0xfe", "cloud metadata address"),
        ("metadata.google.internal", "cloud metadata host"),
        ("metadata.google.internal.", "cloud metadata host"),
        ("aliyun-metadata.test", "cloud metadata address"),
        ("[fd00:ec2::254]", "cloud metadata address"),
        ("v6-metadata.test", "cloud metadata address"),
        ("link-local.test", "link-local"),
        ("v6-link-local.test", "link-local"),
        ("[fe80::1%25eth0]", "link-local"),
        ("cgnat.test", "shared address space (CGNAT, 100.64.0.0/10)"),
        ("multicast.test", "multicast"),
        ("v6-multicast.test", "multicast"),
        ("broadcast.test", "broadcast"),
        ("unspecified.test", "unspecified address"),
        ("0", "unspecified address"),
        ("v6-unspecified.test", "unspecified address"),
        ("reserved.test", "reserved"),
        ("v6-private.test", "private network"),
        ("[::ffff:10.0.0.1]", "private network as IPv4-mapped IPv6 (10.0.0.1)"),
        ("sixtofour.test", "private network as 6to4 IPv6 (10.0.0.1)"),
        ("nat64.test", "cloud metadata address as NAT64 IPv6 (169.254.169.254)"),
        ("compatible.test", "private network as IPv4-compatible IPv6 (10.0.0.1)"),
    ],
)
async def test_every_address_class_is_refused_after_resolution(host: str, rule: str, table: HostsTable) -> None:
    refused = await refusal(connectors.Outbound().with_resolver(table.resolve), f"http://{host}/latest/meta-data/")
    assert refused.rule == rule
    assert host.strip("[]").split("%")[0].rstrip(".") in refused.message or refused.host in refused.message


async def test_an_allowed_name_is_resolved_once_and_the_connection_pinned_to_that_address(table: HostsTable) -> None:
    from tests.support.echo_server import Echo

    async with Echo.start() as echo:
        port = echo.url.rsplit(":", 1)[1]
        outbound = connectors.Outbound.parse(["erp.test"]).with_resolver(table.resolve)
        async with http_connection(outbound) as connector:
            first = await connector.call("get", {"url": f"http://erp.test:{port}/orders/1"}, idempotency_key="k-1")
            second = await connector.call("get", {"url": f"http://erp.test:{port}/orders/2"}, idempotency_key="k-2")
    assert first["status"] == 200 and second["status"] == 200
    # the system's resolver does not know erp.test: the connection went to the address the guard checked
    assert table.lookups["erp.test"] == 1
    assert [seen.headers["Host"] for seen in echo.seen] == [f"erp.test:{port}"] * 2


async def test_an_allowed_network_lets_a_connection_reach_it(trap: Trap) -> None:
    from tests.support.echo_server import Echo

    async with Echo.start() as echo:
        outbound = connectors.Outbound.parse(["127.0.0.0/8"])
        async with http_connection(outbound) as connector:
            answer = await connector.call(
                "post", {"url": echo.url + "/orders", "json": {"no": "SO-1"}}, idempotency_key="k"
            )
    assert answer["status"] == 200 and echo.last().path == "/orders"
    # what is allowed is loopback, not every private network
    refused = await refusal(outbound, "http://10.0.0.1/")
    assert refused.rule == "private network"


async def test_each_lookup_is_checked_so_a_name_that_rebinds_to_a_private_address_is_refused(
    table: HostsTable,
) -> None:
    from tests.support.echo_server import Echo

    table.answer_next("rebind.test", ["127.0.0.1"], ["10.0.0.7"])
    async with Echo.start() as echo:
        port = echo.url.rsplit(":", 1)[1]
        outbound = connectors.Outbound.parse(["127.0.0.1"]).with_resolver(table.resolve)
        async with http_connection(outbound) as connector:
            answer = await connector.call("get", {"url": f"http://rebind.test:{port}/"}, idempotency_key="k")
        assert answer["status"] == 200
        refused = await refusal(outbound, f"http://rebind.test:{port}/")
    assert (refused.address, refused.rule) == ("10.0.0.7", "private network")


@contextlib.asynccontextmanager
async def redirecting(to: str) -> AsyncIterator[int]:
    """A server on loopback that answers every request with a redirect to `to`; yields its port."""

    async def answer(request: web.Request) -> web.Response:
        raise web.HTTPFound(to)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # bound by start()
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "target", ["http://127.0.0.1:{port}/x", "http://0x7f.1:{port}/x", "http://rebind.test:{port}/x"]
)
async def test_a_redirect_from_an_allowed_host_to_a_refused_one_is_refused(
    target: str, trap: Trap, table: HostsTable
) -> None:
    outbound = connectors.Outbound.parse(["docs.test"]).with_resolver(table.resolve)
    async with (
        redirecting(target.format(port=trap.port)) as port,
        aiohttp.ClientSession(connector=GuardedConnector(outbound, "docs")) as session,
    ):
        with pytest.raises(connectors.OutboundRefused) as refused:
            await session.get(f"http://docs.test:{port}/openapi.json", allow_redirects=True)
    assert refused.value.rule == "loopback"
    assert not trap.was_reached()


async def test_an_openapi_document_redirected_to_a_private_address_is_refused(trap: Trap, table: HostsTable) -> None:
    outbound = connectors.Outbound.parse(["docs.test"]).with_resolver(table.resolve)
    async with redirecting(f"http://127.1:{trap.port}/openapi.json") as port:
        connector = OpenApiConnector()
        connection = connectors.Connection(
            "crm", "openapi", {"document": f"http://docs.test:{port}/openapi.json"}, outbound=outbound
        )
        with pytest.raises(connectors.OutboundRefused, match=r"'127\.1' \(127\.0\.0\.1\): loopback"):
            await connector.open(connection)
        await connector.close()
    assert not trap.was_reached()


async def test_an_im_robot_webhook_on_a_private_address_is_refused(trap: Trap) -> None:
    connector = DingTalkConnector()
    webhook = f"http://2130706433:{trap.port}/robot/send?access_token=tok-3f9a2c"
    await connector.open(
        connectors.Connection("team", "dingtalk", {"webhook": webhook}, outbound=connectors.Outbound())
    )
    try:
        with pytest.raises(connectors.OutboundRefused) as refused:
            await connector.call("text", {"content": "合同已签署"}, idempotency_key="k")
    finally:
        await connector.close()
    assert "tok-3f9a2c" not in str(refused.value)
    assert not trap.was_reached()


async def test_a_credential_bearing_request_to_a_refused_host_names_neither_url_nor_credentials(
    trap: Trap,
) -> None:
    config: Json = {"base_url": f"http://127.0.0.1:{trap.port}/api", "auth": {"bearer": "sk-live-8c1d2e"}}
    async with http_connection(connectors.Outbound(), config) as connector:
        with pytest.raises(connectors.OutboundRefused) as refused:
            await connector.call("get", {"path": "orders", "query": {"key": "q-secret"}}, idempotency_key="k")
    text = str(refused.value)
    assert "sk-live-8c1d2e" not in text and "q-secret" not in text and "/api" not in text
    assert text.startswith("erp: outbound guard refused '127.0.0.1': loopback")
    assert not trap.was_reached()


@pytest.mark.parametrize("host", ["0x7f.1", "rebind.test", "metadata.google.internal"])
async def test_an_smtp_host_on_a_refused_address_is_refused_before_connecting(
    host: str, trap: Trap, table: HostsTable
) -> None:
    from seamflow.connectors.email import EmailConnector

    connector = EmailConnector()
    config: Json = {"host": host, "port": trap.port, "security": "none", "from": "销售运营 <sales-ops@example.cn>"}
    outbound = connectors.Outbound().with_resolver(table.resolve)
    await connector.open(connectors.Connection("mailer", "email", config, outbound=outbound))
    mail: Json = {"to": ["王芳 <wang.fang@example.cn>"], "subject": "合同已签署", "text": "SO-20261207-0042"}
    with pytest.raises(connectors.OutboundRefused):
        await connector.call("send", mail, idempotency_key="k")
    with pytest.raises(connectors.OutboundRefused):
        await connector.check()
    await connector.close()
    assert not trap.was_reached()


@pytest.mark.parametrize("security", ["none", "ssl"])
async def test_an_imap_host_on_a_refused_address_is_refused_before_connecting(
    security: str, trap: Trap, table: HostsTable
) -> None:
    from seamflow.connectors.email import EmailConnector

    connector = EmailConnector()
    imap: Json = {"host": "rebind.test", "port": trap.port, "security": security, "folder": "INBOX"}
    config: Json = {"imap": imap, "username": "finance@example.cn", "password": "imap-pw-51c7"}
    outbound = connectors.Outbound().with_resolver(table.resolve)
    await connector.open(connectors.Connection("invoices", "email", config, outbound=outbound))
    with pytest.raises(connectors.OutboundRefused) as refused:
        await connector.check()
    with pytest.raises(connectors.OutboundRefused):
        await connector.poll("messages", {}, None, limit=10)
    await connector.close()
    assert "imap-pw-51c7" not in str(refused.value)
    assert not trap.was_reached()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres:pg-pw-77a1@0x7f.1:{port}/test",
        "postgresql://postgres:pg-pw-77a1@[::ffff:127.0.0.1]:{port}/test",
        "mysql://root:pg-pw-77a1@2130706433:{port}/test",
        "mysql://root:pg-pw-77a1@metadata.google.internal:{port}/test",
    ],
)
async def test_a_sql_host_on_a_refused_address_is_refused_before_connecting(url: str, trap: Trap) -> None:
    from seamflow.connectors.sql import SqlConnector

    connector = SqlConnector()
    config: Json = {"url": url.format(port=trap.port)}
    await connector.open(
        connectors.Connection("erp", "sql", config, timeout=timedelta(seconds=5), outbound=connectors.Outbound())
    )
    try:
        with pytest.raises(connectors.OutboundRefused) as refused:
            await connector.call("query", {"sql": "SELECT 1"}, idempotency_key="k")
    finally:
        await connector.close()
    assert "pg-pw-77a1" not in str(refused.value)
    assert not trap.was_reached()
