// The flow editor's fields: a value of any shape (text with expressions, number, yes/no, mapping,
// list) edited in place in the draft, with expression autocomplete (filters, event and step
// paths) and a live preview line under every templated field. Chinese input methods: nothing
// reacts to a keystroke while a composition is open; the draft takes the text when it ends.
import { h } from "../dom.js";
import { t } from "../i18n.js";

/** Where a value sits in the draft: a path of keys and indexes, written `steps.0.with.amount`. */
export const pathText = (path) => path.join(".");

export function getIn(root, path) {
  return path.reduce((node, key) => (node == null ? undefined : node[key]), root);
}

export function setIn(root, path, value) {
  const parent = getIn(root, path.slice(0, -1));
  const key = path[path.length - 1];
  if (value === undefined && !Array.isArray(parent)) delete parent[key];
  else parent[key] = value;
}

/** Paths given a text area ("long text"), kept while the form is drawn again. */
const LONG = new Set();

/** What every field of one editor page shares: the draft, the suggestions, the last focused field. */
export class Fields {
  constructor({ draft, onChange, onStructure }) {
    this.draft = draft;
    this.onChange = onChange; // a value changed: preview again
    this.onStructure = onStructure; // a key, item or step was added or removed: draw again
    this.filters = [];
    this.paths = [];
    this.focused = null;
    this.previews = new Map(); // path text -> the element under the field
  }

  /** A text field for a template; a value over several lines gets a text area. */
  expression(path, { multiline = false, placeholder = "" } = {}) {
    const value = getIn(this.draft, path);
    const isLong = multiline || LONG.has(pathText(path)) || (typeof value === "string" && value.includes("\n"));
    const tag = isLong ? "textarea" : "input";
    const field = h(tag, {
      class: "expr mono",
      "data-path": pathText(path),
      spellcheck: "false",
      autocomplete: "off",
      placeholder,
      rows: tag === "textarea" ? 3 : undefined,
    });
    field.value = value == null ? "" : String(value);
    const list = h("ul", { class: "suggest", role: "listbox", hidden: true });
    const preview = h("div", { class: "preview small", "data-preview": pathText(path) });
    this.previews.set(pathText(path), preview);
    let composing = false;
    const commit = () => {
      setIn(this.draft, path, field.value);
      this.onChange();
    };
    field.addEventListener("compositionstart", () => (composing = true));
    field.addEventListener("compositionend", () => {
      composing = false;
      commit();
    });
    field.addEventListener("input", (event) => {
      if (composing || event.isComposing) return;
      commit();
      this.suggest(field, list);
    });
    field.addEventListener("focus", () => (this.focused = { field, path }));
    field.addEventListener("keydown", (event) => {
      if (event.isComposing || composing || list.hidden) return;
      const items = [...list.children];
      const at = items.findIndex((li) => li.classList.contains("on"));
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const next = (at + (event.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
        items.forEach((li, i) => li.classList.toggle("on", i === next));
      } else if ((event.key === "Enter" || event.key === "Tab") && at >= 0) {
        event.preventDefault();
        items[at].dispatchEvent(new MouseEvent("mousedown"));
      } else if (event.key === "Escape") list.hidden = true;
    });
    field.addEventListener("blur", () => (list.hidden = true));
    return h("div", { class: "field" }, field, list, preview);
  }

  /** Offer filters after `|` and paths after `event.` / `steps.` inside `{{ }}`, at the caret. */
  suggest(field, list) {
    const before = field.value.slice(0, field.selectionStart);
    const open = before.lastIndexOf("{{");
    if (open < 0 || before.lastIndexOf("}}") > open) return (list.hidden = true);
    const inside = before.slice(open + 2);
    let match = inside.match(/\|\s*([a-z_]*)$/);
    let choices = [];
    let typed = "";
    if (match) {
      typed = match[1];
      choices = this.filters.filter((name) => name.startsWith(typed));
    } else if ((match = inside.match(/((?:event|steps|env|run|item|loop_index)[\w.\[\]'"]*)$/))) {
      typed = match[1];
      choices = this.paths.filter((p) => p.startsWith(typed) && p !== typed);
    }
    choices = choices.slice(0, 12);
    list.replaceChildren(
      ...choices.map((choice, i) =>
        h(
          "li",
          {
            class: i === 0 ? "on" : "",
            role: "option",
            onmousedown: (event) => {
              event.preventDefault();
              const caret = field.selectionStart;
              field.value = field.value.slice(0, caret - typed.length) + choice + field.value.slice(caret);
              const end = caret - typed.length + choice.length;
              field.setSelectionRange(end, end);
              list.hidden = true;
              field.dispatchEvent(new Event("input"));
              list.hidden = true;
            },
          },
          choice,
        ),
      ),
    );
    list.hidden = choices.length === 0;
  }

  /** Put `{{ path }}` at the caret of the last focused field (the field pickers). */
  insert(path) {
    if (!this.focused) return;
    const { field } = this.focused;
    const caret = field.selectionStart ?? field.value.length;
    const text = `{{ ${path} }}`;
    field.value = field.value.slice(0, caret) + text + field.value.slice(field.selectionEnd ?? caret);
    field.focus();
    field.setSelectionRange(caret + text.length, caret + text.length);
    field.dispatchEvent(new Event("input"));
  }

  /** A number or yes/no field that keeps its type in the draft. */
  scalar(path) {
    const value = getIn(this.draft, path);
    if (typeof value === "boolean") {
      const select = h("select", { "data-path": pathText(path) }, h("option", { value: "true" }, t("editor.yes")), h("option", { value: "false" }, t("editor.no")));
      select.value = String(value);
      select.addEventListener("change", () => {
        setIn(this.draft, path, select.value === "true");
        this.onChange();
      });
      return select;
    }
    const input = h("input", { type: "number", step: "any", class: "mono", "data-path": pathText(path) });
    input.value = String(value);
    input.addEventListener("input", () => {
      if (input.value !== "" && Number.isFinite(Number(input.value))) setIn(this.draft, path, Number(input.value));
      this.onChange();
    });
    return input;
  }

  /** Any value: the field its type needs; a mapping or list holds one of these per entry. */
  value(path) {
    const value = getIn(this.draft, path);
    if (Array.isArray(value)) return this.list(path);
    if (value !== null && typeof value === "object") return this.mapping(path);
    if (typeof value === "number" || typeof value === "boolean") return this.scalar(path);
    return this.expression(path);
  }

  /** A mapping: one row per key, and a row to add a key of a chosen kind. `fixed` keys are left to the caller. */
  mapping(path, { fixed = [], suggested = [] } = {}) {
    const value = getIn(this.draft, path) || {};
    const rows = Object.keys(value)
      .filter((key) => !fixed.includes(key))
      .map((key) =>
        h(
          "div",
          { class: "row" },
          h("span", { class: "key mono", title: key }, key),
          this.value([...path, key]),
          h("button", { type: "button", class: "link-button", title: t("editor.remove"), "data-remove": pathText([...path, key]), onclick: () => this.remove([...path, key]) }, "✕"),
        ),
      );
    const missing = suggested.filter((s) => !(s.name in value));
    return h("div", { class: "mapping", "data-mapping": pathText(path) }, rows, this.adder(path, missing));
  }

  list(path) {
    const items = getIn(this.draft, path) || [];
    return h(
      "div",
      { class: "list", "data-list": pathText(path) },
      items.map((_, i) =>
        h("div", { class: "row" }, h("span", { class: "key muted" }, `${i + 1}.`), this.value([...path, i]), h("button", { type: "button", class: "link-button", "data-remove": pathText([...path, i]), onclick: () => this.remove([...path, i]) }, "✕")),
      ),
      this.adder(path, []),
    );
  }

  remove(path) {
    const parent = getIn(this.draft, path.slice(0, -1));
    if (Array.isArray(parent)) parent.splice(path[path.length - 1], 1);
    else delete parent[path[path.length - 1]];
    this.onStructure();
  }

  /** The row that adds a key (or, in a list, an item): a name, its kind, "Add". */
  adder(path, suggested) {
    const isList = Array.isArray(getIn(this.draft, path));
    const key = isList ? null : h("input", { class: "mono", "data-add-key": pathText(path), placeholder: t("editor.new_key"), list: suggested.length ? `keys-${pathText(path)}` : undefined });
    const kinds = ["text", "longtext", "number", "boolean", "mapping", "list"];
    const kind = h("select", { "data-add-kind": pathText(path) }, kinds.map((k) => h("option", { value: k }, t(`editor.kind.${k}`))));
    const empty = { text: "", longtext: "", number: 0, boolean: false, mapping: {}, list: [] };
    const add = () => {
      const fresh = structuredClone(empty[kind.value]);
      const target = getIn(this.draft, path);
      let added = [...path, target.length];
      if (isList) target.push(fresh);
      else {
        const name = key.value.trim();
        if (!name) return key.focus();
        target[name] = target[name] ?? fresh;
        added = [...path, name];
      }
      if (kind.value === "longtext") LONG.add(pathText(added));
      this.onStructure();
    };
    const datalist = suggested.length
      ? h("datalist", { id: `keys-${pathText(path)}` }, suggested.map((s) => h("option", { value: s.name }, s.title || "")))
      : null;
    return h("div", { class: "adder" }, key, datalist, kind, h("button", { type: "button", "data-add": pathText(path), onclick: add }, isList ? t("editor.add_item") : t("editor.add_field")));
  }

  /** Show each input's rendered value (or its error) under its field. */
  showPreviews(rendered) {
    for (const [path, element] of this.previews) {
      const answer = rendered[path];
      if (!answer) {
        element.replaceChildren();
        continue;
      }
      element.className = `preview small ${answer.error ? "error" : "ok"}`;
      element.textContent = answer.error ? `✗ ${answer.error}` : `→ ${JSON.stringify(answer.value)}`;
    }
  }
}

/** Every templated text in the draft by its path: what the preview renders. */
export function templates(value, path = [], found = {}) {
  if (typeof value === "string") {
    if (value.includes("{{")) found[pathText(path)] = value;
  } else if (Array.isArray(value)) value.forEach((v, i) => templates(v, [...path, i], found));
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) templates(v, [...path, k], found);
  return found;
}

/** The paths a field picker offers: every key of the event (a few levels deep) and each step. */
export function pickablePaths(event, steps, stepIds) {
  const found = [];
  const walk = (value, path, depth) => {
    found.push(path);
    if (depth > 4 || found.length > 300 || !value || typeof value !== "object" || Array.isArray(value)) return;
    for (const [k, v] of Object.entries(value)) walk(v, /^[A-Za-z_]\w*$/.test(k) ? `${path}.${k}` : `${path}['${k}']`, depth + 1);
  };
  walk(event || { body: {} }, "event", 0);
  for (const id of stepIds) walk(steps[id], `steps.${id}`, 1);
  return found;
}
