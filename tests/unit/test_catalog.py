"""The catalog of a process's flows: a reload swaps the whole set at once and keeps replaced versions reachable."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from seamflow import engine, errors, store
from seamflow.flows import load
from seamflow.ids import FlowId

FLOW = """
id: {id}
trigger: {{webhook: {{path: {path}}}}}
steps:
  - id: shape
    transform: {{mark: {mark}}}
"""


def source(flow_id: str, mark: int, path: str | None = None) -> engine.FlowSource:
    text = FLOW.format(id=flow_id, path=path or flow_id, mark=mark)
    parsed, _ = load.load_flow_text(text, f"flows/{flow_id}.yaml")
    return engine.FlowSource(parsed, load.flow_version(text.encode()), text, f"flows/{flow_id}.yaml")


class NoStore:
    """A store that kept nothing: every version must come from the catalog itself."""

    async def save_flow_versions(self, versions: Sequence[store.FlowVersion]) -> None:
        raise AssertionError("not used")

    async def load_flow_source(self, flow_id: FlowId, version: str) -> str | None:
        return None


async def test_a_reload_reports_added_changed_and_removed_flows_and_swaps_paths_with_them() -> None:
    catalog = engine.Catalog({"orders": source("orders", 1), "refunds": source("refunds", 1)})
    unchanged = catalog.current["refunds"]
    change = catalog.replace(
        {"refunds": source("refunds", 1), "orders": source("orders", 2), "leads": source("leads", 1)}
    )
    assert (change.added, change.changed, change.removed) == (["leads"], ["orders"], [])
    assert catalog.current["refunds"] is unchanged, "an unchanged flow is not compiled again"
    assert sorted(catalog.by_path) == ["leads", "orders", "refunds"]
    change = catalog.replace({"leads": source("leads", 1)})
    assert (change.added, change.changed, change.removed) == ([], [], ["orders", "refunds"])
    assert list(catalog.by_path) == ["leads"]
    with pytest.raises(errors.NotFound, match="flow 'orders' is not loaded; loaded flows: leads"):
        catalog.flow("orders")


async def test_replaced_and_removed_versions_stay_reachable_for_the_runs_that_started_with_them() -> None:
    first = source("orders", 1)
    catalog = engine.Catalog({"orders": first})
    catalog.replace({"orders": source("orders", 2)})
    catalog.replace({})
    old = await catalog.at_version(NoStore(), FlowId("orders"), first.version)
    assert old.version == first.version and "mark: 1" in old.source
