// The flow editor's blocks: the trigger, and each step by its kind — an action picked from the
// palette with its inputs from the action's schema, a transform, a branch (`if` with then/else),
// a loop (`foreach` with its steps), an approval, a wait, an event for insight (`emit`), a call.
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { getIn, pathText } from "./fields.js";

const KIND_KEYS = ["action", "transform", "if", "foreach", "approval", "wait", "emit", "call"];
const FRESH = {
  action: () => ({ action: "", with: {} }),
  transform: () => ({ transform: {} }),
  if: () => ({ if: "", then: [] }),
  foreach: () => ({ foreach: "", steps: [] }),
  approval: () => ({ approval: { requester: "", subject: "", levels: [{ name: "", assignees: [{ user: "" }] }] } }),
  wait: () => ({ wait: { signal: "", key: "", timeout: "1d" } }),
  emit: () => ({ emit: { activity: "" } }),
  call: () => ({ call: "", with: {} }),
};
const TRIGGER_FRESH = {
  webhook: () => ({ path: "" }),
  schedule: () => ({ cron: "0 9 * * 1-5" }),
  manual: () => ({}),
  poll: () => ({ connection: "", feed: "", every: "5m" }),
  consume: () => ({ connection: "", feed: "" }),
  oa: () => ({ path: "" }),
};

export const kindOf = (step) => KIND_KEYS.find((k) => k in step) || "action";

/** The trigger: its kind, then its settings as a mapping. */
export function triggerBlock(fields, palette) {
  const trigger = fields.draft.trigger || (fields.draft.trigger = { webhook: TRIGGER_FRESH.webhook() });
  const kind = Object.keys(trigger)[0] || "webhook";
  const select = h("select", { "data-trigger-kind": "" }, palette.triggers.map((k) => h("option", { value: k }, t(`trigger.${k}`))));
  select.value = kind;
  select.addEventListener("change", () => {
    fields.draft.trigger = { [select.value]: TRIGGER_FRESH[select.value]() };
    fields.onStructure();
  });
  return h("div", { class: "card block trigger" }, h("h2", {}, t("editor.trigger")), select, fields.mapping(["trigger", kind]));
}

/** A list of steps (the flow's, a branch's or a loop's), with a row to add one of any kind. */
export function stepList(fields, palette, path) {
  const steps = getIn(fields.draft, path) || [];
  const kind = h("select", { "data-add-step-kind": pathText(path) }, Object.keys(FRESH).map((k) => h("option", { value: k }, t(`editor.step.${k}`))));
  const id = h("input", { class: "mono", "data-add-step-id": pathText(path), placeholder: t("editor.step_id") });
  const add = () => {
    const name = id.value.trim() || `${kind.value}_${steps.length + 1}`;
    const list = getIn(fields.draft, path) || [];
    if (!getIn(fields.draft, path)) fields.draft[path[0]] = list; // only the top level may be missing
    list.push({ id: name, ...FRESH[kind.value]() });
    fields.onStructure();
  };
  return h(
    "div",
    { class: "step-list", "data-steps": pathText(path) },
    steps.map((step, i) => stepBlock(fields, palette, [...path, i], steps.length)),
    h("div", { class: "adder add-step" }, id, kind, h("button", { type: "button", "data-add-step": pathText(path), onclick: add }, t("editor.add_step"))),
  );
}

function move(fields, path, by) {
  const list = getIn(fields.draft, path.slice(0, -1));
  const i = path[path.length - 1];
  if (i + by < 0 || i + by >= list.length) return;
  [list[i], list[i + by]] = [list[i + by], list[i]];
  fields.onStructure();
}

function stepBlock(fields, palette, path, count) {
  const step = getIn(fields.draft, path);
  const kind = kindOf(step);
  const tools = h(
    "span",
    { class: "tools" },
    h("button", { type: "button", class: "link-button", title: t("editor.up"), disabled: path[path.length - 1] === 0, onclick: () => move(fields, path, -1) }, "↑"),
    h("button", { type: "button", class: "link-button", title: t("editor.down"), disabled: path[path.length - 1] === count - 1, onclick: () => move(fields, path, 1) }, "↓"),
    h("button", { type: "button", class: "link-button", title: t("editor.remove"), "data-remove": pathText(path), onclick: () => fields.remove(path) }, "✕"),
  );
  const head = h("div", { class: "block-head" }, h("span", { class: `badge kind-${kind}` }, t(`editor.step.${kind}`)), fields.expression([...path, "id"]), tools);
  const body = KIND_BODY[kind](fields, palette, path, step);
  const fixed = ["id", kind, "with", "then", "else", "steps"];
  const more = h("details", { class: "more", open: Object.keys(step).some((k) => !fixed.includes(k)) }, h("summary", {}, t("editor.more")), fields.mapping(path, { fixed, suggested: MORE_KEYS[kind] || [] }));
  return h("div", { class: `card block flow-step kind-${kind}`, "data-step": pathText(path) }, head, body, more);
}

const MORE_KEYS = {
  action: [{ name: "output" }, { name: "retry" }, { name: "idempotency_key" }, { name: "timeout" }],
  foreach: [{ name: "as" }, { name: "concurrency" }],
};

function actionOptions(palette) {
  return palette.connections.map((c) =>
    h("optgroup", { label: `${c.name} (${c.connector})` }, c.actions.map((a) => h("option", { value: `${c.name}.${a.name}`, title: a.description || "" }, `${c.name}.${a.name}`))),
  );
}

function actionSchema(palette, name) {
  const [connection, ...rest] = (name || "").split(".");
  const found = palette.connections.find((c) => c.name === connection);
  const action = found && found.actions.find((a) => a.name === rest.join("."));
  return action ? action.input : null;
}

const KIND_BODY = {
  action(fields, palette, path, step) {
    const select = h("select", { "data-path": pathText([...path, "action"]) }, h("option", { value: "" }, t("editor.pick_action")), actionOptions(palette));
    select.value = step.action || "";
    if (select.value !== (step.action || "")) select.append(h("option", { value: step.action }, step.action)), (select.value = step.action);
    select.addEventListener("change", () => {
      step.action = select.value;
      step.with = step.with || {};
      fields.onStructure();
    });
    const schema = actionSchema(palette, step.action);
    const props = (schema && schema.properties) || {};
    const suggested = Object.entries(props).map(([name, p]) => ({ name, title: p.description || p.title || "" }));
    if (!step.with) step.with = {};
    const required = new Set((schema && schema.required) || []);
    const hint = suggested.length ? h("p", { class: "muted small" }, t("editor.inputs_of"), " ", suggested.map((s) => h("code", { title: s.title, class: required.has(s.name) ? "required" : "" }, s.name)).flatMap((c) => [c, " "])) : null;
    return h("div", { class: "block-body" }, h("label", {}, t("editor.action"), select), h("div", { class: "with" }, h("span", { class: "muted small" }, t("editor.inputs")), hint, fields.mapping([...path, "with"], { suggested })));
  },
  transform: (fields, palette, path) => h("div", { class: "block-body" }, fields.value([...path, "transform"])),
  emit: (fields, palette, path) => h("div", { class: "block-body" }, fields.value([...path, "emit"])),
  wait: (fields, palette, path) => h("div", { class: "block-body" }, fields.value([...path, "wait"])),
  approval: (fields, palette, path) => h("div", { class: "block-body approval" }, fields.value([...path, "approval"])),
  call(fields, palette, path, step) {
    if (!step.with) step.with = {};
    return h("div", { class: "block-body" }, h("label", {}, t("editor.call"), fields.expression([...path, "call"])), fields.mapping([...path, "with"]));
  },
  if(fields, palette, path, step) {
    const otherwise = step.else
      ? stepList(fields, palette, [...path, "else"])
      : h("button", { type: "button", "data-add-else": pathText(path), onclick: () => ((step.else = []), fields.onStructure()) }, t("editor.add_else"));
    return h(
      "div",
      { class: "block-body branch" },
      h("label", {}, t("editor.condition"), fields.expression([...path, "if"])),
      h("div", { class: "arm" }, h("h3", {}, t("diagram.yes")), stepList(fields, palette, [...path, "then"])),
      h("div", { class: "arm" }, h("h3", {}, t("diagram.no")), otherwise),
    );
  },
  foreach(fields, palette, path) {
    return h("div", { class: "block-body loop" }, h("label", {}, t("editor.items"), fields.expression([...path, "foreach"])), stepList(fields, palette, [...path, "steps"]));
  },
};

/** The ids of the steps before `path` (and their ancestors), for the field pickers. */
export function stepIds(draft) {
  const ids = [];
  const walk = (steps) => {
    for (const step of steps || []) {
      ids.push(step.id);
      walk(step.then);
      walk(step.else);
      walk(step.steps);
    }
  };
  walk(draft.steps);
  return ids.filter((id) => typeof id === "string" && id);
}
