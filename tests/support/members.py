"""Members of a retail chain with known truth (the generator of examples/member-unification), and a
project of their three sources for `identity` tests and `benchmarks/identity.py`.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "member-unification"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))

from member_unification import data  # noqa: E402 - the example's package, found through its folder

__all__ = ["EXAMPLE", "data", "pair_scores", "write_project"]

_SHOP_HTTP = 'http: {url: "http://127.0.0.1:8120/members?limit=5000"}'


def write_project(members: data.Members, root: Path, *, shop_url: str | None = None) -> Path:
    """Write the POS export (GBK), the CRM database and the shop's members (a CSV, or served at `shop_url`);
    return the resolution file."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "identity").mkdir(exist_ok=True)
    data.write_pos(members, root / "data" / "pos_members.csv")
    data.write_crm(members, root / "data" / "crm.db")
    text = (EXAMPLE / "identity" / "members.yaml").read_text("utf-8")
    if shop_url is None:
        with (root / "data" / "shop.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, list(members.shop[0]))
            writer.writeheader()
            writer.writerows(members.shop)
        text = text.replace(_SHOP_HTTP, "file: ../data/shop.csv")
    else:
        text = text.replace("http://127.0.0.1:8120/members?limit=5000", shop_url)
    target = root / "identity" / "members.yaml"
    target.write_text(text, "utf-8")
    return target


def pair_scores(assignments: dict[str, str], truth: dict[str, Any]) -> dict[str, float]:
    """Precision, recall and F1 of the pairs put in one cluster, against the pairs of one person."""
    by_cluster: dict[str, list[str]] = defaultdict(list)
    for ref, unified in assignments.items():
        by_cluster[unified].append(ref)
    found = same = 0
    for refs in by_cluster.values():
        people: dict[Any, int] = defaultdict(int)
        for ref in refs:
            people[truth[ref]] += 1
        found += len(refs) * (len(refs) - 1) // 2
        same += sum(n * (n - 1) // 2 for n in people.values())
    sizes: dict[Any, int] = defaultdict(int)
    for person in truth.values():
        sizes[person] += 1
    true_pairs = sum(n * (n - 1) // 2 for n in sizes.values())
    precision = same / found if found else 1.0
    recall = same / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "pairs_found": found, "pairs_true": true_pairs}
