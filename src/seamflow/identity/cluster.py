"""Clusters: the connected components of linked records, and the unified ID each one keeps.

Links are joined strongest first (rules, then by score); a steward's split is a *separation*
between two groups of records, and a link that would put both groups in one cluster is refused.
A re-run gives each cluster the ID its records had before: where several clusters claim one old
ID, the one with more of its records keeps it; where a cluster holds several old IDs (a merge),
it keeps the oldest (IDs are numbered, the lower the older). Clusters without a previous ID get
the next numbers, in the order of their first record, so a re-run over the same data changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Separation", "assign_ids", "connect", "unified_id"]


@dataclass(frozen=True, slots=True)
class Separation:
    """Two groups of records (by index) that a steward split apart: never again in one cluster."""

    left: Sequence[int]
    right: Sequence[int]


def unified_id(prefix: str, number: int) -> str:
    """The unified ID numbered `number`: `M00000042`."""
    return f"{prefix}{number:08d}"


def connect(
    count: int,
    links: Sequence[tuple[int, int]],
    separations: Sequence[Separation] = (),
) -> npt.NDArray[np.int64]:
    """The cluster of each of `count` records (its smallest record index), given links strongest first."""
    parent = list(range(count))
    tags: dict[int, set[tuple[int, int]]] = {}
    for number, separation in enumerate(separations):
        for side, group in enumerate((separation.left, separation.right)):
            for index in group:
                tags.setdefault(index, set()).add((number, side))

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in links:
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        keep, gone = (ra, rb) if ra < rb else (rb, ra)
        ta, tb = tags.get(ra), tags.get(rb)
        if ta or tb:
            if ta and tb and any((n, 1 - s) in tb for n, s in ta):
                continue  # a steward split these apart
            merged = (ta or set()) | (tb or set())
            tags.pop(gone, None)
            tags[keep] = merged
        parent[gone] = keep
    return np.fromiter((find(i) for i in range(count)), dtype=np.int64, count=count)


def assign_ids(
    clusters: npt.NDArray[np.int64],
    previous: Sequence[str | None],
    prefix: str,
    next_number: int,
) -> tuple[list[str], int]:
    """The unified ID of each record, keeping the IDs of earlier runs; returns them and the next free number.

    Args:
        clusters: each record's cluster (as `connect` returns).
        previous: each record's unified ID from the last run (None: a new record).
        prefix: the resolution's ID prefix.
        next_number: the first number no ID has had yet.
    """
    claims: dict[int, Counter[str]] = {}
    for index, old in enumerate(previous):
        if old is not None:
            claims.setdefault(int(clusters[index]), Counter())[old] += 1
    candidates = sorted(
        ((old, -count, cluster) for cluster, held in claims.items() for old, count in held.items()),
    )
    chosen: dict[int, str] = {}
    taken: set[str] = set()
    for old, _, cluster in candidates:
        if cluster not in chosen and old not in taken:
            chosen[cluster] = old
            taken.add(old)
    ids: list[str] = []
    for cluster in clusters.tolist():
        found = chosen.get(cluster)
        if found is None:
            found = chosen[cluster] = unified_id(prefix, next_number)
            next_number += 1
        ids.append(found)
    return ids, next_number
