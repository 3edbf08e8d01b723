// Insight: the KPI cards of the project's kpis.yaml (trend per period, before/after a go-live), the
// process map of an object type drawn from its JSON (frequency or performance on the edges), its
// variants and bottlenecks, and the diagnosis' findings with the cases that show them.
import { ApiError, get, query } from "../api.js";
import { h, svg, withDateEcho } from "../dom.js";
import { feedbackCard } from "../feedback.js";
import { fmt, t } from "../i18n.js";
import { problem } from "../main.js";

// The headline measure of each KPI kind, and how it is shown.
const MEASURE = { cycle_time: "median_ms", waiting_time: "median_ms", throughput: "cases", rework: "rework_share" };
const WEIGHT = { cycle_time: "cases", waiting_time: "events", rework: "cases" };
const KEEP_VARIANTS = 8;

export async function render(ctx, args, params) {
  const types = await get("/api/v1/insight/object-types");
  const chosen = params.get("type") || (types.includes("order") ? "order" : types.find((x) => x !== "run") || types[0] || "");
  const view = params.get("view") === "performance" ? "performance" : "frequency";
  const golive = params.get("golive") || "";
  const from = params.get("from") || "";
  const until = params.get("until") || "";
  const go = (changes) => ctx.go(`#/insight${query({ type: chosen, view, golive, from, until, ...changes })}`);
  const day = (name, value) => withDateEcho(h("input", { type: "date", name, value, onchange: (e) => go({ [name]: e.target.value }) }), fmt.day);
  // the map's and the diagnosis' cases: those started in [from, until) (UTC days)
  const cases = { object_type: chosen, from: from && `${from}T00:00:00Z`, until: until && `${until}T00:00:00Z` };

  const typeSelect = h("select", { name: "type", onchange: (e) => go({ type: e.target.value }) }, types.map((x) => h("option", { value: x }, x)));
  typeSelect.value = chosen;
  const golivePicker = withDateEcho(h("input", { type: "date", name: "golive", value: golive, onchange: (e) => go({ golive: e.target.value }) }), fmt.day);
  const toolbar = h(
    "div",
    { class: "filters insight-filters" },
    h("label", {}, t("insight.object_type"), typeSelect),
    h("label", {}, t("insight.from"), day("from", from)),
    h("label", {}, t("insight.until"), day("until", until)),
    h("label", {}, t("insight.go_live"), golivePicker),
  );

  const [kpis, feedback, found, diagnosis] = await Promise.all([
    get(`/api/v1/insight/kpis${query({ before_after: golive })}`).catch(soft),
    feedbackCard(ctx).catch(soft),
    chosen ? get(`/api/v1/insight/map${query(cases)}`).catch(soft) : null,
    chosen ? get(`/api/v1/insight/diagnosis${query({ ...cases, top: 5 })}`).catch(soft) : null,
  ]);
  return h(
    "section",
    { class: "insight" },
    h("h1", {}, t("insight.title")),
    toolbar,
    kpiSection(kpis, golive),
    feedback instanceof Error ? null : feedback,
    types.length ? mapSection(found, view, go) : h("p", { class: "muted card" }, t("insight.no_events")),
    found && !(found instanceof Error) ? h("div", { class: "split" }, variantsCard(found), bottlenecksCard(found)) : null,
    diagnosis ? diagnosisCard(diagnosis) : null,
  );
}

/** A part of the page that cannot be shown says why, and the rest of the page still shows. */
function soft(error) {
  if (error instanceof ApiError) return error;
  throw error;
}

/** When an answer given from the last result was computed, and the events it does not count yet. */
function asOf(answer, what) {
  const at = answer.as_of;
  if (!at) return null;
  const time = fmt.clock(at.computed_at);
  const text = at.arrived_since ? t("insight.as_of_behind", { time, count: fmt.number(at.arrived_since) }) : t("insight.as_of", { time });
  return h("p", { class: "muted small as-of", "data-as-of": what, title: fmt.when(at.computed_at) }, text);
}

// -- KPI cards ------------------------------------------------------------------------------------
function kpiSection(kpis, golive) {
  if (kpis instanceof ApiError) {
    if (kpis.code === "insight.no_kpi_file") return h("p", { class: "muted card", "data-kpis": "none" }, t("insight.no_kpis"));
    return h("div", { class: "card" }, problem(kpis));
  }
  return h(
    "div",
    {},
    h("div", { class: "kpis" }, kpis.kpis.map((k) => kpiCard(k, golive))),
    asOf(kpis, "kpis"),
    golive ? h("p", { class: "muted small" }, t("insight.before_after_hint", { date: fmt.day(golive) })) : h("p", { class: "muted small" }, t("insight.go_live_hint")),
  );
}

function kpiCard(k, golive) {
  const measure = MEASURE[k.kind];
  const dims = k.rows.length ? Object.keys(k.rows[0]).filter((c) => !isMeasure(c) && c !== "period") : [];
  const trend = k.period ? periods(k) : [];
  // With a period, the headline is the latest period's figure and the line shows the ones before.
  const latest = trend.length ? trend[trend.length - 1][0] : null;
  const rows = latest === null ? k.rows : k.rows.filter((r) => r.period === latest);
  const value = headline(k, rows);
  const approx = isApprox(k, rows);
  const parts = [
    h("span", { class: "label" }, k.name),
    h("strong", { class: "figure", "data-kpi": k.id }, value === null ? "—" : `${approx ? "≈ " : ""}${show(measure, value)}`),
    h(
      "span",
      { class: "small muted" },
      t(`insight.measure.${measure}`),
      latest ? ` · ${t("insight.latest", { period: periodDay(latest) })}` : "",
      k.sla ? ` · ${t("insight.sla", { sla: k.sla })}` : "",
    ),
  ];
  if (k.sla && rows.length) {
    const within = weighted(rows, "share_within_sla", "cases");
    if (within !== null) parts.push(h("span", { class: "small" }, t("insight.within_sla", { share: percent(within) })));
  }
  if (trend.length > 1) parts.push(trendLine(trend.map(([, v]) => v), `${k.name}: ${trend.map(([p, v]) => `${periodDay(p)} ${show(measure, v)}`).join(", ")}`), h("span", { class: "small muted" }, t("insight.trend", { first: periodDay(trend[0][0]), last: periodDay(latest), period: t(`insight.period.${k.period}`) })));
  if (k.problem) parts.push(h("span", { class: "small muted", "data-problem": k.id, title: k.problem }, k.problem_code === "insight.object_type_unknown" ? t("insight.kpi_no_objects", { type: k.object_type }) : k.problem));
  if (golive && k.before && k.after) parts.push(beforeAfter(k, measure));
  if (dims.length && !k.period) parts.push(breakdown(k, dims, measure));
  return h("article", { class: "card stat kpi", "data-kpi-card": k.id }, parts);
}

/** A time measure over several rows is a weighted mean of their medians: shown with ≈. */
const isApprox = (k, rows) => rows.length > 1 && MEASURE[k.kind].endsWith("_ms");

const isMeasure = (c) => ["cases", "events", "rework_cases", "rework_share", "median_ms", "p90_ms", "mean_ms", "share_within_sla"].includes(c);

/** One figure for a KPI's rows: the only row's, the sum of cases, or a weighted mean (marked ≈ when shown). */
function headline(k, rows) {
  const measure = MEASURE[k.kind];
  if (!rows || !rows.length) return null;
  if (k.kind === "throughput") return rows.reduce((sum, r) => sum + (r.cases || 0), 0);
  if (k.kind === "rework") {
    const cases = rows.reduce((sum, r) => sum + (r.cases || 0), 0);
    return cases ? rows.reduce((sum, r) => sum + (r.rework_cases || 0), 0) / cases : null;
  }
  if (rows.length === 1) return rows[0][measure];
  return weighted(rows, measure, WEIGHT[k.kind]);
}

function weighted(rows, column, by) {
  let total = 0;
  let sum = 0;
  for (const r of rows) {
    if (r[column] === null || r[column] === undefined) continue;
    total += r[by] || 0;
    sum += r[column] * (r[by] || 0);
  }
  return total ? sum / total : null;
}

/** A period that is a day (`2026-04-01`, the first day of a week or month) in the chosen language. */
const periodDay = (period) => (/^\d{4}-\d{2}-\d{2}$/.test(String(period)) ? fmt.day(String(period)) : period);

/** [period, value] in time order, the rows of a period summed up as the headline is. */
function periods(k) {
  const byPeriod = new Map();
  for (const r of k.rows) byPeriod.set(r.period, [...(byPeriod.get(r.period) || []), r]);
  return [...byPeriod.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([p, rows]) => [p, headline(k, rows)]);
}

function beforeAfter(k, measure) {
  const before = headline(k, k.before);
  const after = headline(k, k.after);
  const change = before && after !== null ? (after - before) / before : null;
  const better = change === null ? "" : (k.kind === "throughput" ? change >= 0 : change <= 0) ? "ok" : "error";
  const figure = (value, rows) => (value === null ? "—" : `${isApprox(k, rows) ? "≈ " : ""}${show(measure, value)}`);
  return h(
    "div",
    { class: "before-after small", "data-before-after": k.id },
    h("span", {}, t("insight.before"), " ", h("b", {}, figure(before, k.before))),
    h("span", {}, " → ", t("insight.after"), " ", h("b", {}, figure(after, k.after))),
    change === null ? null : h("span", { class: better }, ` (${change > 0 ? "+" : ""}${percent(change)})`),
  );
}

function breakdown(k, dims, measure) {
  const rows = [...k.rows].sort((a, b) => (b[measure] ?? 0) - (a[measure] ?? 0)).slice(0, 4);
  return h(
    "table",
    { class: "mini" },
    h("tbody", {}, rows.map((r) => h("tr", {}, h("td", {}, dims.map((d) => r[d] ?? "—").join(" · ")), h("td", { class: "num" }, show(measure, r[measure]))))),
  );
}

function trendLine(values, label) {
  const width = 200;
  const height = 36;
  const top = Math.max(...values.map((v) => v || 0), 1);
  const step = width / (values.length - 1);
  const xy = values.map((v, i) => `${(i * step).toFixed(1)},${(height - ((v || 0) / top) * (height - 6) - 3).toFixed(1)}`);
  return svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, class: "trend", role: "img", "aria-label": label, preserveAspectRatio: "none" },
    svg("polyline", { points: xy.join(" "), fill: "none", stroke: "currentColor", "stroke-width": "2", "vector-effect": "non-scaling-stroke" }),
  );
}

function show(measure, value) {
  if (value === null || value === undefined) return "—";
  if (measure.endsWith("_ms")) return duration(value);
  if (measure.endsWith("share")) return percent(value);
  return fmt.number(value);
}

const percent = (share) => new Intl.NumberFormat(document.documentElement.lang, { style: "percent", maximumFractionDigits: 1 }).format(share);

/** Process times are hours and days, not the milliseconds of a step. */
function duration(ms) {
  const hours = ms / 3600000;
  if (hours >= 48) return t("insight.days", { n: fmt.number(hours / 24, 1) });
  if (hours >= 1) return t("insight.hours", { n: fmt.number(hours, 1) });
  return fmt.duration(ms);
}

// -- the process map ------------------------------------------------------------------------------
function mapSection(found, view, go) {
  if (found instanceof ApiError) return h("div", { class: "card" }, problem(found));
  if (!found) return null;
  const toggle = h(
    "div",
    { class: "tabs", role: "group", "aria-label": t("insight.map") },
    ["frequency", "performance"].map((v) => h("a", { href: "#", class: v === view ? "on" : "", "data-view": v, onclick: (e) => { e.preventDefault(); go({ view: v }); } }, t(`insight.view.${v}`))),
  );
  const median = found.case_duration_ms && found.case_duration_ms.median;
  return h(
    "div",
    { class: "card" },
    h("div", { class: "map-head" }, h("h2", {}, t("insight.map")), toggle),
    h("p", { class: "muted small" }, t("insight.map_summary", { cases: fmt.number(found.cases), events: fmt.number(found.events), variants: fmt.number(found.variant_count), median: median === undefined || median === null ? "—" : duration(median) })),
    h("div", { class: "diagram" }, found.nodes.length ? drawMap(found, view) : h("p", { class: "muted" }, t("insight.no_cases"))),
    h("p", { class: "muted small" }, t(`insight.view_hint.${view}`)),
  );
}

const ROW = 78;
const NODE_W = 240;
const NODE_H = 44;
const LEFT = 250;

/** Activities top to bottom in the order cases meet them (mean position over the variants). */
function activityOrder(found) {
  const weight = {};
  const position = {};
  for (const v of found.variants) {
    [...new Set(v.activities)].forEach((a, i) => {
      weight[a] = (weight[a] || 0) + v.cases;
      position[a] = (position[a] || 0) + i * v.cases;
    });
  }
  const rank = (a) => (weight[a] ? position[a] / weight[a] : 1e9);
  const starts = found.start_activities || {};
  return found.nodes.map((n) => n.activity).sort((a, b) => rank(a) - rank(b) || (starts[b] || 0) - (starts[a] || 0) || (a < b ? -1 : 1));
}

function drawMap(found, view) {
  const order = activityOrder(found);
  const y = Object.fromEntries(order.map((a, i) => [a, 30 + i * ROW]));
  const width = LEFT + NODE_W + 320;
  const height = 50 + order.length * ROW;
  const busiest = Math.max(1, ...found.edges.map((e) => e.frequency));
  const slowest = Math.max(1, ...found.edges.map((e) => e.median_ms || 0));
  const nodes = Object.fromEntries(found.nodes.map((n) => [n.activity, n]));
  const starts = found.start_activities || {};
  const ends = found.end_activities || {};
  const edges = [...found.edges].sort((a, b) => a.frequency - b.frequency).map((e, i) => {
    const label = view === "frequency" ? fmt.number(e.frequency) : duration(e.median_ms);
    const heat = view === "frequency" ? e.frequency / busiest : (e.median_ms || 0) / slowest;
    const colour = view === "frequency" ? `rgb(${Math.round(120 - 90 * heat)},${Math.round(140 - 60 * heat)},${Math.round(170 + 30 * heat)})` : `rgb(${Math.round(110 + 120 * heat)},${Math.round(130 - 100 * heat)},${Math.round(160 - 130 * heat)})`;
    const stroke = 1.2 + 4.5 * heat;
    return edge(e, y, i, label, colour, stroke);
  });
  const boxes = order.map((a) => {
    const n = nodes[a];
    const kind = starts[a] ? "start" : ends[a] ? "end" : "";
    const figure = view === "frequency" ? t("insight.node_frequency", { events: fmt.number(n.frequency), cases: fmt.number(n.cases) }) : t("insight.node_cases", { cases: fmt.number(n.cases) });
    return svg(
      "g",
      { class: `activity ${kind}`, "data-activity": a },
      svg("title", {}, `${a}: ${t("insight.node_frequency", { events: n.frequency, cases: n.cases })}`),
      svg("rect", { x: LEFT, y: y[a], width: NODE_W, height: NODE_H, rx: 8, class: "shape" }),
      svg("text", { x: LEFT + NODE_W / 2, y: y[a] + 19, "text-anchor": "middle", class: "name" }, clip(a, 22)),
      svg("text", { x: LEFT + NODE_W / 2, y: y[a] + 35, "text-anchor": "middle", class: "detail" }, figure),
    );
  });
  return svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, width, height, class: `process-map view-${view}`, role: "img", "aria-label": t("insight.map") },
    svg("defs", {}, svg("marker", { id: "map-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))),
    edges,
    boxes,
  );
}

function edge(e, y, i, label, colour, stroke) {
  let y1 = y[e.source] + NODE_H;
  let y2 = y[e.target];
  const forward = y2 > y1;
  let path;
  let lx;
  let ly;
  let anchor;
  if (e.source === e.target) {
    // the activity repeated (rework): a loop on its left side
    const x = LEFT;
    const top = y[e.source] + 10;
    const bottom = y[e.source] + NODE_H - 10;
    path = `M${x},${top} C${x - 46},${top - 16} ${x - 46},${bottom + 16} ${x},${bottom}`;
    [lx, ly, anchor] = [x - 40, (top + bottom) / 2 + 4, "end"];
  } else if (forward && y2 - y1 <= ROW) {
    const x = LEFT + NODE_W / 2 + ((i % 5) - 2) * 10;
    path = `M${x},${y1} L${x},${y2}`;
    [lx, ly, anchor] = [x + 8, (y1 + y2) / 2 + 4, "start"];
  } else {
    // longer jumps forward bend out to the right, backward ones (rework) to the left
    const side = forward ? 1 : -1;
    const bulge = 50 + Math.abs(y2 - y1) / 6 + (i % 4) * 14;
    const x1 = LEFT + (forward ? NODE_W : 0);
    y1 = y[e.source] + NODE_H / 2;
    y2 = y[e.target] + NODE_H / 2;
    path = `M${x1},${y1} C${x1 + side * bulge},${y1} ${x1 + side * bulge},${y2} ${x1},${y2}`;
    [lx, ly, anchor] = [x1 + side * (bulge * 0.75 + 4), y1 + (y2 - y1) * (0.3 + 0.2 * (i % 3)) + 4, forward ? "start" : "end"];
  }
  return svg(
    "g",
    { class: "map-edge", "data-edge": `${e.source} → ${e.target}` },
    svg("title", {}, `${e.source} → ${e.target}: ${t("insight.edge_title", { n: e.frequency, median: duration(e.median_ms), p90: duration(e.p90_ms) })}`),
    svg("path", { d: path, fill: "none", stroke: colour, "stroke-width": stroke.toFixed(1), "marker-end": "url(#map-arrow)" }),
    svg("text", { x: lx.toFixed(0), y: ly.toFixed(0), "text-anchor": anchor, class: "edge-label" }, label),
  );
}

const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

// -- variants, bottlenecks, diagnosis -------------------------------------------------------------
function variantsCard(found) {
  const rows = found.variants.slice(0, KEEP_VARIANTS).map((v) =>
    h("tr", {}, h("td", { class: "num" }, fmt.number(v.cases)), h("td", { class: "num" }, percent(v.share)), h("td", { class: "path" }, v.activities.join(" → "))),
  );
  return h(
    "div",
    { class: "card", "data-card": "variants" },
    h("h2", {}, t("insight.variants", { count: fmt.number(found.variant_count) })),
    h("table", { class: "grid" }, h("thead", {}, h("tr", {}, ["insight.cases", "insight.share", "insight.path"].map((k) => h("th", {}, t(k))))), h("tbody", {}, rows)),
  );
}

function bottlenecksCard(found) {
  const rows = (found.bottlenecks || []).slice(0, 6).map((b) => {
    const e = found.edges.find((x) => x.source === b.source && x.target === b.target) || {};
    return h("tr", {}, h("td", {}, `${b.source} → ${b.target}`), h("td", { class: "num" }, duration(e.median_ms)), h("td", { class: "num" }, duration(e.p90_ms)), h("td", { class: "num" }, percent(b.share)));
  });
  return h(
    "div",
    { class: "card", "data-card": "bottlenecks" },
    h("h2", {}, t("insight.bottlenecks")),
    rows.length
      ? h("table", { class: "grid" }, h("thead", {}, h("tr", {}, ["insight.edge", "insight.median", "insight.p90", "insight.share_of_time"].map((k) => h("th", {}, t(k))))), h("tbody", {}, rows))
      : h("p", { class: "muted" }, t("insight.no_cases")),
  );
}

function diagnosisCard(diagnosis) {
  if (diagnosis instanceof ApiError) return h("div", { class: "card" }, problem(diagnosis));
  const items = diagnosis.findings.map((f) =>
    h(
      "li",
      { class: `finding k-${f.kind}`, "data-finding": f.kind },
      h("span", { class: "badge" }, t(`insight.finding.${f.kind}`)),
      " ",
      h("strong", {}, f.subject),
      h("div", { class: "small" }, f.median_ms === null || f.median_ms === undefined ? t("insight.finding_cases", { cases: fmt.number(f.cases) }) : t("insight.finding_figures", { cases: fmt.number(f.cases), median: duration(f.median_ms), total: duration(f.total_ms) })),
      f.examples.length ? h("div", { class: "small muted" }, t("insight.examples"), " ", f.examples.map((c) => h("code", { class: "case" }, c))) : null,
    ),
  );
  return h(
    "div",
    { class: "card", "data-card": "diagnosis" },
    h("h2", {}, t("insight.diagnosis")),
    asOf(diagnosis, "diagnosis"),
    items.length ? h("ul", { class: "findings" }, items) : h("p", { class: "muted" }, t("insight.no_findings")),
  );
}
