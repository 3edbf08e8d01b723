// Syncs: per sync its records, links and open conflicts; per side its feed's health and lag, runs
// pending and failed (dead-lettered records, a link to them on the Runs page); the conflict queue
// with every side's value side by side, and a resolve action (the API writes both systems).
import { ApiError, get, post, query } from "../api.js";
import { badge, h } from "../dom.js";
import { fmt, t } from "../i18n.js";
import { problem } from "../main.js";

const HEALTH = { ok: "completed", failing: "failed", stalled: "waiting" };

export async function render(ctx, args, params) {
  const shown = params.get("conflicts") === "resolved" ? "resolved" : "open";
  let syncs;
  try {
    syncs = await get("/api/v1/syncs");
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
    syncs = []; // the project defines no syncs
  }
  const tabs = h(
    "nav",
    { class: "tabs", "aria-label": t("syncs.conflicts") },
    ["open", "resolved"].map((s) => h("a", { href: `#/syncs${query({ conflicts: s === "open" ? "" : s })}`, class: s === shown ? "on" : "" }, t(`syncs.show_${s}`))),
  );
  const cards = await Promise.all(syncs.map((s) => syncCard(ctx, s, shown)));
  return h(
    "section",
    {},
    h("h1", {}, t("syncs.title")),
    tabs,
    cards.length ? cards : h("p", { class: "muted" }, t("syncs.none")),
    h("p", { class: "muted small" }, t("syncs.hint")),
  );
}

async function syncCard(ctx, s, shown) {
  const conflicts = await get(`/api/v1/syncs/${encodeURIComponent(s.sync)}/conflicts${query({ status: shown })}`);
  const facts = [
    ["syncs.mode", t(`syncs.mode_${s.mode}`)],
    ["syncs.records", fmt.number(s.records)],
    ["syncs.deleted", fmt.number(s.deleted)],
    ["syncs.open_conflicts", fmt.number(s.open_conflicts)],
  ];
  const sides = Object.entries(s.per_side || {}).map(([side, p]) =>
    h(
      "tr",
      { "data-side": side },
      h("td", {}, h("strong", {}, side)),
      h("td", {}, p.feed_health ? badge(HEALTH[p.feed_health] || "queued", t(`syncs.health_${p.feed_health}`)) : h("span", { class: "muted" }, "—")),
      h("td", { "data-lag": side }, p.lag_s === null ? "—" : fmt.duration(p.lag_s * 1000)),
      h("td", { class: "small" }, fmt.when(p.last_ok)),
      h("td", {}, fmt.number((s.linked || {})[side] || 0)),
      h("td", {}, fmt.number(p.pending)),
      h(
        "td",
        { "data-failed": side },
        p.failed && p.flow
          ? h("a", { href: `#/runs${query({ flow: p.flow, status: "dead_letter" })}`, class: "error" }, fmt.number(p.failed))
          : fmt.number(p.failed),
      ),
    ),
  );
  return h(
    "article",
    { class: "card", "data-sync": s.sync },
    h("h2", {}, s.sync, " ", s.open_conflicts ? badge("failed", t("syncs.conflicts_count", { count: s.open_conflicts })) : badge("completed", t("syncs.in_step"))),
    h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, t(k)), h("dd", {}, v)))),
    h(
      "table",
      { class: "grid sides" },
      h("thead", {}, h("tr", {}, ["syncs.side", "syncs.feed", "syncs.lag", "syncs.last_ok", "syncs.linked", "syncs.pending", "syncs.failed"].map((k) => h("th", {}, t(k))))),
      h("tbody", {}, sides),
    ),
    h("h2", { class: "gap" }, shown === "open" ? t("syncs.conflicts") : t("syncs.resolved_conflicts")),
    conflictTable(ctx, s, conflicts),
  );
}

function conflictTable(ctx, s, conflicts) {
  if (!conflicts.length) return h("p", { class: "muted" }, t("syncs.no_conflicts"));
  const sides = s.sides || [];
  return h(
    "table",
    { class: "grid conflicts" },
    h(
      "thead",
      {},
      h("tr", {}, h("th", {}, t("syncs.record")), h("th", {}, t("syncs.field")), sides.map((side) => h("th", {}, t("syncs.value_in", { side }))), h("th", {}, t("syncs.resolution"))),
    ),
    h("tbody", {}, conflicts.map((c) => conflictRow(ctx, c, sides))),
  );
}

function conflictRow(ctx, c, sides) {
  const outcome = h("td", { class: "resolution" });
  const cells = sides.map((side) => h("td", { class: "candidate", "data-candidate": side }, h("div", { class: "value" }, show(c.candidates[side]))));
  const row = h(
    "tr",
    { "data-conflict": c.id },
    h("td", {}, h("code", {}, c.canonical_id), h("div", { class: "small muted" }, fmt.when(c.created))),
    h("td", {}, h("strong", {}, c.field)),
    cells,
    outcome,
  );
  if (c.status !== "open") {
    outcome.append(badge("completed", t("syncs.resolved")), " ", h("span", { class: "value" }, show(c.resolution && typeof c.resolution === "object" && "value" in c.resolution ? c.resolution.value : c.resolution)), h("div", { class: "small muted" }, fmt.when(c.resolved)));
    return row;
  }
  if (!ctx.can("operate")) {
    outcome.append(h("span", { class: "muted small" }, t("syncs.needs_operate")));
    return row;
  }
  const resolve = async (value, button) => {
    for (const b of row.querySelectorAll("button")) b.disabled = true;
    try {
      await post(`/api/v1/syncs/conflicts/${encodeURIComponent(c.id)}/resolve`, { value });
      outcome.replaceChildren(badge("completed", t("syncs.resolved")), " ", h("span", { class: "value" }, show(value)), h("div", { class: "small muted" }, t("syncs.written_both")));
      row.classList.add("done");
    } catch (error) {
      outcome.append(problem(error));
      for (const b of row.querySelectorAll("button")) b.disabled = false;
      button.focus();
    }
  };
  sides.forEach((side, i) => {
    const keep = h("button", { type: "button", class: "primary", "data-keep": side, onclick: (e) => resolve(c.candidates[side], e.target) }, t("syncs.keep", { side }));
    cells[i].append(keep);
  });
  const other = h("input", { type: "text", name: "value", "aria-label": t("syncs.other_value"), placeholder: t("syncs.other_value") });
  outcome.append(
    h(
      "form",
      { class: "other", onsubmit: (e) => { e.preventDefault(); if (other.value.trim()) resolve(other.value, e.submitter); } },
      other,
      h("button", { type: "submit" }, t("syncs.use_other")),
    ),
  );
  return row;
}

function show(value) {
  if (value === null || value === undefined || value === "") return t("syncs.empty_value");
  return typeof value === "string" ? value : JSON.stringify(value);
}
