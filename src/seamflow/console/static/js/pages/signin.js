import { ApiError, get, post } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";

export async function render(ctx) {
  const message = h("p", { class: "error", role: "alert", hidden: true });
  const login = h("input", { name: "login", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    { class: "card signin", onsubmit: submit },
    h("h1", {}, t("signin.title")),
    h("label", {}, t("signin.login"), login),
    h("label", {}, t("signin.password"), password),
    message,
    h("button", { type: "submit", class: "primary" }, t("signin.submit")),
    h("p", { class: "muted small" }, t("signin.hint")),
  );
  // the company's identity provider, when the project has oidc.yaml (404 otherwise)
  const provider = await get("/api/v1/session/oidc").catch(() => null);
  if (provider) {
    form.append(
      h("p", { class: "muted small or" }, t("signin.or")),
      h("a", { class: "button sso", href: provider.start, "data-sso": "1" }, t("signin.with_provider", { name: provider.name })),
    );
  }

  async function submit(event) {
    event.preventDefault();
    message.hidden = true;
    try {
      await post("/api/v1/session", { login: login.value.trim(), password: password.value });
      await ctx.refreshMe();
      ctx.go("#/overview");
    } catch (error) {
      message.hidden = false;
      message.textContent =
        error instanceof ApiError && error.code === "auth.unauthorized" ? t("signin.wrong") : error.message;
    }
  }
  return form;
}
