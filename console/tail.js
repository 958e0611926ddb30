// The live event tail: Server-Sent Events from /_canon/api/tail, filtered on the server by
// type, aggregate and service; newest first; pausable.

import { clock, h, pill } from "./dom.js";

const rowsKept = 200;

const verdictTone = {
  accepted: "ok",
  rejection: "warn",
  duplicate: "neutral",
  conflict: "bad",
  malformed: "bad",
};

function row(event) {
  const aggregate = event.aggregateId ? `${event.aggregateType}#${event.aggregateId}` : "–";
  const data = event.reason ?? JSON.stringify(event.data ?? {});
  return h(
    "tr",
    { class: `tail-row verdict-${event.verdict}`, dataset: { type: event.type, aggregate: event.aggregateId ?? "" } },
    h("td", { class: "mono dim" }, clock(event.arrivedAt)),
    h("td", {}, event.bus),
    h("td", {}, event.service ?? "–"),
    h("td", { class: "mono" }, aggregate, event.version ? h("span", { class: "dim" }, ` v${event.version}`) : ""),
    h(
      "td",
      { class: "strong" },
      event.type,
      " ",
      event.verdict === "accepted" ? "" : pill(event.verdict, verdictTone[event.verdict]),
      // The command that caused it, as a journey (the journey panel follows #journey= links).
      event.commandId
        ? h(
            "a",
            {
              class: "journey-link small",
              href: `#journey=${encodeURIComponent(event.commandId)}`,
              title: `the journey of command ${event.commandId}`,
            },
            "journey",
          )
        : "",
    ),
    h("td", { class: "mono data", title: data }, data.length > 140 ? `${data.slice(0, 140)}…` : data),
  );
}

/** Wires the tail panel: its form, its table body, its status line. */
export function startTail({ form, body, status, pauseButton, clearButton }) {
  let source;
  let paused = false;
  let held = [];
  let received = 0;

  const say = (text, tone = "neutral") => {
    status.replaceChildren(pill(text, tone));
  };

  const show = (events) => {
    const rows = events.map(row).reverse();
    body.prepend(...rows);
    while (body.children.length > rowsKept) body.lastElementChild.remove();
    body.closest("table")?.classList.toggle("empty", body.children.length === 0);
  };

  const connect = () => {
    source?.close();
    const params = new URLSearchParams({ backlog: "50" });
    for (const name of ["type", "aggregate", "service"]) {
      const value = form.elements[name].value.trim();
      if (value) params.set(name, value);
    }
    body.replaceChildren();
    held = [];
    received = 0;
    say("connecting…");
    source = new EventSource(`/_canon/api/tail?${params}`);
    source.addEventListener("ready", () => say("live", "ok"));
    source.addEventListener("event", (message) => {
      const event = JSON.parse(message.data);
      received += 1;
      if (paused) {
        held.push(event);
        pauseButton.textContent = `Resume (${held.length} waiting)`;
      } else show([event]);
    });
    source.addEventListener("error", () => say("reconnecting…", "warn"));
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    connect();
  });
  pauseButton.addEventListener("click", () => {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      show(held);
      held = [];
    }
    say(paused ? "paused" : "live", paused ? "warn" : "ok");
  });
  clearButton.addEventListener("click", () => body.replaceChildren());
  connect();
  return { received: () => received };
}
