// Live figures by measured polling of /api/v1/overview every POLL_MS (never faster), paused while
// the tab is hidden: two index range counts on the server that never read completed runs, so a
// poll stays cheap with millions of runs stored (benchmarks/console_pages.py).
import { get } from "../api.js";
import { h, svg } from "../dom.js";
import { fmt, t } from "../i18n.js";

const POLL_MS = 5000;
const FEEDS_EVERY = 6; // feeds' health every 6th poll (30 s): one small read of the feeds table
const KEEP = 36; // three minutes of points

export async function render(ctx) {
  const cards = {};
  const card = (key, href) => {
    cards[key] = h("strong", { class: "figure", "data-figure": key }, "—");
    const body = [h("span", { class: "label" }, t(`overview.${key}`)), cards[key]];
    return href ? h("a", { class: "card stat", href }, body) : h("div", { class: "card stat" }, body);
  };
  const spark = h("div", { class: "spark" });
  const stamp = h("p", { class: "muted small" });
  const page = h(
    "section",
    {},
    h("h1", {}, t("overview.title")),
    h(
      "div",
      { class: "stats" },
      card("per_minute"),
      card("running", "#/runs?status=running"),
      card("waiting", "#/runs?status=waiting"),
      card("failed", "#/runs?status=failed"),
      card("dead_letter", "#/runs?status=dead_letter"),
      card("queue_depth"),
      card("feeds_failing"),
    ),
    h("div", { class: "card" }, h("h2", {}, t("overview.trend")), spark),
    stamp,
  );
  const points = [];
  let timer = null;
  let polls = 0;

  async function pollFeeds() {
    const feeds = await get("/api/v1/feeds").catch(() => null);
    if (!feeds) return;
    const failing = feeds.filter((f) => f.health === "failing" || f.health === "stalled").length;
    cards.feeds_failing.textContent = feeds.length ? `${fmt.number(failing)} / ${fmt.number(feeds.length)}` : "—";
    cards.feeds_failing.parentElement.classList.toggle("alarm", failing > 0);
  }

  async function poll() {
    if (document.hidden) return;
    if (polls++ % FEEDS_EVERY === 0) pollFeeds();
    let glance;
    try {
      glance = await get("/api/v1/overview");
    } catch {
      stamp.textContent = t("overview.unavailable");
      return;
    }
    const runs = glance.runs;
    points.push(glance.finished_last_minute);
    if (points.length > KEEP) points.shift();
    cards.per_minute.textContent = fmt.number(glance.finished_last_minute);
    for (const key of ["running", "waiting", "failed", "dead_letter"]) cards[key].textContent = fmt.number(runs[key] || 0);
    cards.queue_depth.textContent = fmt.number(glance.queue_depth || 0);
    cards.dead_letter.parentElement.classList.toggle("alarm", (runs.dead_letter || 0) > 0);
    spark.replaceChildren(sparkline(points));
    stamp.textContent = t("overview.updated", { when: fmt.when(glance.at), seconds: POLL_MS / 1000 });
  }

  await poll();
  timer = setInterval(poll, POLL_MS);
  ctx.leaving.push(() => clearInterval(timer));
  return page;
}

function sparkline(points) {
  const width = 600;
  const height = 80;
  if (points.length < 2) return h("p", { class: "muted small" }, t("overview.collecting"));
  const top = Math.max(1, ...points);
  const step = width / (KEEP - 1);
  const xy = points.map((p, i) => `${(i * step).toFixed(1)},${(height - (p / top) * (height - 8) - 4).toFixed(1)}`);
  return svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, class: "sparkline", role: "img", "aria-label": t("overview.trend") },
    svg("polyline", { points: xy.join(" "), fill: "none", stroke: "currentColor", "stroke-width": "2" }),
  );
}
