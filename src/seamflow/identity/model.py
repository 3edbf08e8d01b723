"""The match model: deterministic rules and a Fellegi–Sunter score over comparison levels.

Each compared field of a pair falls in one level (`exact`, `pinyin`, `similar`, … `different`, or
`null` when either side is missing); the level's weight is log2(m/u). A pair's score is the prior's
log2 odds plus the weights; its match probability is 2^s / (1 + 2^s). A pair is linked when a
deterministic rule holds (the same normalised ID number, phone, …) or the probability reaches the
threshold. Levels are computed for many pairs at once (numpy, rapidfuzz's `cpdist` on both cores),
and the real-time match and `explain` go through the same code with one or a few pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rapidfuzz import distance, process

from seamflow.identity.prepare import Prepared
from seamflow.identity.spec import KIND_LEVELS, FieldKind, Resolution
from seamflow.ids import Json

__all__ = ["Comparison", "Explanation", "MatchModel", "Scored"]

_NULL = -1
SIMILAR_NAME_CHARS = 0.6
"""Two names are `similar` when their pinyin is one edit apart, or they are as long and this Indel-similar in
their characters: 董倩雪 and 董倩静 (one character of three). 郭霞 and 郭霞晓 are not (a relative, more often)."""
SIMILAR_EMAIL = 0.9
SIMILAR_ADDRESS = 0.85
"""Indel similarity (rapidfuzz `ratio`) of the compact addresses at which they are `similar`; 0.6: `partial`."""
PARTIAL_ADDRESS = 0.6
SIMILAR_TEXT = 0.9

Column = npt.NDArray[np.object_]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One field's comparison in an explanation."""

    field: str
    level: str
    left: str | None
    right: str | None
    m: float | None
    u: float | None
    weight: float

    def as_json(self) -> dict[str, Json]:
        """The comparison as JSON."""
        return {
            "field": self.field,
            "level": self.level,
            "left": self.left,
            "right": self.right,
            "m": self.m,
            "u": self.u,
            "weight": round(self.weight, 3),
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why two records are or are not the same: the rules that held, each comparison's level and weight."""

    left: str
    right: str
    rules: list[str]
    comparisons: list[Comparison]
    prior_weight: float
    score: float
    probability: float
    is_match: bool

    def as_json(self) -> dict[str, Json]:
        """The explanation as JSON."""
        rules: list[Json] = list(self.rules)
        comparisons: list[Json] = [c.as_json() for c in self.comparisons]
        return {
            "left": self.left,
            "right": self.right,
            "rules": rules,
            "comparisons": comparisons,
            "prior_weight": round(self.prior_weight, 3),
            "score": round(self.score, 3),
            "probability": round(self.probability, 6),
            "is_match": self.is_match,
        }


@dataclass(frozen=True, slots=True)
class Scored:
    """Pairs scored at once: per pair the score, whether a rule held and whether it is linked."""

    score: npt.NDArray[np.float64]
    by_rule: npt.NDArray[np.bool_]
    is_match: npt.NDArray[np.bool_]


class MatchModel:
    """The rules and weights of one resolution file, applied to prepared records."""

    def __init__(self, resolution: Resolution) -> None:
        self.resolution = resolution
        self.prior_weight = math.log2(resolution.prior / (1 - resolution.prior))
        self.threshold_score = math.log2(resolution.threshold / (1 - resolution.threshold))
        self._weights: dict[str, npt.NDArray[np.float64]] = {}
        for field, levels in resolution.comparisons.items():
            names = KIND_LEVELS[resolution.fields[field]]
            self._weights[field] = np.array([math.log2(levels[n].m / levels[n].u) for n in names] + [0.0])

    def columns(self, records: Sequence[Prepared]) -> dict[str, Column]:
        """The comparison forms the model reads, one column per form ("" where missing)."""
        wanted = set(self._weights)
        for field in self._weights:
            if self.resolution.fields[field] in (FieldKind.NAME,):
                wanted.add(f"{field}.pinyin")
            if self.resolution.fields[field] is FieldKind.EMAIL:
                wanted.add(f"{field}.local")
        for rule in self.resolution.rules:
            wanted.update(rule.same)
        found: dict[str, Column] = {}
        for form in wanted:
            column = np.empty(len(records), dtype=object)
            column[:] = [r.forms.get(form, "") for r in records]
            found[form] = column
        return found

    def score(self, columns: dict[str, Column], left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]) -> Scored:
        """Score the pairs (left[k], right[k]) of records given as columns."""
        total = np.full(len(left), self.prior_weight)
        for field, weights in self._weights.items():
            total += weights[self.levels(field, columns, left, right)]
        by_rule = np.zeros(len(left), dtype=bool)
        for rule in self.resolution.rules:
            holds = np.ones(len(left), dtype=bool)
            for field in rule.same:
                a, b = columns[field][left], columns[field][right]
                holds &= (a != "") & (a == b)
            by_rule |= holds
        return Scored(total, by_rule, by_rule | (total >= self.threshold_score))

    def levels(
        self, field: str, columns: dict[str, Column], left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """Each pair's level of `field` as an index into its kind's levels; -1 (null) where either is missing."""
        kind = self.resolution.fields[field]
        a, b = columns[field][left], columns[field][right]
        names = KIND_LEVELS[kind]
        level = np.full(len(left), names.index("different"), dtype=np.int64)
        if kind is FieldKind.NAME:
            pa, pb = columns[f"{field}.pinyin"][left], columns[f"{field}.pinyin"][right]
            same_length = _lengths(a) == _lengths(b)
            similar = (_distance(pa, pb) <= 1) | (
                same_length & (_similarity(a, b, distance.Indel) >= SIMILAR_NAME_CHARS)
            )
            level[similar] = 2
            level[(pa != "") & (pa == pb)] = 1
        elif kind in (FieldKind.PHONE, FieldKind.RESIDENT_ID):
            level[_distance(a, b) <= 1] = 1
        elif kind is FieldKind.EMAIL:
            level[_similarity(a, b, distance.JaroWinkler) >= SIMILAR_EMAIL] = 2
            la, lb = columns[f"{field}.local"][left], columns[f"{field}.local"][right]
            level[(la != "") & (la == lb)] = 1
        elif kind is FieldKind.ADDRESS:
            similarity = _similarity(a, b, distance.Indel)
            level[similarity >= PARTIAL_ADDRESS] = 2
            level[similarity >= SIMILAR_ADDRESS] = 1
        elif kind is FieldKind.TEXT:
            level[_similarity(a, b, distance.JaroWinkler) >= SIMILAR_TEXT] = 1
        level[a == b] = 0
        level[(a == "") | (b == "")] = _NULL
        return level

    @staticmethod
    def probability(score: float) -> float:
        """The match probability of a score (log2 odds)."""
        return _probability(score)

    def explain(self, left: Prepared, right: Prepared) -> Explanation:
        """Why `left` and `right` are, or are not, the same."""
        columns = self.columns([left, right])
        i, j = np.array([0], dtype=np.int64), np.array([1], dtype=np.int64)
        compared = []
        for field, weights in self._weights.items():
            index = int(self.levels(field, columns, i, j)[0])
            names = KIND_LEVELS[self.resolution.fields[field]]
            level = self.resolution.comparisons[field][names[index]] if index != _NULL else None
            compared.append(
                Comparison(
                    field,
                    names[index] if index != _NULL else "null",
                    _shown(left.values.get(field)),
                    _shown(right.values.get(field)),
                    level.m if level else None,
                    level.u if level else None,
                    float(weights[index]),
                )
            )
        rules = [
            "same " + ", ".join(rule.same)
            for rule in self.resolution.rules
            if all(left.forms.get(f) and left.forms.get(f) == right.forms.get(f) for f in rule.same)
        ]
        score = self.prior_weight + sum(c.weight for c in compared)
        probability = 1.0 if rules else _probability(score)
        is_match = bool(rules) or score >= self.threshold_score
        return Explanation(left.ref, right.ref, rules, compared, self.prior_weight, score, probability, is_match)


def _shown(value: object) -> str | None:
    return None if value is None else str(value)


def _probability(score: float) -> float:
    if score > 60:
        return 1.0
    odds = float(2.0**score)
    return odds / (1 + odds)


def _similarity(a: Column, b: Column, metric: object) -> npt.NDArray[np.float64]:
    if len(a) == 0:
        return np.zeros(0)
    found = process.cpdist(list(a), list(b), scorer=metric.normalized_similarity, workers=_workers(len(a)))  # type: ignore[attr-defined]
    return np.asarray(found, dtype=np.float64)


def _distance(a: Column, b: Column) -> npt.NDArray[np.int64]:
    if len(a) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(process.cpdist(list(a), list(b), scorer=distance.Levenshtein.distance, workers=_workers(len(a))))


_len = np.frompyfunc(len, 1, 1)


def _lengths(column: Column) -> npt.NDArray[np.int64]:
    return np.asarray(_len(column), dtype=np.int64) if len(column) else np.zeros(0, dtype=np.int64)


def _workers(pairs: int) -> int:
    """Every core for a batch; one thread for the few pairs of a real-time match (threads cost more there)."""
    return -1 if pairs > 10_000 else 1
