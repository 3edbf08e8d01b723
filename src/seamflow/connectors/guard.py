"""The outbound guard: the addresses a connection's network calls may reach.

On by default: a host is resolved first, and every address it resolves to must be public —
not loopback, private, link-local, CGNAT, multicast, unspecified, broadcast, reserved, a cloud
metadata address, nor one of those embedded in IPv6 — unless the project (`seamflow.toml`
`[outbound] allow`), the connection (`outbound_allow` in `connections.yaml`) or the process
(`SEAMFLOW_OUTBOUND_ALLOW`) allows it. The caller then connects to the addresses checked here
(pinned), never resolving the name again, so DNS rebinding finds no window.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from seamflow import errors

__all__ = [
    "ALLOW_VARIABLE",
    "Address",
    "Outbound",
    "OutboundRefused",
    "Resolve",
    "allow_entry_problem",
    "connect_checked",
    "parse_address",
    "refusal",
    "resolve_checked_blocking",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str, int], Awaitable[list[str]]]
"""Looks a host name up: `(host, port)` → the addresses, as text (the seam tests feed)."""

ALLOW_VARIABLE = "SEAMFLOW_OUTBOUND_ALLOW"
"""An environment variable: hosts and networks every connection of the process may also reach."""

_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, Azure, GCP, Oracle, OpenStack, Huawei Cloud
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.0.23",  # Tencent Cloud
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)
_METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_BROADCAST = ipaddress.ip_address("255.255.255.255")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_COMPATIBLE = ipaddress.ip_network("::/96")
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
"""Full stops IDNA treats as dots (ideographic, full-width, half-width ideographic)."""
_NAME = re.compile(r"^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")


class OutboundRefused(errors.Permanent):
    """A connection was about to reach an address the outbound guard does not allow; nothing was sent.

    Permanent: the same host resolves the same way on a retry. The message names the host,
    the address and the rule, never the URL (its query may hold a key).
    """

    code = "connector.outbound_refused"

    def __init__(self, host: str, address: str | None, rule: str, *, where: str = "") -> None:
        shown = errors.redact(host, limit=80)
        at = f" ({address})" if address is not None and address != host else ""
        super().__init__(
            f"outbound guard refused {shown}{at}: {rule}; expected a public address, or the host allowed"
            " by `outbound_allow` in connections.yaml or `[outbound] allow` in seamflow.toml",
            where=where,
        )
        self.host = host
        self.address = address
        self.rule = rule


@lru_cache(maxsize=4096)
def normalize_host(host: str) -> str:
    """`host` as a resolver would read it: NFKC (full-width and other Unicode digits become
    ASCII), IDNA dots, lower case, without brackets, an IPv6 zone or trailing dots."""
    text = unicodedata.normalize("NFKC", host.translate(_DOTS)).strip().casefold()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return text.partition("%")[0].rstrip(".")


@lru_cache(maxsize=4096)
def parse_address(host: str) -> Address | None:
    """The address `host` spells, in any form a resolver accepts; None if it is a name.

    Besides dotted quads and IPv6 this reads what `inet_aton` reads: `2130706433`, `0177.0.0.1`,
    `0x7f.1`, `127.1`, and Unicode digits (`１２７.０.０.１`). Cached: a connection names few hosts.
    """
    text = normalize_host(host)
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    return _inet_aton(text)


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        try:
            if part[:2] == "0x":
                numbers.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part[0] == "0":
                numbers.append(int(part[1:], 8))
            else:
                numbers.append(int(part, 10) if part.isascii() and part.isdigit() else -1)
        except ValueError:
            return None
    *head, last = numbers
    if any(not 0 <= n <= 255 for n in head) or not 0 <= last < 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(head):
        value |= number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _embedded(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address carries, and how (mapped, 6to4, NAT64, Teredo, compatible)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped IPv6"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4 IPv6"
    if address.teredo is not None:
        return address.teredo[1], "Teredo IPv6"
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64 IPv6"
    if address in _COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "IPv4-compatible IPv6"
    return None


def refusal(address: Address) -> str | None:
    """The rule that refuses `address` by default, or None if it is public."""
    if address in _METADATA_ADDRESSES:
        return "cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address) and not (address.is_loopback or address.is_unspecified):
        carried = _embedded(address)
        if carried is not None:
            inner = refusal(carried[0])
            if inner is not None or carried[1] == "IPv4-compatible IPv6":
                return f"{inner or 'deprecated address'} as {carried[1]} ({carried[0]})"
            return None
    for rule, applies in _RULES:
        if applies(address):
            return rule
    return None


_RULES: tuple[tuple[str, Callable[[Address], bool]], ...] = (
    ("loopback", lambda a: a.is_loopback),
    ("unspecified address", lambda a: a.is_unspecified),
    ("multicast", lambda a: a.is_multicast),
    ("link-local", lambda a: a.is_link_local),
    ("broadcast", lambda a: a == _BROADCAST),
    ("shared address space (CGNAT, 100.64.0.0/10)", lambda a: a in _SHARED),
    ("private network", lambda a: any(a in net for net in _PRIVATE if net.version == a.version)),
    ("reserved", lambda a: a.is_reserved),
    ("special-purpose, not a public address", lambda a: not a.is_global),
)


async def system_resolve(host: str, port: int) -> list[str]:
    """The operating system's resolver (`getaddrinfo`), as the connection would use it."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))


@dataclass(frozen=True, slots=True)
class Outbound:
    """Where a connection may connect: public addresses, plus the hosts and networks allowed.

    Build it with `Outbound.parse` or `Outbound.from_environment`; widen it with `allowing`.
    """

    networks: tuple[Network, ...] = ()
    """Networks (a single address is a /32 or /128) that may be reached although not public."""
    hosts: frozenset[str] = frozenset()
    """Host names that may be reached whatever they resolve to; `*.corp.example` allows subdomains."""
    resolve: Resolve = field(default=system_resolve, compare=False, repr=False)
    """How names are looked up; tests give a table here."""

    @classmethod
    def parse(cls, entries: Iterable[str], where: str = "outbound allow") -> Outbound:
        """An outbound guard allowing `entries`: addresses, CIDR networks or host names.

        Raises:
            errors.InvalidInput: `outbound.invalid_allow`, naming `where` and the entry.
        """
        return cls().allowing(entries, where)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Outbound:
        """The process's guard: public addresses plus `SEAMFLOW_OUTBOUND_ALLOW` (comma-separated).

        Raises:
            errors.InvalidInput: the variable holds an entry that is not an address, network or name.
        """
        text = (os.environ if environ is None else environ).get(ALLOW_VARIABLE, "")
        return cls.parse([e for e in re.split(r"[,\s]+", text) if e], ALLOW_VARIABLE)

    def allowing(self, entries: Iterable[str], where: str) -> Outbound:
        """This guard, also allowing `entries` (see `parse`).

        Raises:
            errors.InvalidInput: `outbound.invalid_allow`, naming `where` and the entry.
        """
        networks, hosts = list(self.networks), set(self.hosts)
        for entry in entries:
            problem = allow_entry_problem(entry)
            if problem is not None:
                raise errors.InvalidInput(f"{where}: {problem}", code="outbound.invalid_allow")
            network = _as_network(entry)
            if network is not None:
                networks.append(network)
            else:
                hosts.add(normalize_host(entry))
        return Outbound(tuple(dict.fromkeys(networks)), frozenset(hosts), self.resolve)

    def with_resolver(self, resolve: Resolve) -> Outbound:
        """This guard, looking names up with `resolve`."""
        return Outbound(self.networks, self.hosts, resolve)

    def is_allowed_host(self, host: str) -> bool:
        """Whether the name `host` is allowed whatever it resolves to."""
        name = normalize_host(host)
        if name in self.hosts:
            return True
        return any(h.startswith("*.") and name.endswith(h[1:]) for h in self.hosts)

    def check(self, address: Address, host: str, where: str = "") -> None:
        """Refuse `address` (which `host` resolved to) unless it is public or allowed.

        Raises:
            OutboundRefused: naming the host, the address and the rule.
        """
        if any(address in net for net in self.networks if net.version == address.version):
            return
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            mapped = address.ipv4_mapped
            if any(mapped in net for net in self.networks if net.version == 4):
                return
        rule = refusal(address)
        if rule is not None:
            raise OutboundRefused(host, str(address), rule, where=where)

    def check_literal(self, host: str, where: str = "") -> Address | None:
        """Check a host before any lookup: an address spelled in any form, or a metadata name.

        Returns:
            The address `host` spells (checked), or None if it is a name still to be resolved.

        Raises:
            OutboundRefused: `host` spells a refused address or names a cloud metadata service.
        """
        address = parse_address(host)
        if address is not None:
            self.check(address, host, where)
            return address
        if normalize_host(host) in _METADATA_HOSTS and not self.is_allowed_host(host):
            raise OutboundRefused(host, None, "cloud metadata host", where=where)
        return None

    async def resolve_checked(self, host: str, port: int, where: str = "") -> list[Address]:
        """Resolve `host` and check every address: the addresses to connect to (pin them).

        A name is refused if any address it resolves to is refused, so a DNS answer that mixes
        a public and a private address cannot slip through on the second.

        Raises:
            OutboundRefused: an address is not allowed (no connection was attempted).
            OSError: the name does not resolve (`socket.gaierror`).
        """
        literal = self.check_literal(host, where)
        if literal is not None:
            return [literal]
        found = [ipaddress.ip_address(text.partition("%")[0]) for text in await self.resolve(host, port)]
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} resolved to no address")
        if not self.is_allowed_host(host):
            for address in found:
                self.check(address, host, where)
        return found


async def connect_checked(outbound: Outbound, host: str, port: int, timeout_s: float, where: str = "") -> socket.socket:
    """A socket connected to a checked address of `host` (pinned): for clients that take a socket.

    The addresses are tried in the resolver's order within `timeout_s` each; the caller keeps
    `host` for TLS (SNI, certificate) and owns the socket.

    Raises:
        OutboundRefused: an address of `host` is not allowed (nothing was connected).
        OSError: the name does not resolve, or no address accepted (`TimeoutError` if none answered).
    """
    loop = asyncio.get_running_loop()
    failed: OSError | None = None
    for address in await outbound.resolve_checked(host, port, where):
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(timeout_s):
                await loop.sock_connect(sock, (str(address), port))
        except OSError as exc:  # TimeoutError included: try the next address
            sock.close()
            failed = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    assert failed is not None  # resolve_checked returns at least one address
    raise failed


def resolve_checked_blocking(outbound: Outbound, host: str, port: int, where: str = "") -> list[Address]:
    """`Outbound.resolve_checked` for a driver that connects in a worker thread (SQL): the system's
    resolver, called blocking. Connect to the addresses returned, keeping `host` for TLS.

    Raises:
        OutboundRefused: an address of `host` is not allowed.
        OSError: the name does not resolve (`socket.gaierror`).
    """
    literal = outbound.check_literal(host, where)
    if literal is not None:
        return [literal]
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(a[4][0]).partition("%")[0]) for a in found))
    if not outbound.is_allowed_host(host):
        for address in addresses:
            outbound.check(address, host, where)
    return addresses


def _as_network(entry: str) -> Network | None:
    text = normalize_host(entry) if "/" not in entry else entry.strip()
    address = parse_address(text) if "/" not in text else None
    if address is not None:
        return ipaddress.ip_network(address)
    try:
        return ipaddress.ip_network(text, strict=False) if "/" in text else None
    except ValueError:
        return None


def allow_entry_problem(entry: object) -> str | None:
    """What is wrong with one allow-list entry, or None if it is an address, a network or a host name."""
    if not isinstance(entry, str) or not entry.strip():
        return f"got {errors.redact(entry)}; expected an address, a CIDR network or a host name"
    if "/" in entry:
        return None if _as_network(entry) is not None else f"got {entry!r}; expected a CIDR network like 10.8.0.0/16"
    if _as_network(entry) is not None or _NAME.match(normalize_host(entry)):
        return None
    return f"got {entry!r}; expected an address (10.8.0.5), a CIDR network (10.8.0.0/16) or a host name (erp.corp.cn)"
