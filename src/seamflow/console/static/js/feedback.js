// Feedback: a "Feedback" button on a flow, a run or a step opens a small form (suggestion or
// problem, a text); the Insight page lists open feedback beside the KPIs, and whoever may operate
// closes it with a note. The API keeps both in the event log.
import { get, post, query } from "./api.js";
import { h } from "./dom.js";
import { fmt, t } from "./i18n.js";
import { problem } from "./main.js";

/** A button that opens the feedback form for `about` ({flow, run?, step?}). */
export function feedbackButton(about) {
  const holder = h("span", { class: "feedback" });
  const open = h("button", { type: "button", class: "small", "data-action": "feedback", onclick: () => holder.replaceChildren(form(about, holder, open)) }, t("feedback.give"));
  holder.append(open);
  return holder;
}

function form(about, holder, open) {
  const kind = h("select", { name: "kind" }, ["problem", "suggestion"].map((k) => h("option", { value: k }, t(`feedback.kind.${k}`))));
  const text = h("textarea", { name: "text", rows: 3, maxlength: 4000, placeholder: t("feedback.placeholder") });
  const status = h("span", { class: "muted small", role: "status" });
  const send = async (event) => {
    event.preventDefault();
    try {
      await post("/api/v1/feedback", { ...about, kind: kind.value, text: text.value });
      holder.replaceChildren(open, " ", h("span", { class: "muted small", role: "status" }, t("feedback.thanks")));
    } catch (error) {
      status.replaceChildren(problem(error));
    }
  };
  return h(
    "form",
    { class: "card feedback-form", onsubmit: send },
    h("label", {}, t("feedback.kind"), kind),
    h("label", {}, t("feedback.text"), text),
    h("div", {}, h("button", { type: "submit", class: "primary" }, t("feedback.send")), " ", h("button", { type: "button", onclick: () => holder.replaceChildren(open) }, t("feedback.cancel")), " ", status),
  );
}

/** The Insight page's card: open feedback, newest first, each closable with a note by an operator. */
export async function feedbackCard(ctx) {
  const items = await get(`/api/v1/feedback${query({ status: "open", limit: 20 })}`);
  const list = h("ul", { class: "feedback-list" }, items.map((f) => item(ctx, f)));
  return h("div", { class: "card", "data-card": "feedback" }, h("h2", {}, t("feedback.title"), " ", h("span", { class: "muted small" }, String(items.length))), items.length ? list : h("p", { class: "muted" }, t("feedback.none")));
}

function item(ctx, f) {
  const where = [h("a", { href: `#/flows/${encodeURIComponent(f.flow)}` }, f.flow)];
  if (f.run) where.push(" · ", h("a", { href: `#/runs/${encodeURIComponent(f.run)}`, class: "mono" }, f.run.slice(0, 12)));
  if (f.step) where.push(" · ", f.step);
  const li = h(
    "li",
    { "data-feedback": f.id },
    h("strong", {}, t(`feedback.kind.${f.kind}`)),
    " ",
    h("span", { class: "muted small" }, ...where, ` · ${f.author} · ${fmt.when(f.created_at)}`),
    h("p", {}, f.text),
  );
  if (ctx.can("operate")) {
    const note = h("input", { name: "note", maxlength: 4000, placeholder: t("feedback.note") });
    const status = h("span", { class: "muted small", role: "status" });
    const close = async (event) => {
      event.preventDefault();
      try {
        await post(`/api/v1/feedback/${encodeURIComponent(f.id)}/close`, { note: note.value });
        li.replaceChildren(h("span", { class: "muted" }, t("feedback.closed", { who: f.author })));
      } catch (error) {
        status.replaceChildren(problem(error));
      }
    };
    li.append(h("form", { class: "inline", onsubmit: close }, note, " ", h("button", { type: "submit" }, t("feedback.close")), " ", status));
  }
  return li;
}
