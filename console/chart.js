// Line charts over time in inline SVG: a few series, a time axis of the last minutes, a y axis
// from zero to a rounded maximum, and a legend with each series' latest value.

const svgNs = "http://www.w3.org/2000/svg";
const palette = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];

function svg(tag, attributes = {}, text) {
  const element = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/** A "nice" upper bound: 1, 2 or 5 times a power of ten, at least `floor`. */
function niceMax(value, floor) {
  const target = Math.max(value, floor);
  const power = 10 ** Math.floor(Math.log10(target));
  for (const step of [1, 2, 5, 10]) if (step * power >= target) return step * power;
  return 10 * power;
}

function label(value) {
  if (value >= 1000) return `${(value / 1000).toFixed(value >= 10_000 ? 0 : 1)}k`;
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/**
 * Draws `series` ([{ name, points: [[t, value], …] }]) into `container`, replacing what was
 * there. `options`: { windowMs, minMax, unit, height }.
 */
export function lineChart(container, series, options = {}) {
  const width = 640;
  const height = options.height ?? 170;
  const pad = { left: 44, right: 12, top: 10, bottom: 22 };
  const windowMs = options.windowMs ?? 10 * 60_000;
  const now = Date.now();
  const from = now - windowMs;
  const values = series.flatMap((s) => s.points.map(([, v]) => v));
  const max = niceMax(Math.max(0, ...values), options.minMax ?? 1);
  const x = (t) => pad.left + ((t - from) / windowMs) * (width - pad.left - pad.right);
  const y = (v) => pad.top + (1 - v / max) * (height - pad.top - pad.bottom);

  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    role: "img",
    "aria-label": options.title ?? "chart",
  });
  // Grid and y labels at 0, ½ and the maximum.
  for (const fraction of [0, 0.5, 1]) {
    const v = max * fraction;
    chart.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: "grid" }));
    chart.append(svg("text", { x: pad.left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, label(v)));
  }
  // Time labels every two minutes, counted back from now.
  for (let minutes = 0; minutes * 60_000 <= windowMs; minutes += 2) {
    const t = now - minutes * 60_000;
    const text = minutes === 0 ? "now" : `-${minutes} min`;
    chart.append(svg("text", { x: x(t), y: height - 6, class: "axis", "text-anchor": "middle" }, text));
  }
  series.forEach((s, index) => {
    const color = s.color ?? palette[index % palette.length];
    const points = s.points.filter(([t]) => t >= from);
    if (points.length === 0) return;
    const d = points.map(([t, v], i) => `${i === 0 ? "M" : "L"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    chart.append(svg("path", { d, class: "line", stroke: color }));
    const [lt, lv] = points.at(-1);
    chart.append(svg("circle", { cx: x(lt), cy: y(lv), r: 2.5, fill: color }));
  });

  const legend = document.createElement("div");
  legend.className = "legend";
  series.forEach((s, index) => {
    const color = s.color ?? palette[index % palette.length];
    const latest = s.points.at(-1)?.[1];
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = color;
    item.append(
      swatch,
      `${s.name} `,
      Object.assign(document.createElement("b"), {
        textContent: latest === undefined ? "–" : `${label(Math.round(latest * 10) / 10)}${options.unit ?? ""}`,
      }),
    );
    legend.append(item);
  });
  if (series.length === 0) legend.textContent = "no data yet";
  container.replaceChildren(chart, legend);
}
