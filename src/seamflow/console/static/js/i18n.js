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

// Dates in the chosen language, not the browser's: zh-CN "2026年12月7日 14:05:09", en "7 Dec 2026,
// 14:05:09" (day first, 24-hour: the British form, read the same way by Chinese colleagues).
const DATE_LOCALE = { en: "en-GB", "zh-CN": "zh-CN" };
const dateFormat = (options) => new Intl.DateTimeFormat(DATE_LOCALE[language] || language, { hourCycle: "h23", ...options });

export const fmt = {
  when(iso) {
    if (!iso) return "—";
    return dateFormat({ dateStyle: "medium", timeStyle: "medium" }).format(new Date(iso));
  },
  /** A calendar day (`YYYY-MM-DD`, as a date input holds it) in the chosen language. */
  day(value) {
    if (!value) return "";
    const [y, m, d] = value.split("-").map(Number);
    return dateFormat({ dateStyle: "medium", timeZone: "UTC" }).format(new Date(Date.UTC(y, m - 1, d)));
  },
  /** A local date and time (`YYYY-MM-DDTHH:MM`, as a datetime-local input holds it) in the chosen language. */
  local(value) {
    if (!value) return "";
    return dateFormat({ dateStyle: "medium", timeStyle: "short" }).format(new Date(value));
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
