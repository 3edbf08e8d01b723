"""A resolver for the outbound guard's seam that reads an /etc/hosts-style table, as a test's DNS.

`HostsTable.parse("127.0.0.1 erp.test\\n10.0.0.5 intranet.test")` answers each name with every
address listed for it, in order, and counts the lookups; a name it does not list does not resolve
(`socket.gaierror`, as from a real resolver). `answer_next` queues answers that change between
lookups of one name (DNS rebinding).
"""

from __future__ import annotations

import socket
from collections import Counter, defaultdict
from dataclasses import dataclass, field

__all__ = ["HostsTable"]


@dataclass
class HostsTable:
    """Names and their addresses, as in /etc/hosts; `resolve` is an `connectors.Outbound` resolver."""

    names: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    lookups: Counter[str] = field(default_factory=Counter)
    queued: dict[str, list[list[str]]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def parse(cls, text: str) -> HostsTable:
        table = cls()
        for line in text.splitlines():
            fields = line.partition("#")[0].split()
            if fields:
                address, *names = fields
                for name in names:
                    table.names[name.lower()].append(address)
        return table

    def answer_next(self, name: str, *answers: list[str]) -> None:
        """Answer the coming lookups of `name` with `answers`, one each, then with the table again."""
        self.queued[name.lower()].extend(answers)

    async def resolve(self, host: str, port: int) -> list[str]:
        name = host.lower().rstrip(".")
        self.lookups[name] += 1
        if self.queued.get(name):
            return self.queued[name].pop(0)
        if name not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not in the test's hosts table")
        return list(self.names[name])
