"""Who a request is, and what it may do: globally, and on each flow through its grants."""

from __future__ import annotations

from dataclasses import dataclass

from seamflow.directory.grants import FlowGrant, FlowRef, covers
from seamflow.directory.model import Scope

__all__ = ["Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is, and what it may do."""

    login: str
    scopes: frozenset[Scope]
    """What it may do everywhere (its global roles, within its token's scopes)."""
    via: str
    """`bootstrap` (the admin token `init` made), `token` (a personal API token), `session` (console) or `oidc`."""
    credential_id: str | None = None
    """The id of the personal API token used (`pat_…`), for the audit trail; never its secret."""
    grants: tuple[FlowGrant, ...] = ()
    """Roles held on flows or folders of flows (the user's own, their department's and positions')."""
    targets: tuple[str, ...] = ()
    """A token limited to some flows: the targets it may act on (empty: not limited)."""
    cap: frozenset[Scope] | None = None
    """A token's scopes: grants never give it more (None: not a token)."""

    @property
    def is_limited(self) -> bool:
        """True for a token limited to some flows: it may call no route that acts beyond a flow."""
        return bool(self.targets)

    def scopes_on(self, flow: FlowRef) -> frozenset[Scope]:
        """What it may do on `flow`: global scopes plus the grants covering it, within the token's scopes and flows."""
        if self.targets and not any(covers(t, flow) for t in self.targets):
            return frozenset()
        held = set(self.scopes)
        for grant in self.grants:
            if covers(grant.target, flow):
                held |= grant.scopes
        return frozenset(held if self.cap is None else held & self.cap)

    def may(self, scope: Scope, flow: FlowRef | None = None) -> bool:
        """Whether it holds `scope` on `flow` (on everything, when `flow` is None)."""
        if flow is None:
            return scope in self.scopes and not self.is_limited
        return scope in self.scopes_on(flow)

    def may_somewhere(self, scope: Scope) -> bool:
        """Whether it holds `scope` globally or through some grant (a list route filters to those flows)."""
        return scope in self.held_somewhere()

    def held_somewhere(self) -> frozenset[Scope]:
        """Every scope it holds globally or through some grant, within its token's scopes."""
        held = set(self.scopes).union(*(g.scopes for g in self.grants))
        return frozenset(held if self.cap is None else held & self.cap)
