"""A process's short memory of personal API tokens it has checked: token hash → principal.

An approver's script or the console sends the same token many times a second; reading the
token, its user and their grants from the store on every request was a thread hop and three
queries each time. An entry is used for at most `ttl` after the store was read (2 s by default),
and never past its token's expiry (checked on every use). This process drops every entry when it
changes the directory itself (a token revoked, a user or their roles changed, a grant given or
taken); a change made by another process of a serve group, a worker or the CLI reaches this one
within `ttl`. See docs/howto/directory.md, "How soon a revoked token stops working".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from seamflow.directory.principal import Principal

__all__ = ["TOKEN_CACHE_TTL", "TokenCache"]

TOKEN_CACHE_TTL = timedelta(seconds=2)
"""How long a checked token is believed without reading the store again: the bound on how late a
revocation, a role change or a grant made by another process takes effect here."""


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    read_at: datetime
    expires: datetime | None


class TokenCache:
    """Principals of recently checked tokens, by token hash; at most `size` of them.

    Args:
        ttl: how long an entry is used after the store was read; zero turns the cache off.
        size: how many tokens are remembered (the oldest are dropped first), so memory stays flat.
    """

    def __init__(self, ttl: timedelta = TOKEN_CACHE_TTL, size: int = 4096) -> None:
        self.ttl = ttl
        self._size = size
        self._entries: dict[str, _Entry] = {}

    def get(self, token_hash: str, now: datetime) -> Principal | None:
        """The principal checked less than `ttl` ago whose token has not expired; None otherwise."""
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        is_fresh = entry.read_at <= now < entry.read_at + self.ttl  # a clock set back is not fresh either
        if not is_fresh or (entry.expires is not None and now >= entry.expires):
            del self._entries[token_hash]
            return None
        return entry.principal

    def put(self, token_hash: str, principal: Principal, now: datetime, expires: datetime | None) -> None:
        """Remember a principal just read from the store (valid at `now`, its token expiring at `expires`)."""
        if self.ttl <= timedelta(0):
            return
        if len(self._entries) >= self._size and token_hash not in self._entries:
            del self._entries[next(iter(self._entries))]
        self._entries[token_hash] = _Entry(principal, now, expires)

    def clear(self) -> None:
        """Forget every token: the directory changed in this process."""
        self._entries.clear()
