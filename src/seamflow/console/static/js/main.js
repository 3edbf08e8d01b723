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
  // page, the scope it needs (the API refuses the same calls without it)
  ["overview", "read"],
  ["flows", "read"],
  ["runs", "read"],
  ["inbox", "approve"],
  ["connections", "read"],
  ["syncs", "read"],
  ["insight", "read"],
];

const ctx = {
  me: null,
  can: (scope) => Boolean(ctx.me && ctx.me.scopes.includes(scope)),
  leaving: [],
  go: (hash) => {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  refreshMe: async () => {
    try {
      ctx.me = await get("/api/v1/session");
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
    ...NAV.filter(([, scope]) => ctx.can(scope)).map(([page]) =>
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
