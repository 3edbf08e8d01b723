"""A profile as text for the terminal, or as one self-contained HTML page with inline SVG charts
(no script, no CDN, no web font: it opens from a mail attachment on a machine without internet).
"""

from __future__ import annotations

from html import escape

from seamflow.quality.profile import ColumnProfile, Profile

__all__ = ["profile_html", "profile_text"]

_BAR_WIDTH = 260


def profile_text(profile: Profile) -> str:
    """Lines for a terminal: one block per column."""
    head = f"{profile.source}: {profile.rows:,} rows" + (f", {profile.encoding}" if profile.encoding else "")
    lines = [head]
    if profile.rules:
        lines.append(f"rules {profile.rules}: {profile.rows_breaking_rules:,} rows break at least one rule")
    for column in profile.columns:
        distinct = f"{'~' if column.is_distinct_estimate else ''}{column.distinct:,}"
        lines.append("")
        lines.append(
            f"{column.name}  {column.type_guess}  nulls {column.null_share:.1%}  distinct {distinct}"
            f"  length {column.min_length}-{column.max_length}"
        )
        top = ", ".join(f"{_short(value)} ({count:,})" for value, count in column.top_values[:5])
        lines.append(f"  top: {top}" if top else "  top: -")
        patterns = ", ".join(f"{pattern} ({count:,})" for pattern, count in column.patterns[:5])
        lines.append(f"  patterns: {patterns}" if patterns else "  patterns: -")
        for rule, count in sorted(column.violations.items(), key=lambda item: -item[1]):
            lines.append(f"  breaks {rule}: {count:,} rows")
    return "\n".join(lines)


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bars(items: list[tuple[str, int]], colour: str) -> str:
    if not items:
        return '<p class="none">no values</p>'
    total = max(count for _, count in items)  # the longest bar is the most frequent value
    height = 22 * len(items) + 4
    rows = []
    for index, (label, count) in enumerate(items):
        width = max(1, round(_BAR_WIDTH * count / total)) if total else 1
        y = 4 + 22 * index
        rows.append(
            f'<text x="0" y="{y + 14}" class="label">{escape(_short(label))}</text>'
            f'<rect x="170" y="{y}" width="{width}" height="16" rx="2" fill="{colour}"/>'
            f'<text x="{176 + width}" y="{y + 13}" class="count">{count:,}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{170 + _BAR_WIDTH + 80}" height="{height}" role="img">'
        + "".join(rows)
        + "</svg>"
    )


def _null_gauge(column: ColumnProfile) -> str:
    filled = round(200 * (1 - column.null_share))
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="12" role="img">'
        '<rect width="200" height="12" rx="3" fill="#f3d1d1"/>'
        f'<rect width="{filled}" height="12" rx="3" fill="#3c8d5a"/></svg>'
    )


def _column_html(column: ColumnProfile) -> str:
    distinct = f"{'≈' if column.is_distinct_estimate else ''}{column.distinct:,}"
    violations = "".join(
        f"<li><code>{escape(rule)}</code> {count:,} 行 rows</li>"
        for rule, count in sorted(column.violations.items(), key=lambda item: -item[1])
    )
    approximate = ' <span class="note">(approximate)</span>' if column.is_top_approximate else ""
    repeats = any(count > 1 for _, count in column.top_values)
    top = _bars(column.top_values, "#4a78b5") if repeats else '<p class="none">没有重复值 no value repeats</p>'

    return f"""
<section class="column">
  <h2>{escape(column.name)} <span class="type">{escape(column.type_guess)}</span></h2>
  <table class="facts">
    <tr><th>非空 filled</th><td>{_null_gauge(column)} {1 - column.null_share:.1%} ({column.nulls:,} 空 nulls)</td></tr>
    <tr><th>不同值 distinct</th><td>{distinct}</td></tr>
    <tr><th>长度 length</th><td>{column.min_length if column.min_length is not None else "-"} –
      {column.max_length if column.max_length is not None else "-"}</td></tr>
    <tr><th>类型 type</th><td>{escape(column.type_guess)} ({column.type_share:.0%} of sampled values pass)</td></tr>
  </table>
  <div class="charts">
    <div><h3>常见值 top values{approximate}</h3>{top}</div>
    <div><h3>格式 patterns</h3>{_bars(column.patterns, "#b58a4a")}</div>
  </div>
  {f'<h3>违反规则 rules broken</h3><ul class="violations">{violations}</ul>' if violations else ""}
</section>"""


def profile_html(profile: Profile) -> str:
    """One HTML page: a summary, then per column the facts, top values and patterns as bar charts."""
    rule_rows = "".join(
        f"<tr><td><code>{escape(rule)}</code></td><td>{count:,}</td></tr>"
        for rule, count in sorted(profile.violations.items(), key=lambda item: -item[1])
    )
    rules = (
        f"<p>规则 rules <b>{escape(profile.rules)}</b>: {profile.rows_breaking_rules:,} 行违反至少一条规则"
        f" rows break at least one rule</p><table class='rules'>{rule_rows}</table>"
        if profile.rules
        else ""
    )
    columns = "".join(_column_html(column) for column in profile.columns)
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>数据概况 Data profile — {escape(profile.source)}</title>
<style>
body {{ font-family: "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; margin: 2rem; color: #222; }}
h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1.1rem; margin: 0 0 .5rem; }} h3 {{ font-size: .9rem; color: #555; }}
.summary {{ background: #f5f7fa; padding: .8rem 1rem; border-radius: 6px; }}
.column {{ border-top: 1px solid #ddd; padding: 1rem 0; }}
.type {{ font-size: .8rem; background: #e8eef7; color: #2d4f7c; padding: .1rem .4rem; border-radius: 4px; }}
.facts th {{ text-align: left; font-weight: normal; color: #666; padding-right: 1rem; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 2rem; }}
svg text {{ font-size: 12px; }} svg .count {{ fill: #555; }}
.note {{ color: #999; font-weight: normal; }} .violations {{ color: #a33; }}
table.rules td {{ padding-right: 1.5rem; }}
</style></head>
<body>
<h1>数据概况 Data profile: {escape(profile.source)}</h1>
<div class="summary"><p>{profile.rows:,} 行 rows · {len(profile.columns)} 列 columns
{f" · {escape(profile.encoding)}" if profile.encoding else ""}</p>{rules}</div>
{columns}
</body></html>
"""
