// The low-code flow editor (`#/editor/<flow id>`, `#/editor` for a new flow). It edits the flow as
// data; the server writes it into the flow's YAML file round-tripped, checked like `seamflow flow
// validate`, and only over the version this page started from (If-Match): a save that comes
// second gets the saved version and a diff, and the page merges this change onto it.
import { ApiError, call, get, post } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { problem } from "../main.js";
import { stepIds, stepList, triggerBlock } from "../editor/blocks.js";
import { Fields, pickablePaths, templates } from "../editor/fields.js";
import { merge } from "../editor/merge.js";

const clone = (value) => structuredClone(value);
const NEW_FLOW = { id: "", name: "", trigger: { webhook: { path: "" } }, steps: [], on_error: "dead_letter" };
/** A step's keys in the order engineers write them (a saved file keeps its own order anyway). */
const STEP_ORDER = ["id", "action", "transform", "if", "then", "else", "foreach", "as", "approval", "wait", "emit", "call", "idempotency_key", "with", "steps", "output"];

function ordered(steps) {
  return (steps || []).map((step) => {
    const keys = Object.keys(step).sort((a, b) => rank(a) - rank(b));
    const result = Object.fromEntries(keys.map((k) => [k, step[k]]));
    for (const arm of ["then", "else", "steps"]) if (Array.isArray(result[arm])) result[arm] = ordered(result[arm]);
    return result;
  });
}

const rank = (key) => (STEP_ORDER.includes(key) ? STEP_ORDER.indexOf(key) : STEP_ORDER.length);

/** The editor's stylesheet, added once: the other pages never load it. */
function useStyles() {
  if (document.querySelector("link[data-editor-css]")) return;
  document.head.append(h("link", { rel: "stylesheet", href: "css/editor.css", "data-editor-css": "" }));
}

export async function render(ctx, args) {
  useStyles();
  const flowId = args[0] || null;
  const [palette, loaded] = await Promise.all([get("/api/v1/flows/palette"), flowId ? get(`/api/v1/flows/${encodeURIComponent(flowId)}/source`) : null]);
  const page = new EditorPage(ctx, flowId, palette, loaded);
  return page.root;
}

class EditorPage {
  constructor(ctx, flowId, palette, loaded) {
    this.ctx = ctx;
    this.flowId = flowId;
    this.palette = palette;
    this.base = loaded || { etag: null, source: "", flow: clone(NEW_FLOW), path: null };
    this.draft = clone(this.base.flow);
    this.pasted = null;
    this.sample = { event: null, steps: {}, from: "none" };
    this.status = h("p", { class: "status small", role: "status", "data-status": "" });
    this.problems = h("div", { class: "problems", "data-problems": "" });
    this.yaml = h("pre", { class: "yaml", "data-yaml": "" }, this.base.source);
    this.conflict = h("div", { class: "conflict", "data-conflict": "", hidden: true });
    this.results = h("div", { class: "results", "data-results": "" });
    this.form = h("div", { class: "editor-form" });
    this.pickers = h("div", { class: "pickers", "data-pickers": "" });
    this.eventInfo = h("p", { class: "muted small", "data-event-from": "" });
    this.root = this.layout();
    this.draw();
  }

  layout() {
    const title = this.flowId ? t("editor.title_edit", { id: this.flowId }) : t("editor.title_new");
    const back = this.flowId ? h("a", { href: `#/flows/${encodeURIComponent(this.flowId)}` }, `← ${this.flowId}`) : h("a", { href: "#/flows" }, `← ${t("flows.title")}`);
    const save = h("button", { type: "button", class: "primary", "data-save": "", onclick: () => this.save() }, t("editor.save"));
    const test = h("button", { type: "button", "data-test": "", onclick: () => this.test() }, t("editor.test"));
    const eventBox = h("textarea", { class: "mono", rows: 5, "data-event": "", placeholder: t("editor.event_placeholder") });
    eventBox.addEventListener("change", () => {
      const text = eventBox.value.trim();
      try {
        this.pasted = text ? JSON.parse(text) : null;
        eventBox.classList.remove("bad");
      } catch {
        eventBox.classList.add("bad");
        return;
      }
      this.schedulePreview();
    });
    return h(
      "section",
      { class: "editor", "data-editor": this.flowId || "" },
      h("p", {}, back),
      h("h1", {}, title),
      h("div", { class: "toolbar" }, save, test, this.status),
      this.conflict,
      this.problems,
      h(
        "div",
        { class: "split" },
        this.form,
        h(
          "div",
          { class: "side" },
          h("div", { class: "card" }, h("h2", {}, t("editor.event")), this.eventInfo, eventBox),
          h("div", { class: "card" }, h("h2", {}, t("editor.pickers")), h("p", { class: "muted small" }, t("editor.pickers_hint")), this.pickers),
          h("div", { class: "card" }, h("h2", {}, t("editor.results")), this.results),
          h("div", { class: "card" }, h("h2", {}, this.base.path || "YAML"), this.yaml),
        ),
      ),
    );
  }

  /** Draw the form from the draft (after a structural change); values typed since are in the draft. */
  draw() {
    const fields = new Fields({ draft: this.draft, onChange: () => this.schedulePreview(), onStructure: () => this.draw() });
    fields.filters = this.palette.filters;
    fields.paths = this.fields ? this.fields.paths : [];
    this.fields = fields;
    const head = h(
      "div",
      { class: "card block" },
      h("label", {}, t("flows.id"), this.flowId ? h("code", { "data-flow-id": "" }, this.flowId) : fields.expression(["id"])),
      h("label", {}, t("flows.name"), fields.expression(["name"])),
      h("label", {}, t("editor.description"), fields.expression(["description"], { multiline: true })),
    );
    const onError = h("select", { "data-path": "on_error" }, ["fail", "continue", "dead_letter"].map((k) => h("option", { value: k }, k)));
    onError.value = this.draft.on_error || "fail";
    onError.addEventListener("change", () => {
      this.draft.on_error = onError.value;
      this.schedulePreview();
    });
    this.form.replaceChildren(
      head,
      triggerBlock(fields, this.palette),
      h("div", { class: "card block" }, h("label", {}, t("editor.when"), fields.expression(["when"], { placeholder: "{{ event.body.status == 'signed' }}" }))),
      h("h2", {}, t("editor.steps")),
      stepList(fields, this.palette, ["steps"]),
      h("div", { class: "card block" }, h("label", {}, t("editor.on_error"), onError)),
    );
    this.schedulePreview(0);
  }

  /** The draft as the file will have it: optional texts left empty are left out. */
  cleaned() {
    const flow = clone(this.draft);
    for (const key of ["description", "when", "name"]) if (flow[key] === "" || flow[key] == null) delete flow[key];
    flow.steps = ordered(flow.steps);
    return flow;
  }

  schedulePreview(delay = 350) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.preview(), delay);
  }

  async preview() {
    const mine = (this.previewing = (this.previewing || 0) + 1);
    const flow = this.cleaned();
    const body = { flow_id: this.flowId, flow, event: this.pasted, inputs: templates(flow) };
    let answer;
    try {
      answer = await post("/api/v1/flows/preview", body);
    } catch (error) {
      if (mine === this.previewing) this.problems.replaceChildren(problem(error));
      return;
    }
    if (mine !== this.previewing) return;
    this.sample = { event: answer.event, steps: answer.steps, from: answer.event_from };
    this.fields.paths = pickablePaths(answer.event, answer.steps, stepIds(this.draft));
    this.fields.showPreviews(answer.inputs);
    this.showProblems(answer.problems);
    if (answer.source != null) this.yaml.textContent = answer.source;
    this.eventInfo.textContent = answer.event_from.startsWith("run:") ? t("editor.event_from_run", { run: answer.event_from.slice(4) }) : t(`editor.event_from_${answer.event_from}`);
    this.pickers.replaceChildren(
      ...this.fields.paths.slice(0, 80).map((path) => h("button", { type: "button", class: "chip mono", "data-pick": path, onmousedown: (e) => e.preventDefault(), onclick: () => this.fields.insert(path) }, path)),
    );
  }

  showProblems(problems) {
    this.problems.replaceChildren(
      ...(problems.length ? [h("div", { class: "card error", role: "alert" }, h("h2", {}, t("editor.problems")), h("ul", {}, problems.map((p) => h("li", { class: "mono small" }, p.text || `${p.where}: ${p.problem}`))))] : []),
    );
  }

  async save() {
    this.status.textContent = t("editor.saving");
    const flow = this.cleaned();
    try {
      const answer = this.flowId
        ? await call("PUT", `/api/v1/flows/${encodeURIComponent(this.flowId)}/source`, { flow }, { "If-Match": this.base.etag })
        : await post("/api/v1/flows", { flow });
      if (!this.flowId) return this.ctx.go(`#/editor/${encodeURIComponent(answer.id)}`);
      this.base = answer;
      this.draft = clone(answer.flow);
      this.conflict.hidden = true;
      this.yaml.textContent = answer.source;
      this.draw();
      this.status.textContent = t("editor.saved", { version: answer.etag.replaceAll('"', "") });
      this.status.dataset.status = "saved";
    } catch (error) {
      this.status.dataset.status = "failed";
      this.status.textContent = "";
      if (error instanceof ApiError && error.status === 409 && error.code === "flow.conflict") return this.showConflict(error.body);
      if (error instanceof ApiError && error.status === 422) return this.showProblems(error.body.errors || []);
      this.problems.replaceChildren(problem(error));
    }
  }

  /** Someone saved first: both versions side by side, and merging this change onto theirs. */
  showConflict(body) {
    const latest = body.current;
    const diff = h("pre", { class: "diff", "data-diff": "" }, body.diff.split("\n").map((line) => h("span", { class: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "" }, `${line}\n`)));
    const doMerge = () => {
      const { merged, clashes } = merge(this.base.flow, this.cleaned(), latest.flow);
      this.base = latest;
      this.draft = merged;
      this.conflict.hidden = true;
      this.yaml.textContent = latest.source;
      this.draw();
      this.status.dataset.status = "merged";
      this.status.textContent = clashes.length ? t("editor.merged_clashes", { paths: clashes.join(", ") }) : t("editor.merged");
    };
    const discard = () => {
      this.base = latest;
      this.draft = clone(latest.flow);
      this.conflict.hidden = true;
      this.draw();
    };
    this.conflict.replaceChildren(
      h(
        "div",
        { class: "card error", role: "alert" },
        h("h2", {}, t("editor.conflict")),
        h("p", {}, t("editor.conflict_text")),
        h("div", { class: "split" }, h("div", {}, h("h3", {}, t("editor.theirs")), h("pre", { class: "yaml", "data-theirs": "" }, latest.source)), h("div", {}, h("h3", {}, t("editor.diff")), diff)),
        h("div", { class: "toolbar" }, h("button", { type: "button", class: "primary", "data-merge": "", onclick: doMerge }, t("editor.merge")), h("button", { type: "button", "data-discard": "", onclick: discard }, t("editor.discard"))),
      ),
    );
    this.conflict.hidden = false;
  }

  /** "Test with this event": the draft in shadow against the event (POST /api/v1/flows/test). */
  async test() {
    const raw = this.pasted ?? this.sample.event ?? { body: {} };
    // a pasted payload is the event's body, as the preview reads it; a stored event is whole
    const event = raw && typeof raw === "object" && !Array.isArray(raw) && "body" in raw ? raw : { body: raw };
    this.results.replaceChildren(h("p", { class: "muted" }, t("editor.testing")));
    try {
      const answer = await post("/api/v1/flows/test", { source: this.yaml.textContent, event });
      this.results.replaceChildren(testResults(answer));
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 405)) {
        this.results.replaceChildren(h("p", { class: "muted", "data-test-unavailable": "" }, t("editor.test_unavailable")));
      } else this.results.replaceChildren(problem(error));
    }
  }
}

function testResults(answer) {
  const cell = (value) => h("td", {}, h("pre", { class: "json" }, value == null ? "" : JSON.stringify(value, null, 1)));
  return h(
    "div",
    { "data-test-outcome": answer.outcome },
    h("p", {}, t("editor.outcome"), " ", h("span", { class: `badge s-${answer.outcome}` }, answer.outcome)),
    h(
      "table",
      { class: "grid small" },
      h("thead", {}, h("tr", {}, ["editor.col.step", "editor.col.input", "editor.col.output", "editor.col.error", "editor.col.attempts", "editor.col.ms"].map((k) => h("th", {}, t(k))))),
      h("tbody", {}, (answer.steps || []).map((s) => h("tr", {}, h("td", { class: "mono" }, s.id), cell(s.input), cell(s.output), cell(s.error), h("td", {}, String(s.attempts ?? "")), h("td", {}, String(s.duration_ms ?? ""))))),
    ),
    h("h3", {}, t("editor.effects")),
    h("ul", { class: "small" }, (answer.effects || []).map((e) => h("li", { class: "mono" }, `${e.step}: ${e.connection}.${e.action} ← ${e.answered_from}`))),
  );
}
