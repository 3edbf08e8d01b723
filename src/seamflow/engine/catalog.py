"""The flows a process serves: current versions by id and webhook path, older versions on demand.

A run records the version it started with. If the flow file changed since, the run
continues with its own version, compiled from the source the store kept.

A reload (`Catalog.replace`) swaps the whole set of current flows in one assignment: a
webhook looks up its flow in one snapshot and accepts the event with that flow's version,
so no event ever meets a half-loaded catalog.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from seamflow import errors, store
from seamflow.flows import CompiledFlow, compile_flow, load, spec
from seamflow.ids import FlowId

__all__ = ["Catalog", "CatalogChange", "FlowSource"]


@dataclass(frozen=True, slots=True)
class FlowSource:
    """A validated flow with its file text, path and content-hash version."""

    spec: spec.Flow
    version: str
    source: str
    path: str


@dataclass(frozen=True, slots=True)
class CatalogChange:
    """What a reload changed: flow ids added, changed (a new version) and removed."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """True when the reload changed no flow."""
        return not (self.added or self.changed or self.removed)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    current: dict[str, CompiledFlow]
    by_path: dict[str, CompiledFlow]


def _compile(sources: Mapping[str, FlowSource], reuse: Mapping[str, CompiledFlow]) -> _Snapshot:
    current: dict[str, CompiledFlow] = {}
    for flow_id, s in sources.items():
        kept = reuse.get(flow_id)
        current[flow_id] = (
            kept
            if kept is not None and kept.version == s.version
            else compile_flow(s.spec, version=s.version, source=s.source, path=s.path)
        )
    by_path = {f.spec.trigger.hook_path: f for f in current.values() if f.spec.trigger.hook_path is not None}
    return _Snapshot(current, by_path)


class Catalog:
    """Compiled flows by id and by webhook path."""

    def __init__(self, sources: Mapping[str, FlowSource]) -> None:
        self._snapshot = _compile(sources, {})
        self._old: dict[tuple[str, str], CompiledFlow] = {}

    @property
    def current(self) -> dict[str, CompiledFlow]:
        """The current version of every flow, by flow id (one snapshot: do not mutate)."""
        return self._snapshot.current

    @property
    def digest(self) -> str:
        """Which flows are served, at which versions, in a few characters: equal digests, equal flows."""
        pairs = "\n".join(f"{flow_id}@{flow.version}" for flow_id, flow in sorted(self._snapshot.current.items()))
        return hashlib.sha256(pairs.encode()).hexdigest()[:16]

    @property
    def by_path(self) -> dict[str, CompiledFlow]:
        """The current flows with a webhook trigger, by path without slashes at either end."""
        return self._snapshot.by_path

    def replace(self, sources: Mapping[str, FlowSource]) -> CatalogChange:
        """Serve `sources` from now on, in one swap; return what changed.

        Replaced versions stay reachable through `at_version` (cached here, or from the store),
        so runs that started with them finish with them.
        """
        before = self._snapshot.current
        after = _compile(sources, before)
        for flow_id, flow in before.items():
            if after.current.get(flow_id) is not flow:
                self._old[(flow_id, flow.version)] = flow
        self._snapshot = after
        kept_ids = set(after.current) & set(before)
        return CatalogChange(
            added=sorted(set(after.current) - set(before)),
            changed=sorted(i for i in kept_ids if after.current[i].version != before[i].version),
            removed=sorted(set(before) - set(after.current)),
        )

    def version_of(self, flow_id: str) -> str:
        """The current version of a flow."""
        return self.flow(flow_id).version

    def flow(self, flow_id: str) -> CompiledFlow:
        """The current version of a flow.

        Raises:
            errors.NotFound: no such flow is loaded.
        """
        try:
            return self._snapshot.current[flow_id]
        except KeyError:
            known = ", ".join(sorted(self._snapshot.current)) or "none"
            raise errors.NotFound(f"flow {flow_id!r} is not loaded; loaded flows: {known}") from None

    async def at_version(self, db: store.FlowVersions, flow_id: FlowId, version: str) -> CompiledFlow:
        """The flow as it was at `version` (current, cached, or compiled from the kept source)."""
        current = self._snapshot.current.get(flow_id)
        if current is not None and current.version == version:
            return current
        cached = self._old.get((flow_id, version))
        if cached is not None:
            return cached
        source = await db.load_flow_source(flow_id, version)
        if source is None:
            raise errors.NotFound(f"flow {flow_id!r} version {version} is not in the store")
        parsed, _ = load.load_flow_text(source, f"<stored {flow_id}@{version}>")
        compiled = compile_flow(parsed, version=version, source=source, path=f"<stored {flow_id}@{version}>")
        self._old[(flow_id, version)] = compiled
        return compiled
