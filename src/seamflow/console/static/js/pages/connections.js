// Connections: status (ok, or needs_authorization with the command that signs in again), the last
// test (kept in this browser), the secrets' names and where they come from — never a value.
import { post } from "../api.js";
import { get } from "../api.js";
import { badge, h } from "../dom.js";
import { fmt, t } from "../i18n.js";

const TESTS = "seamflow.connection_tests";

export async function render(ctx) {
  const connections = await get("/api/v1/connections");
  const tests = JSON.parse(sessionStorage.getItem(TESTS) || "{}");
  const rows = connections.map((c) => {
    const last = h("td", { class: "small" }, lastTest(tests[c.name]));
    const test = ctx.can("build")
      ? h(
          "button",
          {
            type: "button",
            onclick: async (event) => {
              event.target.disabled = true;
              try {
                const answer = await post(`/api/v1/connections/${encodeURIComponent(c.name)}/test`);
                tests[c.name] = { ...answer, at: new Date().toISOString() };
              } catch (error) {
                tests[c.name] = { ok: false, message: error.message, at: new Date().toISOString() };
              }
              sessionStorage.setItem(TESTS, JSON.stringify(tests));
              last.replaceChildren(lastTest(tests[c.name]));
              event.target.disabled = false;
            },
          },
          t("connections.test"),
        )
      : null;
    const status = c.status === "needs_authorization"
      ? h("div", {}, badge("failed", t("connections.needs_authorization")), h("p", { class: "small" }, t("connections.authorize_hint")), h("code", {}, `seamflow connections authorize ${c.name}`))
      : badge("completed", t("connections.ok"));
    return h(
      "tr",
      { "data-connection": c.name },
      h("td", {}, h("strong", {}, c.name)),
      h("td", {}, c.connector),
      h("td", {}, status, c.problem ? h("p", { class: "small muted" }, c.problem) : null),
      h("td", { class: "small" }, (c.secrets || []).map((s) => h("div", {}, `${s.name} (${t(`secret.${s.source}`)})`))),
      last,
      h("td", {}, test),
    );
  });
  return h(
    "section",
    {},
    h("h1", {}, t("connections.title")),
    h(
      "table",
      { class: "grid" },
      h("thead", {}, h("tr", {}, ["connections.name", "connections.connector", "connections.status", "connections.secrets", "connections.last_test", ""].map((k) => h("th", {}, k && t(k))))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 6, class: "muted" }, t("connections.none")))),
    ),
    h("p", { class: "muted small" }, t("connections.never_secret")),
  );
}

function lastTest(result) {
  if (!result) return t("connections.not_tested");
  return h("span", {}, badge(result.ok ? "completed" : "failed", result.ok ? t("connections.passed") : t("connections.failed")), " ", fmt.when(result.at), h("br"), result.message || "");
}
