// The console page: polls the overview, the time series and the recent commands, draws the
// panels and charts, and runs the live tail. Served by `canon dev` at `/`.

import { lineChart } from "./chart.js";
import { h, postJson, render } from "./dom.js";
import { journeyPanel, latencyPanel } from "./journey-panel.js";
import * as panels from "./panels.js";
import { startTail } from "./tail.js";

const $ = (id) => document.getElementById(id);
const pollMs = 2000;

/** A short notice at the top right; errors stay until dismissed. */
function notify(text, tone = "ok") {
  const note = h(
    "div",
    { class: `notice ${tone}`, role: "status" },
    text,
    h("button", { type: "button", class: "close", onclick: () => note.remove(), "aria-label": "dismiss" }, "×"),
  );
  $("notices").prepend(note);
  if (tone !== "bad") setTimeout(() => note.remove(), 8000);
}

const actions = {
  async redrive(projection, group, button) {
    button.disabled = true;
    button.textContent = "Redriving…";
    const { ok, body } = await postJson(`/_canon/api/projections/${encodeURIComponent(projection)}/redrive`, {
      aggregate: group,
    });
    if (ok && body.outcome === "cleared")
      notify(`${projection} ${group}: ${body.events} event(s) replayed in order; no longer parked`, "ok");
    else if (body.outcome === "failed") notify(`${projection} ${group} is still parked: ${body.reason}`, "bad");
    else if (body.outcome === "timeout")
      notify(`${projection} ${group}: no outcome yet; the request waits in the projection's queue`, "warn");
    else notify(`Redrive refused: ${body.error ?? "unknown error"}`, "bad");
    await refresh();
  },
  async moveBack(queue, button) {
    if (!window.confirm(`Send the dead letters of ${queue} back to it? Do it once their cause is fixed.`)) return;
    button.disabled = true;
    button.textContent = "Sending…";
    const { ok, body } = await postJson(`/_canon/api/queues/${encodeURIComponent(queue)}/move-dead-letters`, {});
    if (ok) notify(`${queue}: ${body.moved} message(s) sent back, ${body.left} left`, body.left > 0 ? "warn" : "ok");
    else notify(`Send back refused: ${body.error ?? "unknown error"}`, "bad");
    await refresh();
  },
  async replay(projection, action) {
    const question =
      action === "rebuild"
        ? `Rebuild ${projection} blue/green from the archive? Reads stay on the current table until the switch.`
        : `Warm ${projection} up from the archive and attach its consumer?`;
    if (!window.confirm(question)) return;
    const { ok, body } = await postJson(`/_canon/api/projections/${encodeURIComponent(projection)}/${action}`, {});
    if (ok) notify(`${projection}: ${action} started`, "ok");
    else notify(`${projection}: ${body.error}`, "bad");
    await refresh();
  },
};

function drawCharts(samples, busViews) {
  const telemetry = new Set(busViews.filter((b) => b.kind === "telemetry").map((b) => b.bus));
  const busNames = [...new Set(samples.flatMap((s) => Object.keys(s.buses)))].sort();
  const projectionNames = [...new Set(samples.flatMap((s) => Object.keys(s.projections)))];
  const points = (pick) =>
    samples.flatMap((s) => {
      const v = pick(s);
      return v === undefined ? [] : [[s.t, v]];
    });
  lineChart(
    $("chart-rate"),
    busNames.map((bus) => ({ name: bus, points: points((s) => s.buses[bus]?.recordsPerSecond) })),
    { title: "records per second", unit: "/s" },
  );
  // On AWS the lags are CloudWatch's iterator ages (ms), drawn in seconds; locally, records.
  const ages = samples.some((s) => s.lagUnit === "ms");
  const lagOf = (v) => (v === undefined || !ages ? v : v / 1000);
  $("bus-lag-caption").textContent = ages
    ? "Relay and archive lag (age of the oldest unread record, s; CloudWatch, 1-minute points)"
    : "Relay and archive lag (records behind the tip)";
  lineChart(
    $("chart-bus-lag"),
    busNames.flatMap((bus) =>
      telemetry.has(bus)
        ? [
            { name: `${bus} journey indexer`, points: points((s) => lagOf(s.buses[bus]?.relayLag)) },
            { name: `${bus} columnar store`, points: points((s) => lagOf(s.buses[bus]?.archiverLag)) },
          ]
        : [
            { name: `${bus} relay`, points: points((s) => lagOf(s.buses[bus]?.relayLag)) },
            { name: `${bus} archive`, points: points((s) => lagOf(s.buses[bus]?.archiveLag)) },
          ],
    ),
    ages ? { title: "seconds behind the stream's tip", unit: " s" } : { title: "records behind the stream's tip" },
  );
  lineChart(
    $("chart-projection-lag"),
    [
      ...projectionNames.map((name) => ({ name, points: points((s) => s.projections[name]) })),
      { name: "dead letters", color: "#991b1b", points: points((s) => s.deadLetters) },
    ],
    { title: "messages waiting per projection queue" },
  );
}

const journey = journeyPanel({ section: $("journey-section"), form: $("journey-form"), output: $("journey") });
const hopLatency = latencyPanel({ select: $("latency-minutes"), output: $("latencies") });
const journeyActions = { journey: (commandId) => journey.open(commandId) };

let commandsDue = 0;
let latenciesDue = 0;

async function refresh() {
  try {
    const [overview, series] = await Promise.all([
      fetch("/_canon/api/overview").then((r) => r.json()),
      fetch("/_canon/api/series").then((r) => r.json()),
    ]);
    render($("glance"), [overview.buses, overview.projections, overview.deadLetters], () => panels.glance(overview));
    render($("buses"), overview.buses, () => panels.buses(overview));
    render($("archive"), overview.archive, () => panels.archive(overview));
    render($("projections"), overview.projections, () => panels.projections(overview, actions));
    render($("dead-letters"), overview.deadLetters, () => panels.deadLetters(overview, actions));
    render($("replays"), overview.replays, () => panels.replays(overview));
    render($("functions"), overview.functions, () => panels.functions(overview));
    drawCharts(series, overview.buses);
    if (Date.now() >= commandsDue) {
      commandsDue = Date.now() + 3000;
      const list = await fetch("/_canon/api/commands?limit=30").then((r) => r.json());
      render($("commands"), list, () => panels.commands(list, journeyActions));
      // An open journey gains hops as the indexer stores them.
      await journey.refresh();
    }
    if (Date.now() >= latenciesDue) {
      latenciesDue = Date.now() + 10_000;
      await hopLatency.refresh();
    }
    $("prefix").textContent = overview.prefix;
    const aws = overview.target?.kind === "aws";
    $("target").textContent = aws ? `deployed, AWS ${overview.target.region}` : "local cloud";
    $("served-by").textContent = aws ? "canon console --aws" : "canon dev";
    render($("warnings"), overview.warnings ?? [], () => panels.warnings(overview));
    $("updated").replaceChildren(`updated ${new Date(overview.generatedAt).toLocaleTimeString()}`);
    document.body.classList.remove("offline");
  } catch (error) {
    document.body.classList.add("offline");
    $("updated").textContent = `cannot reach canon dev (${error.message})`;
  }
}

async function loop() {
  await refresh();
  setTimeout(loop, pollMs);
}

startTail({
  form: $("tail-form"),
  body: $("tail-body"),
  status: $("tail-status"),
  pauseButton: $("tail-pause"),
  clearButton: $("tail-clear"),
});
loop();
