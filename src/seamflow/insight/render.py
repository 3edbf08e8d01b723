"""The process map drawn for a person: a self-contained SVG, and an HTML page with it and the
variants and bottlenecks (no script, no stylesheet or font from elsewhere: it opens offline)."""

from __future__ import annotations

import html
from datetime import timedelta

from seamflow.insight.diagnosis import Diagnosis
from seamflow.insight.process_map import Edge, ProcessMap

__all__ = ["diagnosis_html", "map_html", "map_svg"]

_FINDING_TITLES = {
    "bottleneck": "Bottlenecks (where cases spend their time)",
    "handoff": "Hand-offs between people (the wait at each)",
    "system_handoff": "Hand-offs between systems (the wait at each)",
    "department_handoff": "Hand-offs between departments (the wait at each)",
    "rework": "Rework (activities done more than once in a case)",
    "entered_twice": "The same data typed into two systems (the time until the last entry)",
}

_ROW = 92
_NODE_W = 260
_NODE_H = 46
_LEFT = 300


def map_svg(found: ProcessMap) -> str:
    """The map as SVG: activities top to bottom in the order cases meet them, edges labelled with
    frequency and median time; the darker an edge, the more time cases spend on it in total."""
    order = _activity_order(found)
    y = {a: 40 + i * _ROW for i, a in enumerate(order)}
    width, height = _LEFT + _NODE_W + 360, 60 + len(order) * _ROW
    worst = max((e.total_ms for e in found.edges), default=1) or 1
    busiest = max((e.frequency for e in found.edges), default=1) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        ' font-family="Noto Sans CJK SC, PingFang SC, Microsoft YaHei, sans-serif" font-size="13">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9"'
        ' markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
        f'<text x="12" y="22" font-size="15" font-weight="bold">{_e(found.object_type)}: {found.cases} cases,'
        f" {found.events} events, {found.variant_count} variants</text>",
    ]
    for i, edge in enumerate(sorted(found.edges, key=lambda e: e.frequency)):
        parts.append(_edge_svg(edge, y, i, worst, busiest))
    for activity in order:
        node = next(n for n in found.nodes if n.activity == activity)
        starts, ends = found.start_activities.get(activity, 0), found.end_activities.get(activity, 0)
        fill = "#e8f1fb" if starts else "#eef7ee" if ends else "#f6f6f6"
        parts.append(
            f"<g><title>{_e(activity)}: {node.frequency} events in {node.cases} cases; starts {starts}, ends {ends}"
            f'</title><rect x="{_LEFT}" y="{y[activity]}" width="{_NODE_W}" height="{_NODE_H}" rx="8" fill="{fill}"'
            f' stroke="#456"/><text x="{_LEFT + _NODE_W / 2}" y="{y[activity] + 20}" text-anchor="middle"'
            f' font-weight="bold">{_e(activity)}</text><text x="{_LEFT + _NODE_W / 2}" y="{y[activity] + 37}"'
            f' text-anchor="middle" fill="#444">{node.frequency} events · {node.cases} cases</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def map_html(found: ProcessMap, title: str = "Process map") -> str:
    """An HTML page with the map's SVG, its bottlenecks and its variants."""
    total = sum(e.total_ms for e in found.edges) or 1
    bottlenecks = "".join(
        f"<tr><td>{_e(e.source)} → {_e(e.target)}</td><td>{e.frequency}</td><td>{_duration(e.median_ms)}</td>"
        f"<td>{_duration(e.p90_ms)}</td><td>{e.total_ms / total:.1%}</td></tr>"
        for e in found.bottlenecks()
    )
    variants = "".join(
        f"<tr><td>{v.cases}</td><td>{v.share:.1%}</td><td>{' → '.join(_e(a) for a in v.activities)}</td></tr>"
        for v in found.variants
    )
    median = found.case_duration_ms.get("median")
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>body{{font-family:sans-serif;margin:24px}}"
        "table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        f"</style></head><body><h1>{_e(title)}</h1>"
        f"<p>{found.cases} cases · {found.events} events · median case duration "
        f"{_duration(median) if median is not None else '–'}</p>{map_svg(found)}"
        "<h2>Bottlenecks (where cases spend their time)</h2><table><tr><th>edge</th><th>cases passing</th>"
        f"<th>median</th><th>p90</th><th>share of time</th></tr>{bottlenecks}</table>"
        f"<h2>Variants</h2><table><tr><th>cases</th><th>share</th><th>path</th></tr>{variants}</table>"
        "</body></html>"
    )


def diagnosis_html(report: Diagnosis, title: str = "Process diagnosis") -> str:
    """An HTML page with the diagnosis' findings, a table per kind, each with its cases."""
    sections = []
    for kind, heading in _FINDING_TITLES.items():
        rows = "".join(
            f"<tr><td>{_e(f.subject)}</td><td>{f.cases}</td>"
            f"<td>{'–' if f.median_ms is None else _duration(f.median_ms)}</td>"
            f"<td>{'–' if f.total_ms is None else _duration(f.total_ms)}</td>"
            f"<td>{_e(' '.join(f.examples))}</td></tr>"
            for f in report.findings
            if f.kind == kind
        )
        body = (
            f"<table><tr><th>where</th><th>cases</th><th>median</th><th>total</th><th>cases that show it</th></tr>"
            f"{rows}</table>"
            if rows
            else "<p>none found</p>"
        )
        sections.append(f'<h2 id="{kind}">{_e(heading)}</h2>{body}')
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>body{{font-family:sans-serif;margin:24px}}"
        "table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        f"</style></head><body><h1>{_e(title)}</h1>"
        f"<p>{_e(report.object_type)}: {report.cases} cases</p>{''.join(sections)}</body></html>"
    )


def _edge_svg(edge: Edge, y: dict[str, int], i: int, worst: int, busiest: int) -> str:
    y1: float = y[edge.source] + _NODE_H
    y2: float = y[edge.target]
    is_forward = y2 > y1
    if is_forward and y2 - y1 <= _ROW:  # the next row: a straight line
        x = _LEFT + _NODE_W / 2 + (i % 5 - 2) * 10
        path = f"M{x},{y1} L{x},{y2}"
        label_x, label_y, anchor = x + 8, (y1 + y2) / 2 + 4, "start"
    else:
        # Longer jumps forward bend out to the right, backward ones (rework) to the left.
        side = 1 if is_forward else -1
        bulge = 60 + abs(y2 - y1) / 6 + (i % 4) * 14
        x1 = _LEFT + (_NODE_W if is_forward else 0)
        y1 = y[edge.source] + _NODE_H / 2
        y2 = y[edge.target] + _NODE_H / 2
        path = f"M{x1},{y1} C{x1 + side * bulge},{y1} {x1 + side * bulge},{y2} {x1},{y2}"
        # Labels of long edges sit at different heights along the curve, so neighbours do not overlap.
        share = 0.3 + 0.2 * (i % 3)
        label_x, label_y = x1 + side * (bulge * 0.75 + 4), y1 + (y2 - y1) * share + 4
        anchor = "start" if is_forward else "end"
    heat = edge.total_ms / worst  # grey-blue for little time in total, red for the most
    colour = f"rgb({int(110 + 120 * heat)},{int(130 - 100 * heat)},{int(160 - 130 * heat)})"
    width = 1 + 5 * edge.frequency / busiest
    return (
        f"<g><title>{_e(edge.source)} → {_e(edge.target)}: {edge.frequency} times, median"
        f" {_duration(edge.median_ms)}, p90 {_duration(edge.p90_ms)}</title>"
        f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="{width:.1f}" marker-end="url(#arrow)"/>'
        f'<text x="{label_x:.0f}" y="{label_y:.0f}" text-anchor="{anchor}" fill="#333">{edge.frequency} ·'
        f" {_duration(edge.median_ms)}</text></g>"
    )


def _activity_order(found: ProcessMap) -> list[str]:
    """Activities top to bottom so that as few cases as possible go upwards.

    The greedy heuristic of Eades, Lin and Smyth on the edge frequencies: activities nothing flows
    out of go last, those nothing flows into go first, otherwise the one whose outflow most exceeds
    its inflow comes next. Ties keep the order in which cases meet the activities.
    """
    rank = _mean_position(found)
    left = {n.activity for n in found.nodes}
    weight = {(e.source, e.target): e.frequency for e in found.edges if e.source != e.target}
    head: list[str] = []
    tail: list[str] = []

    def flow(a: str, outward: bool) -> int:
        return sum(w for (s, t), w in weight.items() if (s if outward else t) == a and (t if outward else s) in left)

    while left:
        if sinks := sorted((a for a in left if flow(a, True) == 0), key=lambda a: (-rank.get(a, 1e9), a)):
            tail.insert(0, sinks[0])
            left.remove(sinks[0])
            continue
        if sources := sorted((a for a in left if flow(a, False) == 0), key=lambda a: (rank.get(a, 1e9), a)):
            head.append(sources[0])
            left.remove(sources[0])
            continue
        best = max(left, key=lambda a: (flow(a, True) - flow(a, False), -rank.get(a, 1e9), a))
        head.append(best)
        left.remove(best)
    first = max(found.start_activities.items(), key=lambda x: (x[1], x[0]))[0] if found.start_activities else None
    return _settle(head + tail, weight, first)


def _settle(order: list[str], weight: dict[tuple[str, str], int], first: str | None) -> list[str]:
    """Move single activities where cases go upwards least, then where edges are shortest (a rework
    step such as "Order corrected" lands beside the activity it loops with); `first` stays on top."""

    def cost(candidate: list[str]) -> tuple[int, int]:
        at = {a: i for i, a in enumerate(candidate)}
        upwards = sum(w for (s, t), w in weight.items() if at[t] < at[s])
        length = sum(w * abs(at[t] - at[s]) for (s, t), w in weight.items())
        return upwards, length

    best = cost(order)
    for _ in range(3):
        moved = False
        for activity in list(order):
            rest = [a for a in order if a != activity]
            for i in range(len(rest) + 1):
                candidate = [*rest[:i], activity, *rest[i:]]
                if first is not None and candidate[0] != first:
                    continue  # the activity most cases start with stays on top
                if (found := cost(candidate)) < best:
                    order, best, moved = candidate, found, True
        if not moved:
            break
    return order


def _mean_position(found: ProcessMap) -> dict[str, float]:
    weight: dict[str, float] = {}
    position: dict[str, float] = {}
    for v in found.variants:
        for i, activity in enumerate(dict.fromkeys(v.activities)):
            weight[activity] = weight.get(activity, 0) + v.cases
            position[activity] = position.get(activity, 0) + i * v.cases
    return {a: position[a] / weight[a] for a in weight}


def _duration(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{timedelta(milliseconds=ms).total_seconds() / 86400:.1f} d"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
