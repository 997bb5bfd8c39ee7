/**
 * `orderq bench`: in each run, (a) the raw JetStream baseline and the exactly-once floor, (b) orderq's
 * produce and exactly-once work, (c) end-to-end latency at a fixed rate, each on fresh streams and each
 * verified; then medians. With `inbox`, (d) the PostgreSQL inbox's floor and orderq's inbox mode with
 * the example handler, on a PostgreSQL of its own. With `intake`, (e) orders through an HTTP gateway the
 * bench starts (intake.ts), flat out and at the latency phase's rate.
 */
import { cpus, loadavg } from "node:os";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsOptions } from "../nats/connection.js";
import type { Names } from "../nats/names.js";
import { randomSeed, seededRng } from "../base/random.js";
import { baselineOrders, consumeBaseline, floorBaseline, publishAll, publishBaseline } from "./baseline.js";
import { latencyPhase } from "./latency.js";
import { Meter } from "./meter.js";
import { producePhase } from "./produce.js";
import { checkTargets, summarize, type BenchSummary, type TargetCheck } from "./summary.js";
import { openTarget, type Target } from "./target.js";
import { deleteTopology } from "../nats/topology.js";
import { createTopology, phaseNames } from "./topology.js";
import type { PhaseResult, RunResult } from "./types.js";
import { workPhase, type WorkerPhaseContext } from "./work.js";
import { InboxDatabase, inboxFloorPhase, inboxWorkPhase, type InboxBenchFiles } from "./inbox.js";
import { intakePhases } from "./intake.js";

export interface BenchConfig {
  orders: number;
  /** Worker processes. */
  workers: number;
  /** Orders in flight per worker process; also the baseline consumer's pull batch. */
  concurrency: number;
  payloadBytes: number;
  /** PubAcks outstanding, for the baseline publish and for produce. */
  inFlight: number;
  /** Orders per second of the latency phase. */
  rate: number;
  latencySeconds: number;
  runs: number;
  /**
   * `--inbox`: the inbox floor and inbox work phases too, on a PostgreSQL of the bench's own, with
   * this pool size (the floor's pool and each worker's `--inbox-pool`) and the workers' `--inbox-batch`.
   */
  inbox?: { poolSize: number; maxBatch: number };
  /**
   * `--intake`: orders through an `orderq intake` gateway the bench starts, flat out (--orders, --in-flight
   * requests outstanding) and at --rate for --latency-seconds.
   */
  intake?: boolean;
}

export interface BenchSetup {
  /** The user's server; absent: a nats-server of our own. */
  server?: NatsOptions;
  /** bin/run.js, to start `orderq work` processes. */
  workerScript: string;
  /** The example handler and its schema, for `inbox`. */
  inboxFiles?: InboxBenchFiles;
}

/** A phase with no progress for this long ends; what is missing is reported lost. */
const STALL_MS = 30_000;
/** Drained flat out by fresh workers before latency is measured: enough for the JIT to settle. */
const LATENCY_WARMUP_ORDERS = 10_000;

export interface BenchResult {
  /** What was asked, and the consumers' max ack pending it implies (see createTopology). */
  config: BenchConfig & { maxAckPending: number };
  environment: {
    date: string;
    node: string;
    cpus: number;
    /** 1-minute load average before and after: the figures are only as quiet as the machine. */
    loadAverage: { before: number; after: number };
    server: { url: string; version: string; ours: boolean };
    /** `--inbox`: the PostgreSQL the bench started, and its commit durability. */
    database?: { version: string; synchronousCommit: string };
  };
  runs: RunResult[];
  summary: BenchSummary;
  targets: TargetCheck[];
  /** Every phase of every run delivered every order exactly once. */
  verified: boolean;
}

export async function runBench(config: BenchConfig, setup: BenchSetup, progress: (text: string) => void): Promise<BenchResult> {
  const loadBefore = loadavg()[0];
  const target = await openTarget(setup.server);
  let db: InboxDatabase | undefined;
  try {
    if (config.inbox) {
      if (!setup.inboxFiles) throw new Error("bench --inbox: the example handler and schema were not given");
      progress("starting PostgreSQL for the inbox phases");
      db = await InboxDatabase.start(setup.inboxFiles);
    }
    const database = db && (await databaseInfo(db));
    const tag = randomSeed().toString(36).toUpperCase(); // two benchmarks on one server share nothing
    const runs: RunResult[] = [];
    for (let run = 1; run <= config.runs; run++) {
      const say = (text: string) => progress(`run ${run}/${config.runs} · ${text}`);
      const phases = await oneRun(config, setup.workerScript, target, db, `${tag}_${run}`, run, say);
      runs.push({ run, phases, verified: phases.every((p) => p.verification.ok) });
    }
    const summary = summarize(runs);
    return {
      config: { ...config, maxAckPending: maxAckPendingOf(config) },
      environment: {
        date: new Date().toISOString(),
        node: process.version,
        cpus: cpus().length,
        loadAverage: { before: loadBefore, after: loadavg()[0] },
        server: { url: target.url, version: target.version, ours: target.serverPid !== undefined },
        ...(database ? { database } : {}),
      },
      runs,
      summary,
      targets: checkTargets(summary, config),
      verified: runs.every((r) => r.verified),
    };
  } finally {
    await db?.close();
    await target.close();
  }
}

/** The bench consumers' max ack pending: what its workers may hold (see createTopology). */
function maxAckPendingOf(o: Pick<BenchConfig, "concurrency" | "workers">): number {
  return o.concurrency * o.workers;
}

async function databaseInfo(db: InboxDatabase): Promise<{ version: string; synchronousCommit: string }> {
  const { rows } = await db.pool.query<{ version: string; sync: string }>(
    "SELECT current_setting('server_version') AS version, current_setting('synchronous_commit') AS sync",
  );
  return { version: rows[0].version, synchronousCommit: rows[0].sync };
}

async function oneRun(
  o: BenchConfig,
  workerScript: string,
  target: Target,
  db: InboxDatabase | undefined,
  tag: string,
  run: number,
  say: (text: string) => void,
): Promise<PhaseResult[]> {
  const { nc } = target;
  const jsm = await jetstreamManager(nc);
  const phases: PhaseResult[] = [];
  const meter = new Meter(() => [process.pid], target.serverPid); // phases that run in this process
  const context = (names: Names): WorkerPhaseContext => ({
    nc,
    hotNc: target.hotNc,
    jsm,
    names,
    launch: { script: workerScript, server: target.url, env: target.workerEnv, processes: o.workers, concurrency: o.concurrency },
    serverPid: target.serverPid,
    stallMs: STALL_MS,
    progress: say,
  });
  const inFreshTopology = async (phase: string, body: (names: Names) => Promise<void>) => {
    const names = phaseNames(tag, phase);
    await createTopology(nc, names, maxAckPendingOf(o));
    try {
      await body(names);
    } finally {
      await deleteTopology(jsm, names);
    }
  };

  await inFreshTopology("BASE", async (names) => {
    const orders = baselineOrders(names, "base", o.orders, o.payloadBytes, seededRng(run));
    say(`baseline: publishing ${o.orders} orders, ${o.inFlight} in flight`);
    phases.push(await publishBaseline(nc, jsm, names, orders, o.inFlight, meter));
    say("baseline: consume + plain ack");
    phases.push(await consumeBaseline(nc, jsm, names, o.orders, o.concurrency, meter, STALL_MS));
  });
  await inFreshTopology("FLOOR", async (names) => {
    say(`exactly-once floor: filling the stream with ${o.orders} orders (not measured)`);
    await publishAll(jetstream(nc), baselineOrders(names, "floor", o.orders, o.payloadBytes, seededRng(run)), o.inFlight);
    say("exactly-once floor: consume + ledger write + ack");
    phases.push(await floorBaseline(target.hotNc, jsm, names, o.orders, o.concurrency, meter, STALL_MS));
  });
  await inFreshTopology("OQ", async (names) => {
    say(`orderq produce: ${o.orders} orders`);
    const settings = { count: o.orders, inFlight: o.inFlight, payloadBytes: o.payloadBytes, seed: run, idPrefix: `p${run}` };
    const produced = await producePhase(target.hotNc, jsm, names, settings, meter);
    phases.push(produced.result);
    phases.push(await workPhase(context(names), produced.acceptedIds));
  });
  await inFreshTopology("LAT", async (names) => {
    const count = Math.max(1, Math.round(o.rate * o.latencySeconds));
    const settings = { count, rate: o.rate, inFlight: o.inFlight, payloadBytes: o.payloadBytes, seed: 1000 + run, idPrefix: `l${run}` };
    phases.push(await latencyPhase(context(names), settings, Math.min(o.orders, LATENCY_WARMUP_ORDERS)));
  });
  if (db && o.inbox) {
    const inbox = o.inbox;
    await inFreshTopology("IBFLOOR", async (names) => {
      say(`inbox floor: filling the stream with ${o.orders} orders (not measured)`);
      await publishAll(jetstream(nc), baselineOrders(names, "ibfloor", o.orders, o.payloadBytes, seededRng(run)), o.inFlight);
      say(`inbox floor: consume + INSERT … ON CONFLICT DO NOTHING (${inbox.poolSize} connections) + ack`);
      const dbMeter = new Meter(() => [process.pid], target.serverPid, db.pids);
      const settings = { count: o.orders, batch: o.concurrency, poolSize: inbox.poolSize, stallMs: STALL_MS };
      phases.push(await inboxFloorPhase(target.hotNc, jsm, names, db, settings, dbMeter));
    });
    await inFreshTopology("IBWORK", async (names) => {
      say(`inbox work: filling the stream with ${o.orders} orders (not measured)`);
      const orders = baselineOrders(names, `ib${run}`, o.orders, o.payloadBytes, seededRng(run));
      await publishAll(jetstream(nc), orders, o.inFlight);
      phases.push(
        await inboxWorkPhase(
          context(names),
          db,
          inbox,
          orders.map((order) => order.id),
        ),
      );
    });
  }
  if (o.intake) {
    await inFreshTopology("INTAKE", async (names) => {
      const launch = { script: workerScript, server: target.url, env: target.workerEnv };
      const settings = {
        count: o.orders,
        inFlight: o.inFlight,
        rate: o.rate,
        seconds: o.latencySeconds,
        payloadBytes: o.payloadBytes,
        seed: 2000 + run,
        idPrefix: `h${run}`,
      };
      phases.push(...(await intakePhases(launch, jsm, names, settings, target.serverPid, say)));
    });
  }
  return phases;
}
