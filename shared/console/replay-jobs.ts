/**
 * Warm-ups and rebuilds started from the console: each runs in a worker thread
 * (replay-worker.ts) and steers the runner through the control table, exactly as
 * `canon projection warm-up|rebuild` does from another process; here their progress is kept
 * for the console to show. One job per projection at a time.
 */
import { randomUUID } from "node:crypto";
import { Worker } from "node:worker_threads";
import { type AppDefinition, topologyOf } from "../topology.ts";
import type { ReplayWorkerInput, ReplayWorkerMessage } from "./replay-worker.ts";
import type { ReplayAction, ReplayJob } from "./source.ts";

/** Finished jobs kept for the console. */
const finishedKept = 20;
const messagesKept = 20;

export interface ReplayJobs {
  start(projection: string, action: ReplayAction): ReplayJob;
  /** The jobs, newest first. */
  list(): readonly ReplayJob[];
  /** The running job of a projection, if any. */
  running(projection: string): ReplayJob | undefined;
  stop(): Promise<void>;
}

type MutableJob = { -readonly [K in keyof ReplayJob]: ReplayJob[K] } & { messages: string[] };

/**
 * The app as a worker can receive it (structured clone): its topology, without the declared
 * parts' functions and Protobuf descriptors, which a replay does not use (it loads its
 * projection's handler from the plan).
 */
function cloneable(app: AppDefinition): AppDefinition {
  return topologyOf(app);
}

/** Starts and tracks console-started warm-ups and rebuilds of one app. */
export function replayJobs(input: Omit<ReplayWorkerInput, "action" | "projection">): ReplayJobs {
  const jobs: MutableJob[] = [];
  const workers = new Map<string, Worker>();

  const finish = (job: MutableJob, state: "done" | "failed", error?: string) => {
    if (job.state !== "running") return;
    job.state = state;
    job.finishedAt = new Date().toISOString();
    if (error !== undefined) job.error = error;
    const worker = workers.get(job.id);
    workers.delete(job.id);
    void worker?.terminate();
    const finished = jobs.filter((j) => j.state !== "running");
    for (const old of finished.slice(finishedKept)) jobs.splice(jobs.indexOf(old), 1);
  };

  return {
    start(projection, action) {
      const job: MutableJob = {
        id: randomUUID(),
        projection,
        action,
        state: "running",
        startedAt: new Date().toISOString(),
        messages: [],
      };
      jobs.unshift(job);
      const data: ReplayWorkerInput = { ...input, app: cloneable(input.app), projection, action };
      const worker = new Worker(new URL("./replay-worker.ts", import.meta.url), {
        env: { ...process.env, POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? "WARN" },
        workerData: data,
      });
      workers.set(job.id, worker);
      worker.on("message", (message: ReplayWorkerMessage) => {
        switch (message.kind) {
          case "status":
            job.messages.push(message.message);
            if (job.messages.length > messagesKept) job.messages.shift();
            break;
          case "progress": {
            const { kind: _kind, ...progress } = message;
            job.progress = progress;
            break;
          }
          case "done":
            job.events = message.events;
            job.messages.push(`done: ${message.events} events replayed in ${message.seconds.toFixed(1)} s`);
            finish(job, "done");
            break;
          case "failed":
            finish(job, "failed", message.message);
            break;
        }
      });
      worker.on("error", (error) => finish(job, "failed", error.message));
      worker.on("exit", (code) => finish(job, "failed", `the job's worker exited (${code}) before it finished`));
      return job;
    },
    list: () => jobs.map((job) => ({ ...job, messages: [...job.messages] })),
    running: (projection) => jobs.find((job) => job.projection === projection && job.state === "running"),
    async stop() {
      const running = [...workers.values()];
      for (const job of jobs) if (job.state === "running") finish(job, "failed", "canon dev stopped");
      await Promise.all(running.map((worker) => worker.terminate()));
    },
  };
}
