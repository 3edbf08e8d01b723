// A JSON Schema form drawn simply: one field per property of an object schema (string, number,
// integer, boolean, enum), with its title, description and pattern; the API validates the result
// against the same schema (422 approval.form_invalid) and the console shows that answer.
import { h } from "./dom.js";

export function formFields(schema, t) {
  const inputs = {};
  const required = new Set(schema.required || []);
  const rows = Object.entries(schema.properties || {}).map(([name, prop]) => {
    let input;
    if (Array.isArray(prop.enum)) {
      input = h("select", { name }, h("option", { value: "" }, "—"), prop.enum.map((v) => h("option", { value: JSON.stringify(v) }, String(v))));
    } else if (prop.type === "boolean") {
      input = h("input", { name, type: "checkbox" });
    } else if (prop.type === "number" || prop.type === "integer") {
      input = h("input", { name, type: "number", step: prop.type === "integer" ? "1" : "any", min: prop.minimum, max: prop.maximum });
    } else {
      input = h("input", { name, type: "text", pattern: prop.pattern, maxlength: prop.maxLength, required: required.has(name) });
    }
    if (prop.default !== undefined && input.type !== "checkbox") input.value = Array.isArray(prop.enum) ? JSON.stringify(prop.default) : prop.default;
    inputs[name] = { input, prop };
    return h(
      "label",
      {},
      `${prop.title || name}${required.has(name) ? " *" : ""}`,
      input,
      prop.description ? h("small", { class: "muted" }, prop.description) : null,
      prop.pattern ? h("small", { class: "muted mono" }, t("form.pattern", { pattern: prop.pattern })) : null,
    );
  });
  return { element: h("div", { class: "form" }, rows), inputs };
}

export function readForm(fields) {
  const value = {};
  for (const [name, { input, prop }] of Object.entries(fields.inputs)) {
    if (input.type === "checkbox") value[name] = input.checked;
    else if (input.value === "") continue;
    else if (Array.isArray(prop.enum)) value[name] = JSON.parse(input.value);
    else if (prop.type === "number" || prop.type === "integer") value[name] = Number(input.value);
    else value[name] = input.value;
  }
  return value;
}
