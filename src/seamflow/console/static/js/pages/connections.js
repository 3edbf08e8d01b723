// Connections: status (ok, or needs_authorization with an Authorize button for OAuth2 and the command
// that does the same), the last test (kept in this browser), the secrets' names and where they come
// from — never a value. After the provider's consent the server sends the browser back here with
// `?authorized=NAME` or `?authorize_error=CODE` (and `provider_error=`), which the page explains.
import { post } from "../api.js";
import { get } from "../api.js";
import { badge, h } from "../dom.js";
import { fmt, t } from "../i18n.js";

const TESTS = "seamflow.connection_tests";

const AUTHORIZE = "POST /api/v1/connections/{name}/authorize";

export async function render(ctx, _args, params) {
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
      ? h(
          "div",
          {},
          badge("failed", t("connections.needs_authorization")),
          c.authorizes && ctx.may(AUTHORIZE) ? authorizeButton(c.name) : null,
          h("p", { class: "small" }, t(c.authorizes && ctx.may(AUTHORIZE) ? "connections.authorize_or" : "connections.authorize_hint")),
          h("code", {}, `seamflow connections authorize ${c.name}`),
        )
      : h("div", {}, badge("completed", t("connections.ok")), c.authorizes && ctx.may(AUTHORIZE) ? authorizeButton(c.name, true) : null);
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
    outcome(params || new URLSearchParams()),
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

/** Authorize: the API begins the grant and answers the provider's consent page, where the browser goes. */
function authorizeButton(name, again = false) {
  const message = h("p", { class: "error small", role: "alert", hidden: true });
  const button = h(
    "button",
    {
      type: "button",
      class: again ? "" : "primary",
      "data-authorize": name,
      onclick: async () => {
        button.disabled = true;
        try {
          const answer = await post(`/api/v1/connections/${encodeURIComponent(name)}/authorize`);
          window.location.assign(answer.url);
        } catch (error) {
          message.textContent = t(`error.${error.code}`) !== `error.${error.code}` ? t(`error.${error.code}`) : error.message;
          message.hidden = false;
          button.disabled = false;
        }
      },
    },
    t(again ? "connections.authorize_again" : "connections.authorize"),
  );
  return h("div", { class: "authorize" }, button, message);
}

/** What the provider's redirect brought back: connected, or why not (by code; never a secret). */
function outcome(params) {
  const name = params.get("authorized");
  if (name) return h("p", { class: "ok", role: "status", "data-outcome": "authorized" }, t("connections.authorized", { name }));
  const code = params.get("authorize_error");
  if (!code) return null;
  const key = `error.${code}`;
  const said = params.get("provider_error");
  return h(
    "div",
    { class: "error", role: "alert", "data-outcome": code },
    h("p", {}, t("connections.authorize_failed", { name: params.get("connection") || "" })),
    h("p", { class: "small" }, t(key) !== key ? t(key) : code),
    said ? h("p", { class: "small" }, t("connections.provider_said", { error: said })) : null,
  );
}
