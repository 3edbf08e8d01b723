// Messages per language (i18n/<lang>.json, the same keys in both) and locale-aware formats.

export const LANGUAGES = ["en", "zh-CN"];
const STORED = "seamflow.language";
let messages = {};
export let language = "en";

/** The stored choice, else the browser's first language we have, else English. */
export function chooseLanguage() {
  const stored = localStorage.getItem(STORED);
  if (LANGUAGES.includes(stored)) return stored;
  for (const wanted of navigator.languages || [navigator.language]) {
    const w = (wanted || "").toLowerCase();
    if (w.startsWith("zh")) return "zh-CN";
    if (w.startsWith("en")) return "en";
  }
  return "en";
}

export async function loadLanguage(lang, remember = false) {
  const answer = await fetch(`i18n/${lang}.json`);
  messages = await answer.json();
  language = lang;
  document.documentElement.lang = lang;
  if (remember) localStorage.setItem(STORED, lang);
}

/** The message `key` with `{name}` placeholders filled; the key itself if it is missing. */
export function t(key, vars = {}) {
  const text = messages[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

export const fmt = {
  when(iso) {
    if (!iso) return "—";
    return new Intl.DateTimeFormat(language, { dateStyle: "medium", timeStyle: "medium" }).format(new Date(iso));
  },
  clock(iso) {
    if (!iso) return "—";
    return new Intl.DateTimeFormat(language, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }).format(new Date(iso));
  },
  number(n, digits = 0) {
    return new Intl.NumberFormat(language, { maximumFractionDigits: digits }).format(n);
  },
  cny(amount) {
    return new Intl.NumberFormat(language, { style: "currency", currency: "CNY" }).format(amount);
  },
  duration(ms) {
    if (ms === null || ms === undefined) return "—";
    if (ms < 1000) return `${fmt.number(ms, 1)} ms`;
    if (ms < 60000) return `${fmt.number(ms / 1000, 2)} s`;
    return `${fmt.number(ms / 60000, 1)} min`;
  },
};
