// A flow drawn as inline SVG from its outline (GET /api/v1/flows/{id} → outline): the trigger on
// top, then each step in order. Shapes say the kind: a rectangle for an action, a diamond for an
// `if` with its two branches side by side, a frame with a loop arrow for `foreach`, an hourglass
// circle for `wait`, a hexagon for `approval`, a parallelogram for `emit`.
import { svg } from "./dom.js";

const W = 210; // a box's width
const H = 46; // a box's height
const GAP = 26; // vertical space between boxes (holds the arrow)
const COL = 24; // horizontal space between the branches of an if
const PAD = 14; // inside a foreach frame

export function draw(outline, t) {
  const trigger = { kind: "trigger", id: t(`trigger.${outline.trigger.kind}`), label: outline.trigger.label };
  const layout = sequence([trigger, ...outline.steps], t);
  const margin = 12;
  const width = layout.w + 2 * margin;
  const height = layout.h + 2 * margin;
  return svg(
    "svg",
    {
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      class: "flow-diagram",
      role: "img",
      "aria-label": t("flows.diagram"),
    },
    svg(
      "defs",
      {},
      svg(
        "marker",
        { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }),
      ),
    ),
    layout.draw(margin, margin),
  );
}

/** Nodes one below the other, centred; arrows between them. */
function sequence(nodes, t) {
  const parts = nodes.map((n) => node(n, t));
  if (!parts.length) return { w: W, h: 0, draw: () => svg("g") };
  const w = Math.max(...parts.map((p) => p.w));
  const h = parts.reduce((sum, p) => sum + p.h, 0) + GAP * (parts.length - 1);
  return {
    w,
    h,
    draw(x, y) {
      const g = svg("g");
      let top = y;
      const mid = x + w / 2;
      parts.forEach((p, i) => {
        if (i > 0) g.append(arrow(mid, top - GAP, mid, top));
        g.append(p.draw(x + (w - p.w) / 2, top));
        top += p.h + GAP;
      });
      return g;
    },
  };
}

function node(n, t) {
  if (n.kind === "if") return branch(n, t);
  if (n.kind === "foreach") return loop(n, t);
  return box(n, t);
}

function box(n, t) {
  return {
    w: W,
    h: H,
    draw(x, y) {
      const g = svg("g", { class: `node k-${n.kind}`, "data-step": n.id });
      g.append(shape(n.kind, x, y, W, H));
      g.append(text(x + W / 2, y + 19, n.id, "name"));
      g.append(text(x + W / 2, y + 35, clip(n.label ? `${t(`kind.${n.kind}`)} · ${n.label}` : t(`kind.${n.kind}`)), "detail"));
      g.append(svg("title", {}, `${n.id} — ${t(`kind.${n.kind}`)}${n.label ? `: ${n.label}` : ""}`));
      return g;
    },
  };
}

function shape(kind, x, y, w, h) {
  const cls = "shape";
  switch (kind) {
    case "trigger":
      return svg("rect", { x, y, width: w, height: h, rx: h / 2, class: cls });
    case "wait":
      return svg("rect", { x, y, width: w, height: h, rx: 14, class: `${cls} dashed` });
    case "approval": {
      const d = 14;
      const points = [
        [x + d, y], [x + w - d, y], [x + w, y + h / 2], [x + w - d, y + h], [x + d, y + h], [x, y + h / 2],
      ];
      return svg("polygon", { points: points.map((p) => p.join(",")).join(" "), class: cls });
    }
    case "emit": {
      const d = 12;
      const points = [[x + d, y], [x + w, y], [x + w - d, y + h], [x, y + h]];
      return svg("polygon", { points: points.map((p) => p.join(",")).join(" "), class: cls });
    }
    case "call":
      return svg(
        "g",
        {},
        svg("rect", { x, y, width: w, height: h, rx: 4, class: cls }),
        svg("line", { x1: x + 8, y1: y, x2: x + 8, y2: y + h, class: "edge" }),
        svg("line", { x1: x + w - 8, y1: y, x2: x + w - 8, y2: y + h, class: "edge" }),
      );
    default:
      return svg("rect", { x, y, width: w, height: h, rx: 4, class: cls });
  }
}

function branch(n, t) {
  const yes = sequence(n.then || [], t);
  const no = sequence(n.else || [], t);
  const dh = 56; // the diamond's height
  const w = Math.max(W, yes.w + no.w + COL);
  const h = dh + GAP + Math.max(yes.h, no.h, 1) + GAP;
  return {
    w,
    h,
    draw(x, y) {
      const g = svg("g", { class: "node k-if", "data-step": n.id });
      const mid = x + w / 2;
      const points = [[mid, y], [mid + W / 2, y + dh / 2], [mid, y + dh], [mid - W / 2, y + dh / 2]];
      g.append(svg("polygon", { points: points.map((p) => p.join(",")).join(" "), class: "shape" }));
      g.append(text(mid, y + dh / 2 - 2, n.id, "name"));
      g.append(text(mid, y + dh / 2 + 13, clip(n.label, 26), "detail"));
      g.append(svg("title", {}, `${n.id} — ${t("kind.if")}: ${n.label}`));
      const left = x + (w - (yes.w + no.w + COL)) / 2;
      const top = y + dh + GAP;
      const yesMid = left + yes.w / 2;
      const noMid = left + yes.w + COL + no.w / 2;
      const bottom = y + h;
      g.append(arrow(mid, y + dh, yesMid, top), text(yesMid - 18, top - 8, t("diagram.yes"), "edge-label"));
      g.append(yes.draw(left, top));
      if ((n.else || []).length) {
        g.append(arrow(mid, y + dh, noMid, top), text(noMid + 18, top - 8, t("diagram.no"), "edge-label"));
        g.append(no.draw(left + yes.w + COL, top));
        g.append(svg("line", { x1: noMid, y1: top + no.h, x2: mid, y2: bottom, class: "edge" }));
      } else {
        g.append(svg("path", { d: `M${mid + W / 2},${y + dh / 2} H${x + w - 2} V${bottom} H${mid}`, class: "edge" }));
        g.append(text(mid + W / 2 + 14, y + dh / 2 - 6, t("diagram.no"), "edge-label"));
      }
      g.append(svg("line", { x1: yesMid, y1: top + yes.h, x2: mid, y2: bottom, class: "edge" }));
      return g;
    },
  };
}

function loop(n, t) {
  const body = sequence(n.steps || [], t);
  const head = 34;
  const title = clip(`↻ ${n.id} · ${t("kind.foreach")} ${n.label}`, 40);
  const w = Math.max(W, body.w, title.length * 7.5) + 2 * PAD;
  const h = head + body.h + 2 * PAD;
  return {
    w,
    h,
    draw(x, y) {
      const g = svg("g", { class: "node k-foreach", "data-step": n.id });
      g.append(svg("rect", { x, y, width: w, height: h, rx: 10, class: "frame" }));
      g.append(text(x + w / 2, y + 21, title, "name"));
      g.append(svg("title", {}, `${n.id} — ${t("kind.foreach")}: ${n.label}`));
      g.append(body.draw(x + (w - body.w) / 2, y + head + PAD));
      g.append(svg("path", { d: `M${x + w - 6},${y + h - 10} V${y + head} `, class: "edge loop", "marker-end": "url(#arrow)" }));
      return g;
    },
  };
}

function arrow(x1, y1, x2, y2) {
  return svg("line", { x1, y1, x2, y2, class: "edge", "marker-end": "url(#arrow)" });
}

function text(x, y, value, cls) {
  return svg("text", { x, y, "text-anchor": "middle", class: cls }, value);
}

function clip(value, max = 30) {
  const s = String(value ?? "");
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
