/** A progress line for long work: a bar with events/s and ETA on a terminal, a line every few seconds elsewhere. */
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
      const finished = p.done >= p.total;
      if (!stream.isTTY && !finished && now - lastLine < 5_000) return;
      lastLine = now;
      const ratio = p.total === 0 ? 1 : p.done / p.total;
      const width = 24;
      const bar = `${"#".repeat(Math.round(ratio * width))}${".".repeat(width - Math.round(ratio * width))}`;
      const eta = p.etaSeconds === undefined ? "…" : `${Math.ceil(p.etaSeconds)} s`;
      const line = `${label} [${bar}] ${p.done}/${p.total} events  ${Math.round(p.eventsPerSecond)} ev/s  ETA ${eta}`;
      if (stream.isTTY) {
        stream.write(`\r${line}\u001b[K`);
        drawn = true;
      } else stream.write(`${line}\n`);
    },
    done() {
      if (drawn) stream.write("\n");
    },
  };
}
