"""`python -m member_unification`: make the three systems' members, serve the shop, resolve, print.

Run from the repository root:

    PYTHONPATH=examples/member-unification python -m member_unification

It writes data/ (the POS's GBK export, the CRM's SQLite table, the shop's members) in the example,
serves the shop's REST list on 127.0.0.1:8120, runs `seamflow identity resolve identity/members.yaml`
(the store is the example's .seamflow/seamflow.db), and prints the members with the most points
summed over their records, and how well the matching did against the generator's truth.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from member_unification import data
from member_unification.shop import serve_shop

HERE = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m member_unification", description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=3000, help="how many people (records: about 1.7 per person)")
    parser.add_argument("--project", type=Path, default=HERE, help="the example's folder (a copy of it)")
    parser.add_argument("--top", type=int, default=8, help="how many members to print")
    args = parser.parse_args(argv)
    root = args.project.resolve()
    members = data.generate(args.people)
    (root / "data").mkdir(exist_ok=True)
    data.write_pos(members, root / "data" / "pos_members.csv")
    data.write_crm(members, root / "data" / "crm.db")
    data.write_shop(members, root / "data" / "shop_members.json")
    (root / "data" / "truth.json").write_text(json.dumps(members.truth), "utf-8")
    print(f"POS {len(members.pos):,} (GBK CSV), shop {len(members.shop):,} (REST), CRM {len(members.crm):,} (SQL)")
    server = serve_shop(root / "data" / "shop_members.json", 8120)
    try:
        report = _resolve(root)
    finally:
        server.shutdown()
    _print_members(root, args.top)
    _print_quality(report["assignments"], members.truth)
    return 0


def _resolve(root: Path) -> dict[str, object]:
    seamflow = shutil.which("seamflow") or str(Path(sys.executable).parent / "seamflow")
    done = subprocess.run(  # noqa: S603 - our own CLI
        [seamflow, "identity", "resolve", "identity/members.yaml", "--project", str(root), "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    if done.returncode != 0:
        sys.exit(f"identity resolve failed:\n{done.stderr}")
    report = json.loads(done.stdout)
    print(
        f"{report['records']:,} records -> {report['clusters']:,} members"
        f" ({report['links']:,} links among {report['pairs']:,} compared pairs) in {report['seconds']['total']:.1f} s"
    )
    report["assignments"] = _assignments(root)
    return report


def _assignments(root: Path) -> dict[str, str]:
    import sqlite3

    with sqlite3.connect(root / ".seamflow" / "seamflow.db") as db:
        rows = db.execute("SELECT source, source_key, unified_id FROM identity_records WHERE entity = 'member'")
        found = {f"{source}:{key}": unified for source, key, unified in rows}
    db.close()
    return found


def _print_members(root: Path, top: int) -> None:
    import sqlite3

    with sqlite3.connect(root / ".seamflow" / "seamflow.db") as db:
        rows = db.execute("SELECT unified_id, golden, size FROM identity_clusters WHERE entity = 'member'").fetchall()
    db.close()
    members = sorted(((json.loads(g), u, n) for u, g, n in rows), key=lambda m: -int(m[0].get("points") or 0))
    print(f"\n{'unified ID':<11} {'name':<10} {'mobile':<15} {'records':>7} {'points':>8}")
    for golden, unified, size in members[:top]:
        print(f"{unified:<11} {golden.get('name') or '':<10} {golden.get('mobile') or '':<15} {size:>7} {golden['points']:>8,}")


def _print_quality(assignments: dict[str, str], truth: dict[str, int]) -> None:
    by_cluster: dict[str, list[int]] = defaultdict(list)
    for ref, unified in assignments.items():
        by_cluster[unified].append(truth[ref])
    found = sum(len(p) * (len(p) - 1) // 2 for p in by_cluster.values())
    same = sum(n * (n - 1) // 2 for p in by_cluster.values() for n in _counts(p).values())
    true_pairs = sum(n * (n - 1) // 2 for n in _counts(list(truth.values())).values())
    precision, recall = same / max(found, 1), same / max(true_pairs, 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print(f"\nagainst the generator's truth: precision {precision:.4f}, recall {recall:.4f}, F1 {f1:.4f}")


def _counts(values: list[int]) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for value in values:
        counts[value] += 1
    return counts


if __name__ == "__main__":
    sys.exit(main())
