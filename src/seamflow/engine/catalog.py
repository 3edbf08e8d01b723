"""The flows a process serves: current versions by id and webhook path, older versions on demand.

A run records the version it started with. If the flow file changed since, the run
continues with its own version, compiled from the source the store kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from seamflow import errors, store
from seamflow.flows import CompiledFlow, compile_flow, load, spec
from seamflow.ids import FlowId

__all__ = ["Catalog", "FlowSource"]


@dataclass(frozen=True, slots=True)
class FlowSource:
    """A validated flow with its file text, path and content-hash version."""

    spec: spec.Flow
    version: str
    source: str
    path: str


class Catalog:
    """Compiled flows by id and by webhook path."""

    def __init__(self, sources: Mapping[str, FlowSource]) -> None:
        self.current: dict[str, CompiledFlow] = {
            flow_id: compile_flow(s.spec, version=s.version, source=s.source, path=s.path)
            for flow_id, s in sources.items()
        }
        self.by_path: dict[str, CompiledFlow] = {
            f.spec.trigger.webhook.path.strip("/"): f for f in self.current.values() if f.spec.trigger.webhook
        }
        self._old: dict[tuple[str, str], CompiledFlow] = {}

    def version_of(self, flow_id: str) -> str:
        """The current version of a flow."""
        return self.flow(flow_id).version

    def flow(self, flow_id: str) -> CompiledFlow:
        """The current version of a flow.

        Raises:
            errors.NotFound: no such flow is loaded.
        """
        try:
            return self.current[flow_id]
        except KeyError:
            known = ", ".join(sorted(self.current)) or "none"
            raise errors.NotFound(f"flow {flow_id!r} is not loaded; loaded flows: {known}") from None

    async def at_version(self, db: store.FlowVersions, flow_id: FlowId, version: str) -> CompiledFlow:
        """The flow as it was at `version` (current, cached, or compiled from the kept source)."""
        current = self.current.get(flow_id)
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
