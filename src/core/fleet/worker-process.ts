/**
 * One worker in this process: `orderq work` alone, or one child of a supervisor. A child reports its
 * stats (and metrics, when they are served) to the supervisor over IPC; it never supervises.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import { randomSeed, seededRng } from "../base/random.js";
import { DEFAULT_BACKOFF } from "../pipeline/backoff.js";
import { InboxStore } from "../inbox/store.js";
import { simulatedHandler } from "../pipeline/handler.js";
import { loadHandlerModule, SIMULATED_HANDLER } from "../pipeline/handler-module.js";
import { emptyStats, Worker, type Lane, type WorkerStats } from "../pipeline/worker.js";
import { pipelineRegistry, WorkerMetrics } from "./metrics.js";
import { backlog } from "./quiescence.js";
import { isSupervisedChild, type ChildReport } from "./child-channel.js";
import type { ResolvedWorkOptions } from "./work-args.js";
import type { WorkPool } from "./work-pool.js";

/**
 * "1": workers refuse orders with fields the schema does not name (`orderq work --strict-orders`).
 * An environment variable, so the worker processes a supervisor starts inherit it.
 */
export const STRICT_ORDERS_ENV = "ORDERQ_STRICT_ORDERS";

/** Set by a supervisor that serves metrics: its children then measure latency and send snapshots. */
export const METRICS_ENV = "ORDERQ_METRICS";

const REPORT_EVERY_MS = 250;

/**
 * Starts one worker in this process with the team's handler module (or the simulated one) and, in
 * inbox mode, its pool of database connections. Throws InputError for a bad handler module and
 * EnvironmentError when the inbox cannot be reached or has another shape.
 */
export async function startWorkerProcess(
  nc: NatsConnection,
  jsm: JetStreamManager,
  o: ResolvedWorkOptions,
  log: (line: string) => void,
): Promise<WorkPool> {
  const names = o.settings.names;
  const seed = o.seed ?? randomSeed();
  const handler =
    o.handler === SIMULATED_HANDLER
      ? simulatedHandler({ handlerMs: o.handlerMs, failRate: o.failRate, poisonSwitch: o.poisonSwitch }, seededRng(seed))
      : await loadHandlerModule(o.handler);
  const inbox = o.inbox && (await InboxStore.open(o.inbox));
  const supervised = isSupervisedChild();
  // Read only once the workers exist: metrics are collected after start.
  const metrics = new WorkerMetrics(() => stats());
  const metricsServed = o.metricsPort !== undefined || process.env[METRICS_ENV] === "1";
  const worker = (lane: Lane, workerId: string, mover: boolean) =>
    new Worker(
      nc,
      {
        names,
        strictOrders: process.env[STRICT_ORDERS_ENV] === "1",
        workerId,
        lane,
        concurrency: o.concurrency,
        backoff: { ...DEFAULT_BACKOFF, baseMs: o.backoffBaseMs, maxMs: o.backoffMaxMs },
        confirmAck: o.confirmAck,
        unsafe: o.unsafe,
        mover,
        drainTimeoutMs: o.drainTimeoutMs,
        inbox,
        onHandlerLog: (orderId, message) => log(`worker ${workerId}: order ${orderId}: ${message}`),
        // The latency histogram costs a clock read and an observe per order: only when it is served.
        observeLatency: metricsServed ? (seconds) => metrics.latency.observe(seconds) : undefined,
        counter: metricsServed ? metrics : undefined,
        onError: (o.trace ? (l: (m: string) => void) => l : onceInAWhile)((message) =>
          log(`${o.trace ? `${new Date().toISOString()} ` : ""}orderq: worker ${workerId}: ${message} (the order is left for redelivery)`),
        ),
        onNotice: (message) => log(`${o.trace ? `${new Date().toISOString()} ` : ""}orderq: worker ${workerId}: ${message}`),
        trace: o.trace ? (line) => process.stderr.write(`${new Date().toISOString()} ${workerId} ${line}\n`) : undefined,
        faults: { crashAfterCommitRate: o.crashAfterCommitRate, dropAckRate: o.dropAckRate },
      },
      handler,
      seededRng(seed + (lane === "main" ? 1 : 2)),
    );
  // A supervisor runs the quarantine lane in a process of its own (so a crash there charges only the
  // suspect it holds); a lone `orderq work` runs it here, beside the main lane, without a mover of its own.
  const workers =
    o.lane === "quarantine"
      ? [worker("quarantine", o.workerId, o.mover)]
      : supervised
        ? [worker("main", o.workerId, o.mover)]
        : [worker("main", o.workerId, o.mover), worker("quarantine", `${o.workerId}-q`, false)];
  const stats = (): WorkerStats => sumStats(workers.map((w) => w.stats));
  let done: Promise<unknown> = Promise.all(workers.map((w) => w.run())).finally(() => inbox?.close());
  if (supervised) {
    // This process's stderr is a pipe to the supervisor (SupervisorOptions.stderrLine). Once the
    // supervisor is gone (a second Ctrl-C, a crash) a write fails with EPIPE, emitted as an error that
    // would end this process in the middle of the drain of the orders it holds; nobody reads the line.
    process.stderr.on("error", () => {});
    const report = async () => {
      const snapshot = metricsServed ? await metrics.registry.getMetricsAsJSON() : undefined;
      // Once the supervisor is gone (a second Ctrl-C, a crash) there is nobody to tell, and a send
      // on the closed channel would throw from this timer and end the drain with orders in hand.
      if (!process.connected) return;
      process.send?.({ type: "stats", stats: stats(), metrics: snapshot } satisfies ChildReport, undefined, undefined, () => {});
    };
    const timer = setInterval(() => void report(), REPORT_EVERY_MS);
    void report(); // at once: the supervisor tells a worker that started from one that cannot start
    done = done.finally(async () => {
      clearInterval(timer);
      await report();
    });
  }
  const lagRegistry = pipelineRegistry(async () => {
    const b = await backlog(jsm, names);
    return { workers: 1, lag: b.pending + b.ackPending };
  });
  return {
    stats,
    workers: () => 1,
    metrics: async () => ({
      contentType: metrics.registry.contentType,
      body: (await metrics.registry.metrics()) + (await lagRegistry.metrics()),
    }),
    stop: () => workers.forEach((w) => w.stop()),
    done,
  };
}

/** The stats of several workers (lanes) of one process, as one. */
export function sumStats(all: WorkerStats[]): WorkerStats {
  const total = emptyStats();
  for (const stats of all) for (const key of Object.keys(total) as (keyof WorkerStats)[]) total[key] += stats[key];
  return total;
}

/**
 * Logs a message, but the same message at most once every 10 s: a broker outage is one line, not
 * thousands (README, inbox: a batch whose COMMIT fails is one line for all its orders). `now`: the
 * clock, epoch ms (tests).
 */
export function onceInAWhile(log: (message: string) => void, now: () => number = Date.now): (message: string) => void {
  const last = new Map<string, number>();
  return (message) => {
    const at = now();
    const before = last.get(message);
    if (before !== undefined && at - before < 10_000) return;
    last.set(message, at);
    log(message);
  };
}
