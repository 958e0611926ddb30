// A command's journey as a waterfall: one bar per hop on a shared time axis (the first hop's
// start is 0), the commands it caused nested under it with their own hops; and the hop latency
// table (percentiles over the last minutes, from the analytics bus).

import { h, num, pill } from "./dom.js";

const statusTone = { accepted: "ok", rejected: "warn", conflicted: "bad", failed: "bad", pending: "neutral" };

/**
 * The journey flattened into the waterfall's rows, depth first: a "command" row for each
 * command (the root at depth 0, what it caused deeper), then its hops.
 */
export function journeyRows(journey, depth = 0) {
  return [
    { kind: "command", depth, journey },
    ...journey.hops.map((hop) => ({ kind: "hop", depth, hop, commandId: journey.commandId })),
    ...journey.caused.flatMap((caused) => journeyRows(caused, depth + 1)),
  ];
}

/** The time span the rows cover, in epoch milliseconds ({ from, to } with to > from). */
export function timeSpan(rows) {
  const times = rows
    .filter((row) => row.kind === "hop")
    .flatMap((row) => [Date.parse(row.hop.startedAt), Date.parse(row.hop.endedAt)])
    .filter(Number.isFinite);
  if (times.length === 0) return { from: 0, to: 1 };
  const from = Math.min(...times);
  return { from, to: Math.max(from + 1, ...times) };
}

/** Milliseconds as "0.4 ms", "12 ms", "1.25 s". */
export function ms(value) {
  if (value === undefined || value === null || Number.isNaN(value)) return "–";
  if (value === 0) return "0 ms";
  if (value < 10) return `${value.toFixed(1)} ms`;
  if (value < 1000) return `${Math.round(value)} ms`;
  return `${(value / 1000).toFixed(2)} s`;
}

/** "+12 ms": how long after the journey's start. */
const offset = (value) => `+${ms(value)}`;

function axis(span) {
  const total = span.to - span.from;
  return h(
    "div",
    { class: "wf-row wf-axis", "aria-hidden": "true" },
    h("div", { class: "wf-label" }),
    h(
      "div",
      { class: "wf-track" },
      [0, 0.25, 0.5, 0.75, 1].map((f) =>
        h("span", { class: "wf-tick", style: `left:${(f * 100).toFixed(2)}%` }, ms(f * total)),
      ),
    ),
  );
}

function commandRow(row) {
  const j = row.journey;
  return h(
    "div",
    { class: "wf-row wf-command", dataset: { command: j.commandId, depth: String(row.depth) } },
    h(
      "div",
      { class: "wf-label", style: `padding-left:${row.depth * 1.25}rem` },
      row.depth > 0 ? h("span", { class: "dim" }, "↳ caused ") : "",
      h("span", { class: "strong" }, j.command || "(command)"),
      " ",
      pill(j.status, statusTone[j.status] ?? "neutral"),
      h("div", { class: "dim mono small" }, j.commandId),
    ),
    h("div", { class: "wf-track" }),
  );
}

function hopRow(row, span) {
  const { hop } = row;
  const total = span.to - span.from;
  const start = Date.parse(hop.startedAt) - span.from;
  const end = Date.parse(hop.endedAt) - span.from;
  const left = Math.max(0, (start / total) * 100);
  const width = Math.max(0, ((end - start) / total) * 100);
  const took = Number.isFinite(hop.durationMs) ? hop.durationMs : end - start;
  const title = `${hop.name}${hop.subscriber ? ` by ${hop.subscriber}` : ""} (${hop.source}): ${hop.startedAt} → ${hop.endedAt}, ${ms(took)}`;
  return h(
    "div",
    {
      class: `wf-row wf-hop hop-${hop.name}`,
      dataset: { hop: hop.name, subscriber: hop.subscriber ?? "", command: row.commandId },
    },
    h(
      "div",
      {
        class: "wf-label",
        style: `padding-left:${row.depth * 1.25 + 0.75}rem`,
        title: `${hop.name}${hop.subscriber ? ` ${hop.subscriber}` : ""} (${hop.source})`,
      },
      h("span", { class: "wf-name" }, hop.name),
      // A subscriber's function is named after it (accounts.balances runs in accounts-balances).
      hop.subscriber
        ? h("span", { class: "wf-subscriber" }, ` ${hop.subscriber}`)
        : h("span", { class: "dim small" }, ` ${hop.source}`),
    ),
    h(
      "div",
      { class: "wf-track" },
      h("div", {
        class: "wf-bar",
        title,
        style: `left:${left.toFixed(2)}%;width:${width.toFixed(2)}%`,
      }),
      h(
        "span",
        {
          class: "wf-time",
          style: left > 70 ? `right:${(100 - left).toFixed(2)}%` : `left:${(left + width).toFixed(2)}%`,
        },
        `${offset(start)} · ${ms(took)}`,
      ),
    ),
  );
}

/** The waterfall of a journey (GET /_canon/api/commands/{id}/trace). */
export function waterfall(journey) {
  const rows = journeyRows(journey);
  const span = timeSpan(rows);
  const hops = rows.filter((row) => row.kind === "hop").length;
  const commands = rows.filter((row) => row.kind === "command").length;
  const summary = h(
    "p",
    { class: "wf-summary" },
    h("span", { class: "strong" }, journey.command),
    " ",
    pill(journey.status, statusTone[journey.status] ?? "neutral"),
    ` · ${hops} hop(s) over ${ms(hops === 0 ? 0 : span.to - span.from)}`,
    commands > 1 ? ` · ${commands - 1} caused command(s)` : "",
    " · trace ",
    h("span", { class: "mono" }, journey.traceId || "–"),
  );
  if (hops === 0) {
    return [
      summary,
      h(
        "p",
        { class: "empty-note" },
        "No hops indexed yet: the functions send them to the analytics bus about once a second, and the journey indexer stores them.",
      ),
    ];
  }
  return [
    summary,
    h(
      "div",
      { class: "waterfall", role: "group", "aria-label": `journey of ${journey.commandId}` },
      axis(span),
      rows.map((row) => (row.kind === "command" ? commandRow(row) : hopRow(row, span))),
    ),
  ];
}

/** The hop latency table: a bar from p50 to p99 on a common scale, per hop and subscriber. */
export function latencies(report) {
  if (report.hops.length === 0) {
    return h(
      "p",
      { class: "empty-note" },
      report.unavailable ?? `No hops recorded in the last ${report.minutes} minute(s).`,
    );
  }
  const max = Math.max(1, ...report.hops.map((row) => row.p99Ms));
  const pct = (value) => `${((value / max) * 100).toFixed(2)}%`;
  return h(
    "table",
    { class: "latencies" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, "hop"),
        h("th", {}, "subscriber"),
        h("th", { class: "num" }, "count"),
        h("th", { class: "num" }, "p50"),
        h("th", { class: "num" }, "p90"),
        h("th", { class: "num" }, "p99"),
        h("th", {}, "p50 ▮ p99"),
      ),
    ),
    h(
      "tbody",
      {},
      report.hops.map((row) =>
        h(
          "tr",
          { dataset: { hop: row.hop, subscriber: row.subscriber ?? "" } },
          h("td", { class: "strong" }, row.hop),
          h("td", {}, row.subscriber ?? h("span", { class: "dim" }, "–")),
          h("td", { class: "num" }, num(row.count)),
          h("td", { class: "num" }, ms(row.p50Ms)),
          h("td", { class: "num" }, ms(row.p90Ms)),
          h("td", { class: "num" }, ms(row.p99Ms)),
          h(
            "td",
            { class: "lat-cell" },
            h(
              "div",
              { class: "lat-track" },
              h("div", { class: "lat-p50", style: `width:${pct(row.p50Ms)}` }),
              h("div", {
                class: "lat-tail",
                style: `left:${pct(row.p50Ms)};width:${pct(Math.max(0, row.p99Ms - row.p50Ms))}`,
              }),
            ),
          ),
        ),
      ),
    ),
  );
}
