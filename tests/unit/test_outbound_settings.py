"""The outbound guard's allow-lists: in seamflow.toml, per connection, in the environment; and its rules."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from seamflow import connectors, engine, errors
from seamflow.connectors.guard import parse_address, refusal
from seamflow.flows import load


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("１２７.０.０.１", "127.0.0.1"),
        ("①②⑦.0.0.1", "127.0.0.1"),
        ("127。0。0。1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::1]", "::1"),
        ("[fe80::1%eth0]", "fe80::1"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("0", "0.0.0.0"),
    ],
)
def test_every_numeric_and_unicode_spelling_reads_as_the_address_a_resolver_would(spelling: str, address: str) -> None:
    assert parse_address(spelling) == ipaddress.ip_address(address)


@pytest.mark.parametrize("name", ["erp.corp.cn", "256.1.1.1", "1.2.3.4.5", "0x1g.1", "localhost", "08.1.1.1"])
def test_names_and_impossible_numbers_are_not_addresses(name: str) -> None:
    assert parse_address(name) is None


@pytest.mark.parametrize("public", ["8.8.8.8", "114.114.114.114", "2400:3200::1", "64:ff9b::808:808", "::ffff:1.2.3.4"])
def test_public_addresses_pass_also_when_embedded_in_ipv6(public: str) -> None:
    assert refusal(ipaddress.ip_address(public)) is None


def test_an_allow_list_takes_addresses_networks_names_and_subdomain_wildcards() -> None:
    outbound = connectors.Outbound.parse(["10.8.0.0/16", "192.168.1.20", "::1", "erp.corp.cn", "*.k3cloud.corp.cn"])
    outbound.check(ipaddress.ip_address("10.8.3.4"), "db")
    outbound.check(ipaddress.ip_address("192.168.1.20"), "erp")
    outbound.check(ipaddress.ip_address("::ffff:10.8.0.1"), "mapped")  # an allowed IPv4 network, IPv4-mapped
    with pytest.raises(connectors.OutboundRefused, match=r"'erp' \(192\.168\.1\.21\): private network"):
        outbound.check(ipaddress.ip_address("192.168.1.21"), "erp")
    assert outbound.is_allowed_host("ERP.corp.cn.") and outbound.is_allowed_host("api.k3cloud.corp.cn")
    assert not outbound.is_allowed_host("k3cloud.corp.cn.evil.cn")


@pytest.mark.parametrize("entry", ["10.8.0.0/33", "erp corp", "", "http://erp.corp.cn/"])
def test_an_allow_entry_that_is_no_address_network_or_name_is_refused_naming_where(entry: str) -> None:
    with pytest.raises(errors.InvalidInput, match=r"^SEAMFLOW_OUTBOUND_ALLOW: got") as refused:
        connectors.Outbound.parse(["127.0.0.1", entry], "SEAMFLOW_OUTBOUND_ALLOW")
    assert refused.value.code == "outbound.invalid_allow"


def test_the_process_allow_list_is_read_from_the_environment() -> None:
    outbound = connectors.Outbound.from_environment({"SEAMFLOW_OUTBOUND_ALLOW": "127.0.0.0/8, ::1 erp.corp.cn"})
    assert [str(n) for n in outbound.networks] == ["127.0.0.0/8", "::1/128"]
    assert outbound.hosts == {"erp.corp.cn"}
    assert connectors.Outbound.from_environment({}) == connectors.Outbound()


def test_seamflow_toml_widens_the_process_allow_list(tmp_path: Path) -> None:
    (tmp_path / "seamflow.toml").write_text('[outbound]\nallow = ["10.8.0.0/16", "erp.corp.cn"]\n', encoding="utf-8")
    outbound = engine.project_outbound(tmp_path, {"SEAMFLOW_OUTBOUND_ALLOW": "127.0.0.1"})
    assert [str(n) for n in outbound.networks] == ["127.0.0.1/32", "10.8.0.0/16"]
    assert outbound.hosts == {"erp.corp.cn"}
    assert engine.project_outbound(tmp_path / "missing", {}) == connectors.Outbound()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[outbound]\nallow = "10.8.0.0/16"\n',
            r"seamflow.toml \[outbound\] allow: got '10.8.0.0/16'; expected a list",
        ),
        (
            '[outbound]\nallow = ["10.8.0.0/99"]\n',
            r"seamflow.toml \[outbound\] allow: got '10.8.0.0/99'; expected a CIDR",
        ),
        ('[outbound]\nalow = ["10.8.0.0/16"]\n', r"seamflow.toml \[outbound\]: got .*; expected a table with one key"),
        ("[outbound\nallow = []\n", r"seamflow.toml: .*line 1, column 10.*; expected TOML"),
    ],
)
def test_a_bad_seamflow_toml_is_refused_with_where_and_what_was_expected(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "seamflow.toml").write_text(text, encoding="utf-8")
    with pytest.raises(errors.InvalidInput, match=message) as refused:
        engine.project_outbound(tmp_path, {})
    assert refused.value.code == "outbound.invalid_allow"


def test_a_connection_outbound_allow_widens_the_project_guard_for_that_connection_only() -> None:
    project = connectors.Outbound.parse(["10.8.0.0/16"])
    configs = {
        "erp": {"connector": "http", "base_url": "http://10.9.0.5/", "outbound_allow": ["10.9.0.5"]},
        "crm": {"connector": "http", "base_url": "http://10.8.0.7/"},
    }
    pool = engine.Pool(configs, secrets={}, env={}, outbound=project)
    erp, crm = pool.resolve("erp"), pool.resolve("crm")
    assert "outbound_allow" not in erp.config
    assert [str(n) for n in erp.outbound.networks] == ["10.8.0.0/16", "10.9.0.5/32"]
    assert crm.outbound == project


def test_flow_validate_names_each_bad_outbound_allow_entry_with_its_line() -> None:
    text = 'erp:\n  connector: http\n  outbound_allow: ["10.8.0.0/16", "10.8.0.0/40", 7]\n'
    with pytest.raises(errors.FlowInvalid) as refused:
        load.load_connections_text(text, "connections.yaml")
    shown = [str(p) for p in refused.value.problems]
    assert shown == [
        "connections.yaml:3:35 erp.outbound_allow[1]: got '10.8.0.0/40'; expected a CIDR network like 10.8.0.0/16",
        "connections.yaml:3:50 erp.outbound_allow[2]: got 7; expected an address, a CIDR network or a host name",
    ]
