// The console's panels, each a function from the overview (GET /_canon/api/overview) to DOM.

import { clock, duration, h, num, pill, seq, shard } from "./dom.js";

/** A numeric column's heading (right-aligned, as its cells). */
const n = (text) => ({ text, num: true });

const table = (head, rows, empty = "nothing here") =>
  rows.length === 0
    ? h("p", { class: "empty-note" }, empty)
    : h(
        "table",
        {},
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            head.map((t) => (typeof t === "string" ? h("th", {}, t) : h("th", { class: "num" }, t.text))),
          ),
        ),
        h("tbody", {}, rows),
      );

/**
 * A reader's lag: "caught up", else "12 behind · 3 s". A deployed reader's is known by its age
 * only (CloudWatch's iterator age): "≈ 12 behind" counts what arrived within that age.
 */
function lag(reader) {
  if (!reader || (reader.records === 0 && reader.ageMs === 0)) return pill("caught up", "ok");
  const about = reader.atLeast ? "≥ " : reader.fromAge ? "≈ " : "";
  const text = `${about}${num(reader.records)} behind · ${duration(reader.ageMs)}`;
  return pill(text, reader.ageMs > 60_000 ? "bad" : "warn");
}

/** At a glance: one tile per fact that needs attention first. */
export function glance(o) {
  const parked = o.deadLetters.parked.length;
  const dead = o.deadLetters.deadLetterQueues.reduce((sum, q) => sum + q.messages, 0);
  const live = o.projections.filter((p) => p.status === "live").length;
  const behind = o.projections.reduce((sum, p) => sum + p.queue.visible + p.queue.inFlight, 0);
  const rate = o.buses.reduce((sum, b) => sum + b.recordsPerSecond, 0);
  // The telemetry bus has no relay (its first reader is the journey indexer): not counted here.
  const relayBehind = o.buses
    .filter((b) => b.kind !== "telemetry")
    .reduce((sum, b) => sum + b.shards.reduce((s, x) => s + x.relay.records, 0), 0);
  const tile = (title, value, note, tone) =>
    h(
      "div",
      { class: `tile ${tone}` },
      h("div", { class: "tile-title" }, title),
      h("div", { class: "tile-value" }, value),
      h("div", { class: "tile-note" }, note),
    );
  return [
    tile("Records / s", num(rate, 1), `${o.buses.length} buses`, "neutral"),
    tile("Relay behind", num(relayBehind), "records not yet fanned out", relayBehind > 0 ? "warn" : "ok"),
    tile(
      "Projections live",
      `${live} / ${o.projections.length}`,
      `${num(behind)} messages queued`,
      live === o.projections.length ? "ok" : "warn",
    ),
    tile("Parked", num(parked), "aggregates waiting for a redrive", parked > 0 ? "bad" : "ok"),
    tile("Dead letters", num(dead), "messages in dead-letter queues", dead > 0 ? "bad" : "ok"),
  ];
}

/** Who reads a bus: the relay and the archiver, or on the telemetry bus its indexer and its store. */
const readerNames = (bus) => (bus.kind === "telemetry" ? ["journey indexer", "columnar store"] : ["relay", "archiver"]);

export function buses(o) {
  return o.buses.map((bus) =>
    h(
      "div",
      { class: "bus", dataset: { bus: bus.bus } },
      h(
        "h3",
        {},
        bus.bus,
        " ",
        h("span", { class: "dim" }, bus.stream),
        " ",
        bus.kind === "telemetry"
          ? pill("telemetry", "neutral", "the system's own records (law K): no tail, no relay")
          : "",
        " ",
        bus.caughtUp ? "" : pill("console still reading", "warn"),
      ),
      table(
        ["shard", "tip", n("records"), ...readerNames(bus)],
        bus.shards.map((s) =>
          h(
            "tr",
            {},
            h("td", {}, shard(s.shardId), s.closed ? pill("closed", "neutral") : ""),
            h("td", { class: "mono", title: s.tip ?? "" }, seq(s.tip)),
            h("td", { class: "num" }, num(s.records)),
            h("td", {}, lag(s.relay)),
            h("td", {}, lag(s.archiver)),
          ),
        ),
        "no shards read yet",
      ),
    ),
  );
}

export function archive(o) {
  return o.archive.map((a) =>
    h(
      "div",
      { class: "bus" },
      h(
        "h3",
        {},
        a.bus,
        " ",
        h("span", { class: "dim" }, `s3://${a.bucket}`),
        ` · ${num(a.objects)} objects · ${num(a.records)} records`,
      ),
      table(
        ["shard", "watermark", n("objects"), n("records"), "lag behind the stream"],
        a.shards.map((s) =>
          h(
            "tr",
            {},
            h("td", {}, shard(s.shardId)),
            h(
              "td",
              { class: "mono", title: s.watermark ?? "nothing archived yet" },
              seq(s.watermark),
              s.updatedAt ? h("span", { class: "dim" }, ` ${clock(s.updatedAt)}`) : "",
            ),
            h("td", { class: "num" }, num(s.objects)),
            h("td", { class: "num" }, num(s.records)),
            h("td", {}, lag(s.lag)),
          ),
        ),
      ),
    ),
  );
}

const statusTone = {
  live: "ok",
  "warming up": "warn",
  rebuilding: "warn",
  detached: "neutral",
  paused: "warn",
  stopped: "bad",
};

export function projections(o, actions) {
  return table(
    ["projection", "status", n("items"), n("queue (lag)"), n("DLQ"), n("parked"), ""],
    o.projections.map((p) =>
      h(
        "tr",
        { dataset: { projection: p.name } },
        h("td", {}, h("div", { class: "strong" }, p.name), h("div", { class: "dim mono small" }, p.table)),
        h("td", {}, pill(p.status, statusTone[p.status]), h("div", { class: "dim small" }, p.detail)),
        h("td", { class: "num" }, p.items ? `${p.items.atLeast ? "≥ " : ""}${num(p.items.count)}` : "–"),
        h(
          "td",
          { class: "num" },
          num(p.queue.visible),
          p.queue.inFlight ? h("span", { class: "dim" }, ` +${p.queue.inFlight} in flight`) : "",
        ),
        h("td", { class: `num ${p.deadLetters ? "alert" : ""}` }, num(p.deadLetters)),
        h("td", { class: `num ${p.parked ? "alert" : ""}` }, num(p.parked)),
        h(
          "td",
          { class: "actions" },
          p.canWarmUp
            ? h("button", { type: "button", onclick: () => actions.replay(p.name, "warm-up") }, "Warm up")
            : "",
          p.canRebuild
            ? h(
                "button",
                { type: "button", class: "quiet", onclick: () => actions.replay(p.name, "rebuild") },
                "Rebuild",
              )
            : "",
        ),
      ),
    ),
  );
}

export function deadLetters(o, actions) {
  const parked = o.deadLetters.parked;
  const queues = o.deadLetters.deadLetterQueues.filter((q) => q.messages > 0);
  return [
    h("h3", {}, "Parked aggregates"),
    table(
      ["projection", "aggregate", "events", "reason", ""],
      parked.map((p) =>
        h(
          "tr",
          { class: "parked", dataset: { projection: p.projection, group: p.group } },
          h("td", { class: "strong" }, p.projection),
          h("td", { class: "mono" }, p.group),
          h(
            "td",
            {},
            `${p.events} parked`,
            h(
              "div",
              { class: "dim small" },
              p.parked.map((e) => `${e.type ?? "(malformed)"} v${e.version ?? "?"}`).join(", "),
            ),
          ),
          h(
            "td",
            { class: "reason" },
            p.reason,
            h("div", { class: "dim small" }, `after ${p.attempts} attempt(s), parked ${clock(p.parkedAt)}`),
            p.lastRedrive
              ? h(
                  "div",
                  { class: "small warn-text" },
                  `last redrive ${clock(p.lastRedrive.at)}: ${p.lastRedrive.reason}`,
                )
              : "",
          ),
          h(
            "td",
            { class: "actions" },
            h(
              "button",
              {
                type: "button",
                class: "redrive",
                onclick: (e) => actions.redrive(p.projection, p.group, e.currentTarget),
              },
              "Redrive",
            ),
          ),
        ),
      ),
      "Nothing parked.",
    ),
    h("h3", {}, "Dead-letter queues"),
    table(
      ["queue", n("messages"), "sample (peeked, not removed)", ""],
      queues.map((q) =>
        h(
          "tr",
          { class: "dead-letters", dataset: { queue: q.queue } },
          h("td", { class: "mono" }, q.queue),
          h("td", { class: "num alert" }, num(q.messages)),
          h(
            "td",
            {},
            q.sample.map((m) =>
              h(
                "div",
                { class: "small" },
                m.summary,
                m.reason ? h("span", { class: "warn-text" }, ` — ${m.reason}`) : "",
              ),
            ),
          ),
          h(
            "td",
            { class: "actions" },
            q.movableTo
              ? h(
                  "button",
                  {
                    type: "button",
                    class: "move",
                    title: `send them back to ${q.movableTo}, in order`,
                    onclick: (e) => actions.moveBack(q.movableTo, e.currentTarget),
                  },
                  "Send back",
                )
              : "",
          ),
        ),
      ),
      "Every dead-letter queue is empty.",
    ),
  ];
}

const mib = (bytes) => (bytes / 1_048_576).toFixed(1);

export function replays(o) {
  return table(
    ["projection", "", "progress", "status"],
    o.replays.map((job) => {
      const p = job.progress;
      const ratio = p ? (p.totalBytes === 0 ? 1 : Math.min(1, p.bytes / p.totalBytes)) : job.state === "done" ? 1 : 0;
      return h(
        "tr",
        { dataset: { job: job.id } },
        h("td", { class: "strong" }, job.projection),
        h("td", {}, job.action),
        h(
          "td",
          {},
          h(
            "div",
            { class: "bar" },
            h("div", { class: `fill ${job.state}`, style: `width:${(ratio * 100).toFixed(1)}%` }),
          ),
          h(
            "div",
            { class: "dim small" },
            p
              ? `${p.phase} · ${num(p.events)} events · ${mib(p.bytes)} / ${mib(p.totalBytes)} MB · ${num(p.eventsPerSecond)} ev/s${p.etaSeconds !== undefined && job.state === "running" ? ` · ETA ${duration(p.etaSeconds * 1000)}` : ""}`
              : "waiting",
          ),
        ),
        h(
          "td",
          {},
          pill(job.state, job.state === "done" ? "ok" : job.state === "failed" ? "bad" : "warn"),
          h("div", { class: "dim small" }, job.error ?? job.messages.at(-1) ?? ""),
        ),
      );
    }),
    "No warm-up or rebuild started from this console yet. Start one from the projections panel, or run canon projection warm-up|rebuild.",
  );
}

export function commands(list, actions) {
  const tone = { accepted: "ok", rejected: "warn", conflicted: "bad", pending: "neutral" };
  return table(
    ["received", "command", "aggregate", "outcome", "", ""],
    list.map((c) =>
      h(
        "tr",
        { dataset: { command: c.commandId } },
        h("td", { class: "mono dim" }, clock(c.at)),
        h(
          "td",
          {},
          h("span", { class: "strong" }, `${c.service}.${c.command}`),
          c.origin === "reactor" ? h("span", { class: "dim" }, " (reactor)") : "",
        ),
        h("td", { class: "mono" }, c.aggregateId),
        h("td", {}, pill(c.status, tone[c.status])),
        h(
          "td",
          { class: "small" },
          c.reason
            ? h("span", { class: "warn-text" }, c.reason)
            : (c.events ?? []).map((e) => `${e.type} v${e.version}`).join(", "),
        ),
        h(
          "td",
          { class: "actions" },
          h(
            "button",
            {
              type: "button",
              class: "quiet journey",
              title: "its hops as a waterfall, with the commands it caused",
              onclick: () => actions.journey(c.commandId),
            },
            "Journey",
          ),
        ),
      ),
    ),
    "No commands yet.",
  );
}

export function functions(o) {
  const tone = {
    running: "ok",
    "served by the API": "ok",
    job: "neutral",
    detached: "neutral",
    attaching: "warn",
    paused: "warn",
    moving: "warn",
    stopped: "bad",
  };
  return table(
    ["function", "role", "owner", "triggered by", "status"],
    o.functions.map((f) =>
      h(
        "tr",
        {},
        h("td", {}, h("div", { class: "strong" }, f.id), h("div", { class: "dim mono small" }, f.handler)),
        h("td", {}, f.role),
        h("td", {}, f.owner),
        h("td", { class: "mono small" }, f.source),
        h("td", {}, pill(f.status, tone[f.status]), f.table ? h("div", { class: "dim small mono" }, f.table) : ""),
      ),
    ),
  );
}

/** What the console could not read or find (a denied call, a stack not deployed yet). */
export function warnings(o) {
  return (o.warnings ?? []).map((text) => h("p", { class: "warning-line" }, text));
}
