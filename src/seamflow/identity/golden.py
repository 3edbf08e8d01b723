"""The golden record: one value per field for a cluster, chosen by survivorship rules.

`most_recent` takes the value of the record updated last (the resolution's `updated` field),
`most_trusted` the value of the most trusted source, `most_complete` the longest value,
`most_frequent` the value most records have, `sum` adds the values up (points, balances). Ties
go to the more trusted source, then the more recent record, then the record's name, so the same
records always give the same golden record. Missing values never win.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from operator import attrgetter

from seamflow.ids import Json

__all__ = ["Survivor", "golden_record"]


@dataclass(frozen=True, slots=True)
class Survivor:
    """A record as survivorship sees it."""

    ref: str
    trust: int
    updated: str
    """ISO date or "" when unknown (oldest)."""
    values: Mapping[str, Json]


_REF, _TRUST, _UPDATED = attrgetter("ref"), attrgetter("trust"), attrgetter("updated")
_FIRST = frozenset({"most_trusted", "most_recent"})
"""Rules that take the first value present in an order of the members (by trust, or by recency)."""


def golden_record(members: Sequence[Survivor], rules: Mapping[str, str], fields: Sequence[str]) -> dict[str, Json]:
    """The golden record of a cluster's `members`; fields without a rule are `most_trusted`."""
    if len(members) == 1:
        only = members[0].values
        return {f: only.get(f) for f in fields}
    by_ref = sorted(members, key=_REF)  # stable sorts, last key first: no per-record key tuples
    ranked = sorted(by_ref, key=_UPDATED, reverse=True)  # "" (unknown) sorts last
    ranked.sort(key=_TRUST, reverse=True)
    recent = sorted(by_ref, key=_TRUST, reverse=True)
    recent.sort(key=_UPDATED, reverse=True)
    golden: dict[str, Json] = {}
    for field in fields:
        rule = rules.get(field, "most_trusted")
        if rule in _FIRST:  # the first value present in one order: no list of the members that have it
            order = recent if rule == "most_recent" else ranked
            golden[field] = next((v for m in order if (v := m.values.get(field)) is not None), None)
            continue
        present = [m for m in ranked if m.values.get(field) is not None]
        if not present:
            golden[field] = None
        elif rule == "sum":
            golden[field] = _sum([m.values[field] for m in present])
        elif rule == "most_complete":
            golden[field] = max(present, key=lambda m: len(str(m.values[field]))).values[field]
        elif rule == "most_frequent":
            counts = Counter(str(m.values[field]) for m in present)
            best = max(counts.values())
            golden[field] = next(m.values[field] for m in present if counts[str(m.values[field])] == best)
        else:
            golden[field] = present[0].values[field]
    return golden


def _sum(values: list[Json]) -> Json:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return sum(v for v in values if isinstance(v, int))
    total = Decimal(0)
    for value in values:
        try:
            total += Decimal(str(value))
        except InvalidOperation:
            continue
    return str(total)
