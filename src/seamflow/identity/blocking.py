"""Blocking: which pairs of records are compared at all. A pair is a candidate when the two records
share the key of any blocking rule (`[mobile]`, `[name.pinyin, mobile.tail4]`); a key shared by
more than `max_block` records (a shop's own phone typed for walk-in customers) is skipped, as it
says nothing about who is who. The self-join runs in DuckDB, on both cores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from seamflow.identity.prepare import Prepared

__all__ = ["block_keys", "candidate_pairs"]


def block_keys(record: Prepared, blocking: Sequence[Sequence[str]]) -> list[str]:
    """The record's key for each blocking rule it has every part of: `0|+8613800138000`, `1|zhangwei|8000`."""
    forms = record.forms
    found = []
    for number, rule in enumerate(blocking):
        if len(rule) == 1:
            part = forms.get(rule[0])
            if part:
                found.append(f"{number}|{part}")
            continue
        parts = [forms.get(key) or "" for key in rule]
        if all(parts):
            found.append(f"{number}|" + "|".join(parts))
    return found


def candidate_pairs(
    record_keys: Sequence[Sequence[str]], max_block: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[str]]:
    """Every pair (left < right) of records sharing a blocking key (`record_keys`: each record's keys, as
    `block_keys` gives them), once; and the keys skipped as too common."""
    import duckdb

    keys: list[str] = []
    owners: list[int] = []
    for index, found in enumerate(record_keys):
        keys.extend(found)
        owners.extend([index] * len(found))
    if not keys:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, []
    table = {"k": np.array(keys, dtype=object), "i": np.array(owners, dtype=np.int64)}
    with duckdb.connect() as con:
        con.register("block", table)
        con.execute("CREATE TEMP TABLE sized AS SELECT k, count(*) AS n FROM block GROUP BY k HAVING count(*) > 1")
        skipped = [
            row[0]
            for row in con.execute("SELECT k FROM sized WHERE n > ? ORDER BY n DESC LIMIT 20", [max_block]).fetchall()
        ]
        pairs = con.execute(
            "SELECT DISTINCT a.i AS l, b.i AS r FROM block a JOIN block b ON a.k = b.k AND a.i < b.i"
            " WHERE a.k IN (SELECT k FROM sized WHERE n <= ?)",
            [max_block],
        ).fetchnumpy()
    return (
        np.asarray(pairs["l"], dtype=np.int64),
        np.asarray(pairs["r"], dtype=np.int64),
        skipped,
    )
