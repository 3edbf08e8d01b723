// Building elements without innerHTML: every text goes in as text, so no data can become markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== undefined) el.setAttribute(key, value);
  append(el, children);
  return el;
}

/** JSON shown as text, indented. */
export function jsonBlock(value) {
  return h("pre", { class: "json" }, value === undefined ? "" : JSON.stringify(value, null, 2));
}

export function badge(status, label) {
  return h("span", { class: `badge s-${status}` }, label);
}

/**
 * A date or date-time input with its value written out in the chosen language beside it: the
 * browser draws the input itself in its own locale (Chromium ignores the page's `lang`), so the
 * console says in words which day it holds (`format`: `fmt.day` or `fmt.local`).
 */
export function withDateEcho(input, format) {
  const echo = h("output", { class: "date-echo small muted", for: input.name, "data-echo": input.name });
  const show = () => { echo.textContent = format(input.value); };
  input.addEventListener("input", show);
  input.addEventListener("change", show);
  show();
  return h("span", { class: "date-field" }, input, echo);
}
