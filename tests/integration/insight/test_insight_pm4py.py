"""The process map's answers equal pm4py's on the same logs: directly-follows counts, durations to
the millisecond, start/end activities, variants and case durations (pm4py is a test-only dependency)."""

from __future__ import annotations

import random
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seamflow import insight

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pd = pytest.importorskip("pandas")
    pm4py = pytest.importorskip("pm4py")

ACTIVITIES = ["订单创建", "信用审核", "Approval requested", "Approved by 财务", "发货", "开票", "收款"]
BASE_MS = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)


def _log(seed: int, cases: int = 300) -> list[insight.Event]:
    """Random cases with ties (same millisecond), sub-second times, repeats, and ingest out of time order."""
    rng = random.Random(seed)
    rows: list[tuple[int, str, str]] = []
    for c in range(cases):
        at = BASE_MS + rng.randrange(10**9)
        for _ in range(rng.randint(1, 9)):
            at += rng.choice([0, 0, 1, 999, rng.randrange(1, 10**7)])
            rows.append((at, str(c * 7) if c % 2 else f"SO-{c}", rng.choice(ACTIVITIES)))
    rng.shuffle(rows)  # the ingest order breaks ties, and late events arrive after later ones
    return [
        insight.Event(seq, act, at, (insight.EventObject("order", case),))
        for seq, (at, case, act) in enumerate(rows, start=1)
    ]


def _frame(events: list[insight.Event]) -> object:
    # Naive timestamps (pm4py reads them as UTC), rows in ingest order, case ids as given.
    frame = pd.DataFrame(
        {
            "case": [e.objects[0].id for e in events],
            "activity": [e.activity for e in events],
            "time": [datetime.fromtimestamp(e.at_ms / 1000, UTC).replace(tzinfo=None) for e in events],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pm4py.format_dataframe(frame, case_id="case", activity_key="activity", timestamp_key="time")


def _indexed(events: list[insight.Event], batches: int) -> insight.ProcessIndex:
    index = insight.ProcessIndex()
    size = len(events) // batches + 1
    for i in range(0, len(events), size):
        index.append(events[i : i + size])
    return index


@pytest.mark.parametrize(("seed", "batches"), [(1, 1), (2, 7), (3, 50)])
def test_directly_follows_and_performance_equal_pm4py(seed: int, batches: int) -> None:
    events = _log(seed)
    df = _frame(events)
    ours = insight.discover_map(_indexed(events, batches), insight.CaseFilter("order"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dfg, starts, ends = pm4py.discover_dfg(df)
        perf, _, _ = pm4py.discover_performance_dfg(df)
    assert {(e.source, e.target): e.frequency for e in ours.edges} == dict(dfg)
    assert ours.start_activities == dict(starts)
    assert ours.end_activities == dict(ends)
    for e in ours.edges:
        theirs = perf[(e.source, e.target)]
        assert e.median_ms == pytest.approx(theirs["median"] * 1000, abs=0.5), (e.source, e.target)
        assert e.mean_ms == pytest.approx(theirs["mean"] * 1000, abs=0.5), (e.source, e.target)


def test_in_order_appends_in_small_batches_equal_pm4py() -> None:
    # Events in time order extend their cases in place (no re-derivation): the common case.
    ordered = sorted(_log(7), key=lambda e: (e.at_ms, e.seq))
    events = [insight.Event(i, e.activity, e.at_ms, e.objects) for i, e in enumerate(ordered, start=1)]
    ours = insight.discover_map(_indexed(events, len(events) // 3), insight.CaseFilter("order"), top_variants=10_000)
    df = _frame(events)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dfg, starts, ends = pm4py.discover_dfg(df)
        perf, _, _ = pm4py.discover_performance_dfg(df)
        variants = pm4py.get_variants(df)
    assert {(e.source, e.target): e.frequency for e in ours.edges} == dict(dfg)
    assert (ours.start_activities, ours.end_activities) == (dict(starts), dict(ends))
    assert {v.activities: v.cases for v in ours.variants} == {tuple(k): n for k, n in variants.items()}
    for e in ours.edges:
        assert e.median_ms == pytest.approx(perf[(e.source, e.target)]["median"] * 1000, abs=0.5)


def test_edge_p90_equals_numpy_interpolation_over_pm4py_durations() -> None:
    events = _log(4)
    df = _frame(events).sort_values(["case:concept:name", "time:timestamp", "@@index"])
    nxt = df.shift(-1)
    same = df["case:concept:name"] == nxt["case:concept:name"]
    pairs = pd.DataFrame(
        {
            "a": df["concept:name"][same],
            "b": nxt["concept:name"][same],
            "ms": (nxt["time:timestamp"] - df["time:timestamp"])[same].dt.total_seconds() * 1000,
        }
    )
    p90 = pairs.groupby(["a", "b"])["ms"].quantile(0.9).to_dict()
    ours = insight.discover_map(_indexed(events, 3), insight.CaseFilter("order"))
    assert {(e.source, e.target): pytest.approx(e.p90_ms, abs=0.5) for e in ours.edges} == p90


@pytest.mark.parametrize("seed", [5, 6])
def test_variants_and_case_durations_equal_pm4py(seed: int) -> None:
    events = _log(seed, cases=400)
    df = _frame(events)
    ours = insight.discover_map(_indexed(events, 4), insight.CaseFilter("order"), top_variants=10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        variants = pm4py.get_variants(df)
        durations = sorted(pm4py.get_all_case_durations(df))
        activities = pm4py.get_event_attribute_values(df, "concept:name")
    assert {v.activities: v.cases for v in ours.variants} == {tuple(k): n for k, n in variants.items()}
    assert ours.variant_count == len(variants)
    assert {n.activity: n.frequency for n in ours.nodes} == dict(activities)
    assert all(n.cases == df[df["concept:name"] == n.activity]["case:concept:name"].nunique() for n in ours.nodes)
    assert ours.cases == len(durations)
    theirs_ms = pd.Series(durations) * 1000
    assert ours.case_duration_ms["median"] == pytest.approx(theirs_ms.median(), abs=0.5)
    assert ours.case_duration_ms["p90"] == pytest.approx(theirs_ms.quantile(0.9), abs=0.5)


def test_case_ids_are_text_so_7_and_text_7_are_one_case() -> None:
    index = insight.ProcessIndex()
    index.append(
        [
            insight.Event(1, "a", BASE_MS, (insight.EventObject("order", "7"),)),
            insight.Event(2, "b", BASE_MS + 5, insight.parse_objects({"order": 7}, "test")[0]),
        ]
    )
    found = insight.discover_map(index, insight.CaseFilter("order"))
    assert found.cases == 1
    assert [(e.source, e.target, e.frequency) for e in found.edges] == [("a", "b", 1)]


def test_xes_export_of_a_log_with_ties_and_late_events_reads_back_as_the_same_process(tmp_path: Path) -> None:
    events = _log(8)
    index = _indexed(events, 5)
    path = tmp_path / "log.xes"
    insight.export_xes(index, "order", path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log = pm4py.read_xes(str(path))
        dfg, starts, ends = pm4py.discover_dfg(log)
        perf, _, _ = pm4py.discover_performance_dfg(log)
    ours = insight.discover_map(index, insight.CaseFilter("order"))
    assert {(e.source, e.target): e.frequency for e in ours.edges} == dict(dfg)
    assert (ours.start_activities, ours.end_activities) == (dict(starts), dict(ends))
    for e in ours.edges:
        assert e.median_ms == pytest.approx(perf[(e.source, e.target)]["median"] * 1000, abs=0.5)
