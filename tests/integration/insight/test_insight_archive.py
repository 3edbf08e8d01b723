"""The index written as Parquet (an archive of a pruned log) and read back: the same answers, still growing."""

from __future__ import annotations

from pathlib import Path

import pytest

from seamflow import errors, insight
from tests.integration.insight.test_insight_conformance import DESIGNED, _index


def test_an_archive_answers_as_the_index_it_was_written_from(tmp_path: Path) -> None:
    index = _index({"SO-1": DESIGNED, "SO-2": ["订单创建", "Shipped", "Payment received"]})
    index.archive(tmp_path / "archive")
    restored = insight.ProcessIndex()
    restored.load_archive(tmp_path / "archive")
    where = insight.CaseFilter("order")
    assert insight.discover_map(restored, where) == insight.discover_map(index, where)
    assert restored.last_seq == index.last_seq
    restored.append([insight.Event(99, "Refund", 1_772_000_100_000, (insight.EventObject("order", "SO-2"),))])
    assert insight.discover_map(restored, where).end_activities == {"Payment received": 1, "Refund": 1}


def test_an_archive_loads_only_into_an_empty_index(tmp_path: Path) -> None:
    index = _index({"SO-1": DESIGNED})
    index.archive(tmp_path / "archive")
    with pytest.raises(errors.Conflict, match="holds events up to seq 4"):
        index.load_archive(tmp_path / "archive")
    with pytest.raises(errors.InvalidInput, match=r"not an insight archive: no activities\.parquet"):
        insight.ProcessIndex().load_archive(tmp_path)
