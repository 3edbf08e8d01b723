"""Deployments of flow versions and shadow results, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from seamflow import store

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


async def test_a_deployment_is_recorded_only_when_the_flow_version_changes(db: store.SqlStore) -> None:
    first = store.Deployment("orders", "v1", T0, "zhangwei", "start")
    again = store.Deployment("orders", "v1", T0 + timedelta(minutes=1), "lisi", "watch")
    second = store.Deployment("orders", "v2", T0 + timedelta(minutes=2), "lisi", "api")
    other = store.Deployment("refunds", "r1", T0, "zhangwei", "start")
    assert await db.record_deployments([first, other]) == [first, other]
    assert await db.record_deployments([again]) == []
    assert await db.record_deployments([second]) == [second]
    back = store.Deployment("orders", "v1", T0 + timedelta(minutes=3), "wangfang", "rollback")
    assert await db.record_deployments([back]) == [back]
    assert await db.list_deployments("orders") == [back, second, first]
    assert await db.list_deployments("orders", limit=1) == [back]


async def test_shadow_results_are_listed_per_flow_and_per_shadow(db: store.SqlStore) -> None:
    report = {"outcome": {"live": "completed", "candidate": "completed"}, "changed": [{"field": "json.amount"}]}
    rows = [store.ShadowResult("shd_a", i, "orders", "v1", "v2", f"run_{i}", T0, {**report, "n": i}) for i in range(3)]
    later = store.ShadowResult("shd_b", 0, "orders", "v1", "v3", "run_9", T0 + timedelta(hours=1), {"中文": "金额"})
    await db.save_shadow_results(rows)
    await db.save_shadow_results([later])
    assert await db.list_shadow_results("orders", "shd_a") == rows
    assert await db.list_shadow_results("orders") == [later, *rows]
    assert await db.list_shadow_results("refunds") == []


async def test_a_live_shadow_is_kept_listed_and_stopped_once(db: store.SqlStore) -> None:
    first = store.LiveShadow("shd_l1", "orders", "v2", T0, T0 + timedelta(hours=1), 100, "li.na")
    second = store.LiveShadow("shd_l2", "orders", "v3", T0 + timedelta(minutes=5), T0 + timedelta(days=1), 5, "王芳")
    other = store.LiveShadow("shd_l3", "refunds", "r2", T0, T0 + timedelta(hours=2), 10, "li.na")
    for shadow in (first, second, other):
        await db.start_live_shadow(shadow)
    assert await db.list_live_shadows("orders") == [second, first]
    assert len(await db.list_live_shadows()) == 3
    stopped_at = T0 + timedelta(minutes=30)
    assert await db.stop_live_shadow("shd_l1", stopped_at, "zhang.wei") is True
    assert await db.stop_live_shadow("shd_l1", stopped_at + timedelta(minutes=1), "li.na") is False
    assert await db.stop_live_shadow("shd_missing", stopped_at, "li.na") is False
    (_, again) = await db.list_live_shadows("orders")
    assert (again.stopped_at, again.stopped_by) == (stopped_at, "zhang.wei")
