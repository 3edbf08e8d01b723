// The approvals inbox: my pending tasks, one task with the request's data and its form, a decision
// with a comment, and my decided tasks (history). Laid out for a phone as well as a desk.
import { get, post, query } from "../api.js";
import { badge, h } from "../dom.js";
import { fmt, t } from "../i18n.js";
import { problem } from "../main.js";
import { formFields, readForm } from "../form.js";

export async function render(ctx, args, params) {
  if (args[0]) return one(ctx, args[0]);
  const tab = params.get("tab") === "history" ? "history" : "pending";
  const tasks = await get(`/api/v1/tasks${query({ assignee: "me", status: tab === "history" ? "decided" : "pending", limit: 100 })}`);
  const tabs = h(
    "nav",
    { class: "tabs" },
    h("a", { href: "#/inbox", class: tab === "pending" ? "on" : "" }, t("inbox.pending")),
    h("a", { href: "#/inbox?tab=history", class: tab === "history" ? "on" : "" }, t("inbox.history")),
  );
  const items = tasks.map((task) =>
    h(
      "li",
      {},
      h(
        "a",
        { class: "card task", href: `#/inbox/${task.id}`, "data-task": task.id },
        h("strong", {}, task.subject || task.step),
        h("span", { class: "muted small" }, t("inbox.from", { who: task.requester || "—" }), " · ", t("inbox.level", { n: task.level })),
        h("span", { class: "small" }, task.decision ? badge(task.decision, t(`decision.${task.decision}`)) : task.due ? t("inbox.due", { when: fmt.when(task.due) }) : ""),
      ),
    ),
  );
  return h(
    "section",
    { class: "inbox" },
    h("h1", {}, t("inbox.title")),
    tabs,
    items.length ? h("ul", { class: "tasks" }, items) : h("p", { class: "muted" }, t(tab === "history" ? "inbox.no_history" : "inbox.empty")),
  );
}

async function one(ctx, id) {
  const task = await get(`/api/v1/tasks/${encodeURIComponent(id)}`);
  const schema = task.form_schema;
  const fields = schema ? formFields(schema, t) : null;
  const comment = h("textarea", { name: "comment", rows: 3 });
  const message = h("div", { role: "status" });
  const isOpen = task.status === "pending" && ctx.can("approve");
  const decide = (decision) => async () => {
    message.replaceChildren();
    try {
      const body = { decision, comment: comment.value };
      if (fields) body.form = readForm(fields);
      const answer = await post(`/api/v1/tasks/${encodeURIComponent(id)}/decision`, body);
      message.replaceChildren(
        h("p", { class: "ok" }, t(answer.approval_settled ? "inbox.settled" : "inbox.decided", { decision: t(`decision.${decision}`) })),
      );
      for (const b of buttons.querySelectorAll("button")) b.disabled = true;
    } catch (error) {
      message.replaceChildren(problem(error));
    }
  };
  const buttons = h(
    "div",
    { class: "toolbar decide" },
    h("button", { type: "button", class: "primary", "data-decision": "approve", onclick: decide("approve") }, t("decision.approve")),
    h("button", { type: "button", "data-decision": "return", onclick: decide("return") }, t("decision.return")),
    h("button", { type: "button", class: "danger", "data-decision": "reject", onclick: decide("reject") }, t("decision.reject")),
  );
  return h(
    "section",
    { class: "inbox task-detail" },
    h("p", {}, h("a", { href: "#/inbox" }, `← ${t("inbox.title")}`)),
    h("h1", {}, task.subject || task.step),
    h(
      "dl",
      { class: "facts" },
      fact(t("inbox.requester"), task.requester || "—"),
      fact(t("inbox.level_name"), String(task.level)),
      fact(t("inbox.created"), fmt.when(task.created)),
      fact(t("inbox.due_label"), fmt.when(task.due)),
      fact(t("runs.status"), task.decision ? badge(task.decision, t(`decision.${task.decision}`)) : badge(task.status, t(`task.${task.status}`))),
      fact(t("runs.run"), h("a", { href: `#/runs/${task.run_id}`, class: "mono" }, task.run_id)),
    ),
    h("div", { class: "card" }, h("h2", {}, t("inbox.data")), dataTable(task.data && "body" in task.data ? task.data.body : task.data)),
    isOpen
      ? h(
          "form",
          { class: "card decision", onsubmit: (e) => e.preventDefault() },
          fields ? h("fieldset", {}, h("legend", {}, t("inbox.form")), fields.element) : null,
          h("label", {}, t("inbox.comment"), comment),
          buttons,
          message,
        )
      : task.comment
        ? h("div", { class: "card" }, h("h2", {}, t("inbox.comment")), h("p", {}, task.comment))
        : null,
  );
}

function fact(name, value) {
  return h("div", {}, h("dt", {}, name), h("dd", {}, value));
}

/** The request's data as rows of name and value; nested values as indented rows. */
function dataTable(data) {
  const rows = [];
  const walk = (value, path) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k);
    } else {
      rows.push(h("tr", {}, h("th", {}, path || "—"), h("td", {}, show(path, value))));
    }
  };
  walk(data, "");
  return h("table", { class: "grid kv" }, h("tbody", {}, rows));
}

function show(path, value) {
  if (typeof value === "number" && /amount|price|total|金额/i.test(path)) return fmt.cny(value);
  if (typeof value === "number") return fmt.number(value, 2);
  if (Array.isArray(value)) return JSON.stringify(value);
  return value === null || value === undefined ? "—" : String(value);
}
