/**
 * What `orderq work` runs, whichever shape it takes: one worker in this process (worker-process.ts)
 * or a supervisor of worker processes (work-supervisor.ts). runPool drives either to its end.
 */
import type { Server } from "node:http";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Names } from "../nats/names.js";
import type { WorkerStats } from "../pipeline/worker.js";
import { dlqDepthRegistry, serveMetrics } from "./metrics.js";
import { waitForQuiet } from "./quiescence.js";
import { startInboxPruner } from "./inbox-pruner.js";

export interface WorkPool {
  stats(): WorkerStats;
  workers(): number;
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Stop pulling, finish what is in hand; `done` settles afterwards. */
  stop(): void;
  done: Promise<unknown>;
}

export interface RunPoolOptions {
  names: Names;
  metricsPort?: number;
  /**
   * With metricsPort: the DLQ's entries by reason, read at each scrape for `orderq_dlq_depth` (the
   * caller passes ops' countDlq, a room above this one).
   */
  dlqDepth?: () => Promise<Record<string, number>>;
  exitWhenIdleMs?: number;
  /**
   * A supervised child ignores SIGINT: Ctrl-C reaches the whole process group, the supervisor turns
   * it into one SIGTERM per worker (which drains), and a second signal here would mean "exit now" and
   * abandon the orders in flight. It also drains when the supervisor dies (the IPC channel closes).
   */
  supervisedChild: boolean;
  /** Told once, on the first signal, what stopping will do (not for a supervised child). */
  onDrain?: (inFlight: number) => void;
  /** Inbox mode, top-level process only: prune the inbox to the horizon while the pool runs (inbox-pruner.ts). */
  pruneInbox?: { url: string; table: string; log: (line: string) => void };
}

/**
 * Runs `pool` until it is done: serves metrics, stops it once the pipeline has been quiet for
 * exitWhenIdleMs, and on SIGTERM/SIGINT; a second signal exits at once (130).
 */
export async function runPool(pool: WorkPool, jsm: JetStreamManager, o: RunPoolOptions): Promise<void> {
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) process.exit(130); // a second Ctrl-C means now
    if (!o.supervisedChild) o.onDrain?.(pool.stats().inFlight);
    pool.stop();
  };
  process.on("SIGTERM", onSignal);
  if (o.supervisedChild) {
    process.on("SIGINT", () => {});
    process.on("disconnect", () => pool.stop());
  } else {
    process.on("SIGINT", onSignal);
  }
  let metricsServer: Server | undefined;
  if (o.metricsPort !== undefined) {
    const dlq = o.dlqDepth && dlqDepthRegistry(o.dlqDepth);
    metricsServer = await serveMetrics(o.metricsPort, async () => {
      const { contentType, body } = await pool.metrics();
      return { contentType, body: body + ((await dlq?.metrics()) ?? "") };
    });
  }
  if (o.exitWhenIdleMs !== undefined) {
    waitForQuiet(jsm, o.names, { quietForMs: o.exitWhenIdleMs, timeoutMs: Number.MAX_SAFE_INTEGER, shouldStop: () => signals > 0 }).then(
      (quiet) => quiet && pool.stop(),
      () => pool.stop(), // the idle watch itself failed: drain and exit rather than run forever
    );
  }
  const pruner = o.pruneInbox && startInboxPruner(jsm, o.names, o.pruneInbox, o.pruneInbox.log);
  try {
    await pool.done;
  } finally {
    metricsServer?.close();
    await pruner?.stop();
  }
}
