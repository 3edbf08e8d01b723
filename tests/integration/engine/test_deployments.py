"""Which processes record a flow's deployments: the first of a serve group does, a late member does not.

A `serve` group's other processes read the flow files when they start; on a loaded machine that can
be long before they reach the store, after a newer version (or a rollback) was recorded. Recording
their start then put a stale version on top of the flow's history (seen in CI after a rollback).
"""

from __future__ import annotations

from seamflow import engine, store
from seamflow.flows import load

FLOW = """id: refunds
trigger: {webhook: {path: refunds}}
steps:
  - id: shape
    transform: {version: VERSION}
"""


def _catalog(version: int) -> engine.Catalog:
    text = FLOW.replace("VERSION", str(version))
    parsed, _ = load.load_flow_text(text, "flows/refunds.yaml")
    return engine.Catalog(
        {"refunds": engine.FlowSource(parsed, load.flow_version(text.encode()), text, "flows/refunds.yaml")}
    )


def _engine(db: store.SqlStore, catalog: engine.Catalog, *, records: bool) -> engine.Engine:
    pool = engine.Pool({}, secrets={}, env={})
    options = engine.EngineOptions(execute=False, claim=False, timers=False, records_deployments=records)
    return engine.Engine(db, catalog, pool, context={}, options=options)


async def test_a_late_group_member_serving_an_older_version_does_not_record_it(db: store.SqlStore) -> None:
    old, new = _catalog(1), _catalog(2)
    first = _engine(db, new, records=True)
    await first.start()
    try:
        late = _engine(db, old, records=False)  # read the files before the new version was written
        await late.start()
        await late.reload_flows({"refunds": new.current["refunds"]}, how="signal")  # it catches up
        await late.stop()
    finally:
        await first.stop()
    deployed = await db.list_deployments("refunds")
    assert [(d.version, d.how) for d in deployed] == [(new.current["refunds"].version, "start")]


async def test_the_recording_process_records_a_reload_that_changes_the_version(db: store.SqlStore) -> None:
    old, new = _catalog(1), _catalog(2)
    versions = [old.current["refunds"].version, new.current["refunds"].version]  # the engine's catalog changes
    eng = _engine(db, old, records=True)
    await eng.start()
    try:
        await eng.reload_flows({"refunds": new.current["refunds"]}, how="watch", by="@files")
        await eng.reload_flows({"refunds": new.current["refunds"]}, how="watch", by="@files")  # no change
    finally:
        await eng.stop()
    deployed = await db.list_deployments("refunds")
    assert [(d.version, d.how, d.by) for d in deployed] == [
        (versions[1], "watch", "@files"),
        (versions[0], "start", "serve"),
    ]
