/** A progress line for a replay: a bar by archive bytes with events/s and ETA on a terminal, a line every few seconds elsewhere. */
import type { ReplayProgress } from "../../shared/archive/replay.ts";

export function progressReporter(
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
): {
  update(progress: ReplayProgress): void;
  done(): void;
} {
  let lastLine = 0;
  let drawn = false;
  return {
    update(p) {
      const now = Date.now();
      const finished = p.bytes >= p.totalBytes;
      if (!stream.isTTY && !finished && now - lastLine < 5_000) return;
      lastLine = now;
      stream.write(stream.isTTY ? `\r${progressLine(label, p)}\u001b[K` : `${progressLine(label, p)}\n`);
      drawn ||= stream.isTTY === true;
    },
    done() {
      if (drawn) stream.write("\n");
    },
  };
}

/** e.g. `warm-up accounts.balances replay [######……] 120,000 events  12.0/48.0 MB  9,800 ev/s  ETA 36 s` */
export function progressLine(label: string, p: ReplayProgress): string {
  const ratio = p.totalBytes === 0 ? 1 : Math.min(1, p.bytes / p.totalBytes);
  const width = 24;
  const filled = Math.round(ratio * width);
  const bar = `${"#".repeat(filled)}${".".repeat(width - filled)}`;
  const mb = (bytes: number) => (bytes / 1_048_576).toFixed(1);
  const eta = p.etaSeconds === undefined ? "…" : `${Math.ceil(p.etaSeconds)} s`;
  return (
    `${label} ${p.phase} [${bar}] ${p.events.toLocaleString("en")} events  ${mb(p.bytes)}/${mb(p.totalBytes)} MB  ` +
    `${Math.round(p.eventsPerSecond).toLocaleString("en")} ev/s  ETA ${eta}`
  );
}
