// The console's shell: language, who is signed in, role-aware navigation, and a hash router.
import { ApiError, call, get } from "./api.js";
import { h } from "./dom.js";
import { chooseLanguage, loadLanguage, t } from "./i18n.js";

const PAGES = {
  signin: () => import("./pages/signin.js"),
  overview: () => import("./pages/overview.js"),
  flows: () => import("./pages/flows.js"),
  runs: () => import("./pages/runs.js"),
  inbox: () => import("./pages/inbox.js"),
  connections: () => import("./pages/connections.js"),
  syncs: () => import("./pages/syncs.js"),
  insight: () => import("./pages/insight.js"),
  editor: () => import("./pages/editor.js"), // loaded only when a flow is edited
};
const NAV = [
  // page, the route it reads: shown when GET /api/v1/me lists it (the API refuses the same calls)
  ["overview", "GET /api/v1/overview"],
  ["flows", "GET /api/v1/flows"],
  ["runs", "GET /api/v1/runs"],
  ["inbox", "POST /api/v1/tasks/{task_id}/decision"],
  ["connections", "GET /api/v1/connections"],
  ["syncs", "GET /api/v1/syncs"],
  ["insight", "GET /api/v1/insight/map"],
];

const ctx = {
  me: null,
  flowScopes: {},
  /** Whether the user holds `scope` everywhere or, given a flow id, on that flow (a grant). */
  can: (scope, flow) =>
    Boolean(ctx.me && (ctx.me.scopes.includes(scope) || (flow && (ctx.flowScopes[flow] || []).includes(scope)))),
  /** Whether GET /api/v1/me lists "METHOD /path" (from the API's one route table). */
  may: (route) => Boolean(ctx.me && ctx.me.routes.includes(route)),
  leaving: [],
  go: (hash) => {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  refreshMe: async () => {
    try {
      ctx.me = await get("/api/v1/me");
      const flows = ctx.may("GET /api/v1/flows") ? await get("/api/v1/flows") : [];
      ctx.flowScopes = Object.fromEntries(flows.map((f) => [f.id, f.scopes || []]));
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      ctx.me = null;
    }
    renderHeader();
  },
};

function renderHeader() {
  const top = document.getElementById("top");
  top.hidden = !ctx.me;
  if (!ctx.me) return;
  const current = location.hash.split("/")[1] || "overview";
  const nav = document.getElementById("nav");
  nav.replaceChildren(
    ...NAV.filter(([, route]) => ctx.may(route)).map(([page]) =>
      h("a", { href: `#/${page}`, class: page === current ? "on" : "", "data-page": page }, t(`nav.${page}`)),
    ),
  );
  document.getElementById("who").textContent = t("header.signed_in_as", { login: ctx.me.login });
  document.getElementById("signout").textContent = t("header.sign_out");
}

function parseHash() {
  const [path, search] = (location.hash.replace(/^#/, "") || "/overview").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || "overview", args: parts.slice(1), params: new URLSearchParams(search || "") };
}

let routing = 0;
async function route() {
  const mine = ++routing;
  for (const stop of ctx.leaving.splice(0)) stop();
  let { page, args, params } = parseHash();
  if (!ctx.me && page !== "signin") page = "signin";
  if (!(page in PAGES)) page = "overview";
  renderHeader();
  const main = document.getElementById("page");
  try {
    const module = await PAGES[page]();
    const content = await module.render(ctx, args, params);
    if (mine === routing) {
      main.replaceChildren(content);
      document.title = `${t(`nav.${page}`)} · Seamflow`;
    }
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && page !== "signin") {
      ctx.me = null;
      ctx.go("#/signin");
      return;
    }
    if (mine === routing) main.replaceChildren(problem(error));
  }
}

/** An error in the user's language when its code is known, with the server's words (English) below. */
export function problem(error) {
  if (!(error instanceof ApiError)) return h("p", { class: "error", role: "alert" }, String(error));
  const key = `error.${error.code}`;
  const known = t(key) !== key;
  return h(
    "div",
    { class: "error", role: "alert" },
    h("p", {}, known ? t(key) : `${error.status} ${error.code || ""}`),
    h("p", { class: "small" }, `${error.code || error.status}: ${error.message}`),
  );
}

async function start() {
  await loadLanguage(chooseLanguage());
  const picker = document.getElementById("lang");
  picker.value = document.documentElement.lang;
  picker.addEventListener("change", async () => {
    await loadLanguage(picker.value, true);
    route();
  });
  document.getElementById("signout").addEventListener("click", async () => {
    await call("DELETE", "/api/v1/session").catch(() => null);
    ctx.me = null;
    ctx.go("#/signin");
  });
  await ctx.refreshMe();
  window.addEventListener("hashchange", route);
  await route();
  document.body.dataset.ready = "1";
}

start();
