// Runs: filters (flow, status, time, business key) kept in the URL, keyset pages ("older"), a run's
// timeline, and replay of failed and dead-lettered runs one by one or all those listed.
import { ApiError, get, post, query } from "../api.js";
import { badge, h, jsonBlock, withDateEcho } from "../dom.js";
import { fmt, t } from "../i18n.js";
import { feedbackButton } from "../feedback.js";
import { problem } from "../main.js";

const STATUSES = ["queued", "running", "waiting", "completed", "failed", "dead_letter"];
const REPLAYABLE = ["failed", "dead_letter"];
const PAGE = 50;

export async function render(ctx, args, params) {
  if (args[0]) return one(ctx, args[0]);
  const flows = await get("/api/v1/flows");
  const field = (name, el) => h("label", {}, t(`runs.filter.${name}`), el);
  const flow = h("select", { name: "flow" }, h("option", { value: "" }, t("runs.any")), flows.map((f) => h("option", { value: f.id }, f.id)));
  const status = h("select", { name: "status" }, h("option", { value: "" }, t("runs.any")), STATUSES.map((s) => h("option", { value: s }, t(`status.${s}`))));
  const since = h("input", { name: "since", type: "datetime-local" });
  const until = h("input", { name: "until", type: "datetime-local" });
  const key = h("input", { name: "key", type: "search", placeholder: t("runs.key_placeholder") });
  flow.value = params.get("flow") || "";
  status.value = params.get("status") || "";
  since.value = params.get("since") || "";
  until.value = params.get("until") || "";
  key.value = params.get("key") || "";
  const form = h(
    "form",
    { class: "filters", onsubmit: (e) => { e.preventDefault(); ctx.go(`#/runs${query(values())}`); } },
    field("flow", flow), field("status", status), field("since", withDateEcho(since, fmt.local)), field("until", withDateEcho(until, fmt.local)), field("key", key),
    h("button", { type: "submit", class: "primary" }, t("runs.filter.apply")),
  );
  const values = () => ({ flow: flow.value, status: status.value, since: since.value, until: until.value, key: key.value });
  const body = h("tbody");
  const more = h("button", { type: "button", hidden: true, onclick: () => load() }, t("runs.older"));
  const note = h("p", { class: "muted small", role: "status" });
  const bulk = h("button", { type: "button", class: "danger", hidden: true, onclick: replayListed }, "");
  let listed = [];
  let before = null;

  const toIso = (local) => (local ? new Date(local).toISOString() : "");
  async function load() {
    const v = values();
    const page = await get(`/api/v1/runs${query({ flow: v.flow, status: v.status, since: toIso(v.since), until: toIso(v.until), key: v.key, limit: PAGE, before })}`);
    listed = listed.concat(page);
    for (const run of page) body.append(row(run));
    if (!listed.length) body.replaceChildren(h("tr", {}, h("td", { colspan: 6, class: "muted" }, t("runs.none"))));
    before = page.length ? page[page.length - 1].run_id : before;
    more.hidden = page.length < PAGE;
    const replayable = listed.filter((r) => REPLAYABLE.includes(r.status));
    bulk.hidden = !replayable.length || !replayable.every((r) => ctx.can("operate", r.flow));
    bulk.textContent = t("runs.replay_listed", { count: replayable.length });
  }

  async function replayListed() {
    const targets = listed.filter((r) => REPLAYABLE.includes(r.status));
    if (!confirm(t("runs.replay_confirm", { count: targets.length }))) return;
    let done = 0;
    const failed = [];
    for (const run of targets) {
      try {
        await post(`/api/v1/runs/${run.run_id}/replay`);
        done += 1;
      } catch (error) {
        failed.push(`${run.run_id}: ${error.message}`);
      }
      note.textContent = t("runs.replayed", { done, total: targets.length });
    }
    if (failed.length) note.append(h("br"), failed.join("; "));
  }

  await load();
  return h(
    "section",
    {},
    h("h1", {}, t("runs.title")),
    form,
    h("div", { class: "toolbar" }, bulk, note),
    h(
      "table",
      { class: "grid runs" },
      h("thead", {}, h("tr", {}, ["runs.run", "runs.flow", "runs.status", "runs.created", "runs.finished", "runs.error"].map((k) => h("th", {}, t(k))))),
      body,
    ),
    more,
  );
}

function row(run) {
  return h(
    "tr",
    { "data-run": run.run_id },
    h("td", { class: "mono" }, h("a", { href: `#/runs/${run.run_id}` }, run.run_id)),
    h("td", {}, run.flow),
    h("td", {}, badge(run.status, t(`status.${run.status}`))),
    h("td", {}, fmt.when(run.created)),
    h("td", {}, fmt.when(run.finished)),
    h("td", { class: "clip" }, run.error ? firstLine(run.error) : ""),
  );
}

function firstLine(error) {
  const text = typeof error === "string" ? error : error.message || JSON.stringify(error);
  return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

async function one(ctx, id) {
  const run = await get(`/api/v1/runs/${encodeURIComponent(id)}`);
  const section = h("section", { class: "run", "data-status": run.status });
  const message = h("p", { class: "muted", role: "status" });
  const actions = h("div", { class: "toolbar" });
  if (ctx.can("operate", run.flow) && REPLAYABLE.includes(run.status)) {
    actions.append(
      h(
        "button",
        {
          type: "button",
          class: "primary",
          "data-action": "replay",
          onclick: async (event) => {
            event.target.disabled = true;
            try {
              await post(`/api/v1/runs/${encodeURIComponent(id)}/replay`);
              message.textContent = t("run.replay_queued");
              follow(ctx, id, section);
            } catch (error) {
              event.target.disabled = false;
              message.replaceChildren(problem(error));
            }
          },
        },
        t("run.replay"),
      ),
    );
  }
  actions.append(feedbackButton({ flow: run.flow, run: run.run_id }));
  const parts = [
    h("p", {}, h("a", { href: `#/runs${query({ flow: run.flow })}` }, `← ${t("runs.title")}`)),
    h("h1", {}, t("run.title"), " ", h("span", { class: "mono" }, run.run_id)),
    h(
      "dl",
      { class: "facts" },
      fact(t("runs.flow"), h("a", { href: `#/flows/${encodeURIComponent(run.flow)}` }, run.flow)),
      fact(t("runs.status"), badge(run.status, t(`status.${run.status}`))),
      fact(t("runs.created"), fmt.when(run.created)),
      fact(t("runs.finished"), fmt.when(run.finished)),
      fact(t("flows.version"), h("span", { class: "mono" }, String(run.version).slice(0, 10))),
    ),
    actions,
    message,
    run.error ? h("div", { class: "card error-box" }, h("h2", {}, t("runs.error")), jsonBlock(run.error)) : null,
    h("h2", {}, t("run.timeline")),
    h("ol", { class: "timeline" }, run.steps.map((s) => step(s, run))),
    h("details", { class: "card" }, h("summary", {}, t("run.event")), jsonBlock(run.event)),
  ];
  section.append(...parts.filter(Boolean));
  return section;
}

function fact(name, value) {
  return h("div", {}, h("dt", {}, name), h("dd", {}, value));
}

function step(s, run) {
  return h(
    "li",
    { class: `card step s-${s.status}`, "data-step": s.step },
    h(
      "div",
      { class: "step-head" },
      h("strong", {}, s.step),
      h("span", { class: "muted" }, t(`kind.${s.kind}`)),
      badge(s.status, t(`status.${s.status}`)),
      h("span", { class: "muted small" }, t("run.attempt", { n: s.attempt }), s.generation > 1 ? ` · ${t("run.generation", { n: s.generation })}` : ""),
      h("span", { class: "muted small" }, fmt.when(s.started), " · ", fmt.duration(s.duration_ms)),
      feedbackButton({ flow: run.flow, run: run.run_id, step: s.step }),
    ),
    h(
      "div",
      { class: "io" },
      h("details", {}, h("summary", {}, t("run.input")), jsonBlock(s.input)),
      h("details", { open: s.status !== "completed" }, h("summary", {}, t("run.output")), jsonBlock(s.output)),
      s.error ? h("details", { open: true, class: "error-box" }, h("summary", {}, t("runs.error")), jsonBlock(s.error)) : null,
    ),
  );
}

/** After a replay: read the run again every second until it has finished (at most two minutes). */
function follow(ctx, id, section) {
  const until = Date.now() + 120000;
  const timer = setInterval(async () => {
    try {
      const run = await get(`/api/v1/runs/${encodeURIComponent(id)}`);
      if (["completed", "failed", "dead_letter", "waiting"].includes(run.status) || Date.now() > until) {
        clearInterval(timer);
        const fresh = await one(ctx, id);
        section.replaceWith(fresh);
      }
    } catch (error) {
      if (!(error instanceof ApiError)) clearInterval(timer);
    }
  }, 1000);
  ctx.leaving.push(() => clearInterval(timer));
}
