// Small DOM and formatting helpers for the console (plain ES module, no build step).

/**
 * Creates an element: h("td", { class: "num", title: "…" }, "text", child, …).
 * Attributes starting with "on" are event listeners; false/null/undefined children are skipped.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Replaces a container's content, unless what it shows has not changed (keeps focus and clicks). */
export function render(container, key, build) {
  const fingerprint = JSON.stringify(key);
  if (container.dataset.fingerprint === fingerprint) return;
  container.dataset.fingerprint = fingerprint;
  container.replaceChildren(...[build()].flat());
}

const integer = new Intl.NumberFormat("en");

/** 1234 → "1,234"; 3.14159 → "3.1". */
export function num(value, digits = 0) {
  if (value === undefined || value === null || Number.isNaN(value)) return "–";
  return digits === 0 ? integer.format(Math.round(value)) : value.toFixed(digits);
}

/** Milliseconds as "0 s", "12 s", "3 min 5 s", "2 h 10 min". */
export function duration(ms) {
  const s = Math.round((ms ?? 0) / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A Kinesis sequence number is 56 digits: show its last ones. */
export function seq(value) {
  return value ? `…${value.slice(-8)}` : "–";
}

/** "2026-01-02T03:04:05.678Z" → "03:04:05.678" in local time. */
export function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** "shardId-000000000001" → "shard 1". */
export function shard(id) {
  const match = /(\d+)$/.exec(id ?? "");
  return match ? `shard ${Number(match[1])}` : id;
}

/** A pill: h("span", {class: "pill <tone>"}, text). */
export function pill(text, tone = "neutral", title) {
  return h("span", { class: `pill ${tone}`, title }, text);
}

/** JSON to the server; resolves with { ok, status, body }. */
export async function postJson(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body ?? {}),
  });
  const text = await response.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { error: text };
  }
  return { ok: response.ok, status: response.status, body: parsed };
}
