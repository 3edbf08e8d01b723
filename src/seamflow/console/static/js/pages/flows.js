import { get, post, query } from "../api.js";
import { draw } from "../diagram.js";
import { badge, h } from "../dom.js";
import { feedbackButton } from "../feedback.js";
import { t } from "../i18n.js";

export async function render(ctx, args) {
  if (args[0]) return one(ctx, args[0]);
  const flows = await get("/api/v1/flows");
  const rows = flows.map((f) =>
    h(
      "tr",
      {},
      h("td", {}, h("a", { href: `#/flows/${encodeURIComponent(f.id)}` }, f.id)),
      h("td", {}, f.name || ""),
      h("td", {}, t(`trigger.${f.trigger}`)),
      h("td", {}, badge("completed", t("flows.loaded"))),
      h("td", { class: "mono", title: f.version }, f.version.slice(0, 10)),
      h("td", {}, h("a", { href: `#/runs?flow=${encodeURIComponent(f.id)}` }, t("flows.runs"))),
    ),
  );
  return h(
    "section",
    {},
    h("h1", {}, t("flows.title")),
    ctx.can("build") ? h("p", {}, h("a", { class: "button", href: "#/editor", "data-new-flow": "" }, t("editor.new_flow"))) : null,
    h(
      "table",
      { class: "grid" },
      h(
        "thead",
        {},
        h("tr", {}, ["flows.id", "flows.name", "flows.trigger", "flows.status", "flows.version", ""].map((k) => h("th", {}, k && t(k)))),
      ),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 6, class: "muted" }, t("flows.none")))),
    ),
  );
}

async function one(ctx, id) {
  const flow = await get(`/api/v1/flows/${encodeURIComponent(id)}`);
  const actions = [];
  if ((flow.scopes || []).includes("build")) actions.push(h("a", { class: "button", href: `#/editor/${encodeURIComponent(id)}`, "data-edit": id }, t("editor.edit")), " ");
  if (flow.trigger === "manual" && (flow.scopes || []).includes("operate")) {
    const note = h("span", { class: "muted small" });
    actions.push(
      h(
        "button",
        {
          type: "button",
          onclick: async () => {
            const started = await post(`/api/v1/flows/${encodeURIComponent(id)}/runs`, { input: {} });
            note.textContent = "";
            ctx.go(`#/runs/${started.run_id}`);
          },
        },
        t("flows.start"),
      ),
      note,
    );
  }
  return h(
    "section",
    {},
    h("p", {}, h("a", { href: "#/flows" }, `← ${t("flows.title")}`)),
    h("h1", {}, flow.name || flow.id),
    h(
      "p",
      { class: "muted" },
      `${flow.id} · ${t(`trigger.${flow.trigger}`)} · ${t("flows.version")} `,
      h("span", { class: "mono" }, flow.version.slice(0, 10)),
      " · ",
      h("a", { href: `#/runs${query({ flow: flow.id })}` }, t("flows.runs")),
      " ",
      ...actions,
      " ",
      feedbackButton({ flow: flow.id }),
    ),
    h(
      "div",
      { class: "split" },
      h("div", { class: "card diagram" }, h("h2", {}, t("flows.diagram")), draw(flow.outline, t)),
      h("div", { class: "card" }, h("h2", {}, flow.path ? flow.path.split("/").slice(-2).join("/") : "YAML"), h("pre", { class: "yaml" }, flow.source)),
    ),
  );
}
