// The journey panel (a command's hops as a waterfall, opened from the command list, by id, or
// by a link to #journey=<id>) and the hop latency panel (percentiles over the last minutes).

import { h, render } from "./dom.js";
import { latencies, waterfall } from "./journey.js";

const hashPrefix = "#journey=";

/** GET a JSON route; resolves with { ok, status, body }, a failed request as a readable error. */
async function getJson(path) {
  let response;
  try {
    response = await fetch(path);
  } catch (error) {
    return { ok: false, status: 0, body: { error: `cannot reach the console (${error.message})` } };
  }
  const text = await response.text();
  try {
    return { ok: response.ok, status: response.status, body: JSON.parse(text) };
  } catch {
    return { ok: false, status: response.status, body: { error: `HTTP ${response.status}: ${text.slice(0, 200)}` } };
  }
}

const errorLine = (text) => h("p", { class: "journey-error warning-line", role: "alert" }, text);

/** Wires the journey panel: its form, its output, and the section to scroll to. */
export function journeyPanel({ section, form, output }) {
  let current;

  async function refresh() {
    if (current === undefined) return;
    const id = current;
    const { ok, status, body } = await getJson(`/_canon/api/commands/${encodeURIComponent(id)}/trace`);
    if (id !== current) return; // another journey was opened meanwhile
    if (ok) render(output, body, () => waterfall(body));
    else render(output, { status, body }, () => errorLine(body.error ?? `HTTP ${status}`));
  }

  async function open(id, { scroll = true } = {}) {
    current = id;
    form.elements.commandId.value = id;
    history.replaceState(null, "", `${hashPrefix}${encodeURIComponent(id)}`);
    output.dataset.fingerprint = "";
    output.replaceChildren(h("p", { class: "dim" }, `Reading the journey of ${id}…`));
    await refresh();
    if (scroll) section.scrollIntoView({ block: "start" });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = form.elements.commandId.value.trim();
    if (id === "") {
      current = undefined;
      output.dataset.fingerprint = "";
      output.replaceChildren(errorLine("Type a command id, or press Journey beside a command in the list below."));
      return;
    }
    void open(id, { scroll: false });
  });

  // A link to #journey=<id> opens it, on load and when followed from the page (or Back).
  const fromHash = () => {
    if (!location.hash.startsWith(hashPrefix)) return;
    const raw = location.hash.slice(hashPrefix.length);
    let id;
    try {
      id = decodeURIComponent(raw);
    } catch {
      id = raw;
    }
    if (id !== current) void open(id);
  };
  window.addEventListener("hashchange", fromHash);
  fromHash();
  return { open, refresh };
}

/** Wires the hop latency panel: a choice of window and its table. */
export function latencyPanel({ select, output }) {
  async function refresh() {
    const minutes = select.value;
    const { ok, status, body } = await getJson(`/_canon/api/hop-latencies?minutes=${encodeURIComponent(minutes)}`);
    if (select.value !== minutes) return;
    // Redrawn when the figures change, not at every read (generatedAt always does).
    if (ok) render(output, { ...body, generatedAt: undefined }, () => latencies(body));
    else render(output, { status, body }, () => errorLine(body.error ?? `HTTP ${status}`));
  }
  select.addEventListener("change", () => void refresh());
  return { refresh };
}
