/**
 * The full exactly-once pipeline: real `orderq work` processes (validation, ledger, ack, DLQ mover live)
 * drain a pre-filled stream. Timed from the ledger's own server timestamps, not by polling.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import { readLedgerWrites } from "../pipeline/ledger.js";
import type { Names } from "../nats/names.js";
import { steadyWindow, verifyCommits, waitForCount, waitForLedger } from "./commits.js";
import { Meter } from "./meter.js";
import { settledStreamMessages } from "./topology.js";
import { perSecond, type PhaseName, type PhaseResult, type Verification } from "./types.js";
import { BenchWorkers, type WorkerLaunch } from "./workers.js";

export interface WorkerPhaseContext {
  nc: NatsConnection;
  /** For orderq's producer: connected as `orderq produce` connects. */
  hotNc: NatsConnection;
  jsm: JetStreamManager;
  names: Names;
  launch: WorkerLaunch;
  /** The server's pid when it is ours, for its CPU time. */
  serverPid?: number;
  /** A phase with no new commit for this long is over: what is missing is reported lost. */
  stallMs: number;
  progress: (text: string) => void;
  /** The commits so far, when the ledger's message count is not it (a soak round: the ledger also holds earlier rounds). */
  committed?: () => Promise<number>;
  /** Inbox mode: the commits so far (default: the KV ledger's writes), and the database's processes for the meter. */
  inbox?: { committed: () => Promise<number>; databasePids: () => readonly number[] };
}

/** Runs the workers until `expected` ledger writes exist (or progress stalls), then drains them. */
export async function runWorkersUntil(
  ctx: WorkerPhaseContext,
  expected: () => number,
  label: string,
  during: (meter: Meter) => Promise<void> = async () => {},
): Promise<{ meter: Meter; rss: number[]; restarts: number }> {
  const workers = new BenchWorkers(ctx.launch, ctx.names);
  const meter = new Meter(() => workers.pids(), ctx.serverPid, ctx.inbox?.databasePids);
  workers.start();
  meter.start();
  let rss: number[];
  try {
    await during(meter);
    const total = expected();
    const progress = (n: number) => ctx.progress(`${label}: ${n}/${total} committed`);
    const committed = ctx.committed ?? ctx.inbox?.committed;
    if (committed) await waitForCount(committed, total, ctx.stallMs, progress);
    else await waitForLedger(ctx.jsm, ctx.names, total, ctx.stallMs, progress);
  } finally {
    meter.stop(); // before the workers go: their CPU must still be readable
    rss = workers.peakRssMb();
    await workers.stop();
  }
  return { meter, rss, restarts: workers.restarts };
}

export async function workPhase(ctx: WorkerPhaseContext, expectedIds: readonly string[]): Promise<PhaseResult> {
  const { meter, rss, restarts } = await runWorkersUntil(ctx, () => expectedIds.length, "work");
  const left = await settledStreamMessages(ctx.jsm, ctx.names.stream);
  const writes = await readLedgerWrites(ctx.nc, ctx.names);
  const window = steadyWindow(writes);
  return workersResult("work", window, { meter, rss, restarts }, "ledger server timestamps", verifyCommits(writes, expectedIds, left));
}

/**
 * The result of a phase of worker processes, timed over its steady window (every worker's first commit
 * → the last commit, ms; `clock` says whose timestamps), with their peak memory and restarts.
 */
export function workersResult(
  phase: PhaseName,
  window: { t0: number; t1: number; count: number },
  run: { meter: Meter; rss: number[]; restarts: number },
  clock: string,
  verification: Verification,
): PhaseResult {
  return {
    phase,
    count: window.count,
    elapsedMs: Math.round(window.t1 - window.t0),
    rate: perSecond(window.count, window.t1 - window.t0),
    window: `every worker's first commit → last commit (${clock}): start-up excluded`,
    cpu: run.meter.cpu(window.t0, window.t1),
    verification,
    workerPeakRssMb: run.rss,
    workerRestarts: run.restarts,
  };
}
