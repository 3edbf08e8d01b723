"""A synthetic order-to-cash log for the process-insight benchmark: orders with delays, rework and deviations.

`generate(cases)` yields `insight.Event`s in ingest order (an event's `seq` is its position);
`write_csv` writes the same events as a flat CSV (one row per event and order) that pm4py reads.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from seamflow import insight

REGIONS = ["华东", "华南", "华北", "西南", "华中"]
PRODUCT_LINES = ["工业泵", "阀门", "传感器"]
START_MS = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
YEAR_MS = 365 * 24 * 3600 * 1000
MINUTE = 60_000

# (activity, median delay after the previous activity in minutes)
HAPPY = [
    ("订单创建", 0),
    ("Credit check", 45),
    ("Approval requested", 5),
    ("Approved by finance", 600),
    ("Goods picked", 240),
    ("Shipped", 180),
    ("Invoice sent", 60),
    ("Payment received", 14_400),
]


def _path(rng: random.Random) -> list[tuple[str, int]]:
    path = list(HAPPY)
    r = rng.random()
    if r < 0.08:  # deviation: the credit check is skipped
        path = [p for p in path if p[0] != "Credit check"]
    elif r < 0.20:  # rework: the credit check is done again after a correction
        i = 2
        path[i:i] = [("Order corrected", 120), ("Credit check", 30)]
    if rng.random() < 0.05:  # deviation: invoiced before shipping
        a, b = path.index(("Shipped", 180)), path.index(("Invoice sent", 60))
        path[a], path[b] = path[b], path[a]
    if rng.random() < 0.6:  # small orders need no approval
        path = [p for p in path if not p[0].startswith("Approv")]
    if rng.random() < 0.03:
        path = path[:-1]  # not paid yet
    return path


def generate(cases: int, seed: int = 15) -> Iterator[insight.Event]:
    """Events of `cases` orders, interleaved roughly in time order, with the same instant for some."""
    rng = random.Random(seed)
    rows: list[tuple[int, int, str, str, int]] = []  # (at_ms, case, activity, customer, step)
    for case in range(cases):
        at = START_MS + rng.randrange(YEAR_MS)
        customer = f"C-{rng.randrange(cases // 8 + 1):05d}"
        for step, (activity, minutes) in enumerate(_path(rng)):
            at += int(rng.expovariate(1 / (minutes * MINUTE))) if minutes else 0
            rows.append((at - at % 1000 if rng.random() < 0.3 else at, case, activity, customer, step))
    rows.sort(key=lambda r: r[0] // 3_600_000)  # ingest roughly in time order: late events within the hour
    for seq, (at, case, activity, customer, step) in enumerate(rows, start=1):
        order = f"SO-{case:06d}"
        if step == 0:
            attributes = {"region": REGIONS[case % 5], "product_line": PRODUCT_LINES[case % 3]}
            objects: tuple[insight.EventObject, ...] = (
                insight.EventObject("order", order, attributes=attributes),
                insight.EventObject("customer", customer),
            )
        else:
            objects = (insight.EventObject("order", order),)
        resource = f"fin-{case % 7}" if activity.startswith("Approved") else None
        yield insight.Event(seq, activity, at, objects, resource=resource)


def write_csv(events: list[insight.Event], path: Path) -> None:
    """One row per event and order: case id, activity, timestamp (ISO, ms), region — what pm4py reads."""
    region: dict[str, str] = {}
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "activity", "timestamp", "region"])
        for e in events:
            for o in e.objects:
                if o.type == "order":
                    region.setdefault(o.id, o.attributes.get("region", ""))
                    stamp = datetime.fromtimestamp(e.at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
                    w.writerow([o.id, e.activity, stamp, region[o.id]])
