import { Flags, type Interfaces } from "@oclif/core";
import { join, resolve as resolvePath } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { OrderqCommand, nameFlags, settingsFrom, topologyFlags } from "../cli/base.js";
import { duration, probability, shownAs } from "../cli/flags.js";
import { inboxFlags, inboxFrom, type RawTokens } from "../cli/inbox-flags.js";
import { c, keyValueTable, rate, StatusLine } from "../cli/render.js";
import * as defaults from "../core/base/defaults.js";
import { formatDuration } from "../core/base/duration.js";
import { InputError } from "../core/base/errors.js";
import type { ScaleEvent } from "../core/fleet/autoscaler.js";
import type { ResolvedWorkOptions } from "../core/fleet/work-args.js";
import { runPool } from "../core/fleet/work-pool.js";
import { runsSupervisor, startWorkSupervisor } from "../core/fleet/work-supervisor.js";
import { isSupervisedChild, leaveSupervisor } from "../core/fleet/child-channel.js";
import { startWorkerProcess, STRICT_ORDERS_ENV } from "../core/fleet/worker-process.js";
import { INBOX_URL_ENV } from "../core/inbox/connect.js";
import { credentialEnv, watchLink } from "../core/nats/connection.js";
import { loadHandlerModule, SIMULATED_HANDLER } from "../core/pipeline/handler-module.js";
import { ensureTopology } from "../core/nats/topology.js";
import { countDlq } from "../core/ops/dlq-admin.js";
import type { WorkerStats } from "../core/pipeline/worker.js";

export default class Work extends OrderqCommand {
  static override summary = "Process orders exactly once: pull, validate, handle, commit to the ledger, ack.";
  static override description =
    "Runs until SIGINT/SIGTERM (or --exit-when-idle), then stops pulling, finishes the orders in flight and exits 0. " +
    "Failed attempts are retried with exponential backoff; after --max-deliver attempts, or on a non-retryable " +
    "error or an invalid payload, the order is copied to the dead-letter stream. Each process also runs a DLQ mover.\n\n" +
    "--handler runs your module (default export async (order, ctx) => void) instead of the simulated handler; with " +
    "--inbox (or ORDERQ_INBOX_URL) each order's handler runs in the PostgreSQL transaction that inserts its inbox row, " +
    "so its writes through ctx.db commit exactly once.\n\n" +
    "--autoscale starts --min worker processes and adds or retires them so the backlog drains within " +
    "--target-lag-seconds at the measured commit rate; every decision is logged with its reason.";
  static override examples = [
    "<%= config.bin %> work --concurrency 50",
    "<%= config.bin %> work --processes 3 --handler-ms 20 --fail-rate 0.05",
    "<%= config.bin %> work --autoscale --min 1 --max 8 --handler-ms 20 --metrics-port 9464",
    "<%= config.bin %> work --exit-when-idle 2s --json",
    "ORDERQ_INBOX_URL=postgres://orders@127.0.0.1/shop <%= config.bin %> work --handler ./examples/postgres-orders/handler.mjs",
  ];

  static override flags = {
    ...nameFlags,
    ...topologyFlags,
    handler: Flags.string({
      summary: `Handler module (its default export is async (order, ctx) => void), or "${SIMULATED_HANDLER}" for the built-in.`,
      default: SIMULATED_HANDLER,
    }),
    ...inboxFlags,
    "inbox-pool": Flags.integer({
      summary: "Database connections per worker process (order transactions open at once).",
      default: defaults.INBOX.poolSize,
      min: 1,
      helpGroup: "INBOX",
    }),
    "inbox-batch": Flags.integer({
      summary: "Most orders in one transaction; a batch with a failed order runs again, each in its own savepoint (1: a transaction per order).",
      default: defaults.INBOX.maxBatch,
      min: 1,
      max: defaults.INBOX.maxBatchCeiling,
      helpGroup: "INBOX",
    }),
    concurrency: Flags.integer({ char: "c", summary: "Orders in flight per process.", default: defaults.CONCURRENCY, min: 1 }),
    processes: Flags.integer({
      char: "p",
      summary: `Worker processes (at most ${defaults.MAX_PROCESSES}), under one supervisor that replaces any that die.`,
      default: defaults.PROCESSES,
      min: 1,
      max: defaults.MAX_PROCESSES,
    }),
    "handler-ms": Flags.integer({ summary: "Simulated processing time per order, in ms.", default: 0, min: 0 }),
    "fail-rate": probability({ summary: "Probability that an attempt fails with a transient error.", default: 0 }),
    "poison-switch": Flags.boolean({
      summary: "Reject orders marked poison/fatal/crash; --no-poison-switch simulates the bug being fixed.",
      default: true,
      allowNo: true,
    }),
    "backoff-base": duration({
      summary: "Retry delay after the first failed attempt.",
      default: defaults.BACKOFF.baseMs,
      defaultHelp: shownAs(defaults.BACKOFF.baseMs),
    }),
    "backoff-max": duration({
      summary: "Upper bound of any retry delay.",
      default: defaults.BACKOFF.maxMs,
      defaultHelp: shownAs(defaults.BACKOFF.maxMs),
    }),
    "confirm-ack": Flags.boolean({ summary: "Await a confirmed ack (double ack) for every order.", default: false }),
    "exit-when-idle": duration({ summary: "Exit once nothing is pending or in flight for this long (e.g. 2s)." }),
    "drain-timeout": duration({
      summary:
        "On SIGTERM/SIGINT, how long to wait for the orders in hand; then their handlers' ctx.signal is aborted and they are left for redelivery.",
      default: defaults.DRAIN_TIMEOUT_MS,
      defaultHelp: shownAs(defaults.DRAIN_TIMEOUT_MS),
    }),
    "worker-id": Flags.string({ summary: "Name of this worker in the ledger and attempt history.", default: `w-${process.pid}` }),
    lane: Flags.string({
      summary: "quarantine: run only a quarantine lane (suspects, one at a time) in this process.",
      description:
        "A suspect is an order whose previous delivery ended with no recorded failure (its worker died or lost its lease). " +
        "Suspects are retried alone in the quarantine lane, so an order that crashes workers is charged and dead-lettered " +
        "(reason crashed-worker) without the orders that were in flight beside it. With --processes or --autoscale the " +
        "supervisor runs the lane as a process of its own; a lone `orderq work` runs it in-process.",
      options: ["quarantine"],
    }),
    mover: Flags.boolean({ summary: "Run a DLQ mover in this process.", default: true, allowNo: true }),
    "strict-orders": Flags.boolean({
      summary: "Dead-letter orders with fields the order schema does not name (`orderq schema`); by default they reach the handler.",
      default: false,
    }),
    seed: Flags.integer({ summary: "Seed of the simulated handler's randomness." }),
    // No 0 (a free port picked by the system): nothing would tell the scraper which one.
    "metrics-port": Flags.integer({ summary: "Serve Prometheus metrics on this port at /metrics.", min: 1, max: 65535 }),
    autoscale: Flags.boolean({
      summary: "Add and retire worker processes to keep the backlog within target.",
      default: false,
      helpGroup: "AUTOSCALE",
    }),
    min: Flags.integer({
      summary: "Fewest worker processes with --autoscale.",
      default: defaults.AUTOSCALE.min,
      min: 1,
      max: defaults.MAX_PROCESSES,
      helpGroup: "AUTOSCALE",
    }),
    max: Flags.integer({
      summary: `Most worker processes with --autoscale (at most ${defaults.MAX_PROCESSES}).`,
      default: defaults.AUTOSCALE.max,
      min: 1,
      max: defaults.MAX_PROCESSES,
      helpGroup: "AUTOSCALE",
    }),
    "target-lag-seconds": Flags.integer({
      summary: "Backlog ÷ commit rate to aim for.",
      default: defaults.AUTOSCALE.targetLagSeconds,
      min: 1,
      helpGroup: "AUTOSCALE",
    }),
    cooldown: duration({
      summary: "Hold after each scaling decision.",
      default: defaults.AUTOSCALE.cooldownMs,
      defaultHelp: shownAs(defaults.AUTOSCALE.cooldownMs),
      helpGroup: "AUTOSCALE",
    }),
    "sample-every": duration({
      summary: "Sampling period of the lag and commit rate.",
      default: defaults.AUTOSCALE.sampleMs,
      defaultHelp: shownAs(defaults.AUTOSCALE.sampleMs),
      minMs: 10,
      helpGroup: "AUTOSCALE",
    }),
    "crash-after-commit-rate": probability({
      summary: "Fault: probability of SIGKILLing this process between commit and ack.",
      default: 0,
      helpGroup: "FAULTS",
    }),
    "drop-ack-rate": probability({ summary: "Fault: probability of committing and never acking.", default: 0, helpGroup: "FAULTS" }),
    unsafe: Flags.boolean({ summary: "Negative control: commit with a plain put (duplicates become visible).", default: false, helpGroup: "FAULTS" }),
    trace: Flags.boolean({
      summary: "Log to stderr, with a timestamp, every outcome decision (commit, ack, dead-letter, move, sweep) and every error.",
      description: "Chaos runs turn it on and keep the log as evidence: a lost order can be traced to the decision that acked or deleted it.",
      default: false,
    }),
  };

  async run(): Promise<WorkerStats & { elapsedMs: number; rate: number; workers: number; scaling: ScaleEvent[] }> {
    const { flags, raw } = await this.parse(Work);
    if (flags["strict-orders"]) process.env[STRICT_ORDERS_ENV] = "1"; // inherited by the worker processes
    const o = resolve(flags, this.natsOptions(flags).server, raw); // the URL without credentials: it goes on child workers' command lines
    // A supervisor's child runs one worker whatever its flags say: it never supervises in turn.
    const child = isSupervisedChild();
    // A handler module may read the inbox URL from the environment, as the workers' children get it.
    if (o.inbox) process.env[INBOX_URL_ENV] = o.inbox.url;
    // The module is checked here, once, before any worker process starts: a bad one is exit 2.
    if (flags.handler !== SIMULATED_HANDLER && !child) await loadHandlerModule(flags.handler);
    const nc = await this.connect(flags, { coalesceWrites: true });
    await ensureTopology(nc, o.settings, { verify: false, update: false, createUnderOtherNames: false });
    const jsm = await jetstreamManager(nc);
    const started = Date.now();
    const scaling: ScaleEvent[] = [];
    // Log lines are written above the live status line (on a terminal), never glued onto it.
    const status = new StatusLine();
    const log = (line: string) => (this.jsonEnabled() ? this.logLine(line) : status.print(line));
    // The supervisor's own connection stands for the pipeline's: one line per change, not one per worker.
    if (!this.jsonEnabled() && !child) watchLink(nc, (line) => log(`orderq: ${line}`));
    const pool = runsSupervisor(o, child)
      ? startWorkSupervisor(jsm, o, {
          script: join(this.config.root, "bin", "run.js"),
          credentials: { ...credentialEnv(this.natsOptions(flags)), ...(o.inbox ? { [INBOX_URL_ENV]: o.inbox.url } : {}) },
          log,
          onScale: (event) => {
            scaling.push(event);
            if (!this.jsonEnabled()) log(`autoscale: ${event.from} → ${event.to} workers: ${event.reason}`);
          },
        })
      : await startWorkerProcess(nc, jsm, o, log);

    if (!this.jsonEnabled() && !child) {
      status.start(() => {
        const s = pool.stats();
        return (
          `${c.green("committed")} ${s.committed}  ${rate(s.committed, Date.now() - started)}  workers ${pool.workers()}  ` +
          `retried ${s.retried}  suppressed ${s.suppressedDuplicates}  ${c.yellow("dead-lettered")} ${s.deadLettered}  in flight ${s.inFlight}`
        );
      });
    }
    try {
      // Rejects when a worker process refused its input (exit 2): the others are stopped by then.
      await runPool(pool, jsm, {
        names: o.settings.names,
        metricsPort: o.metricsPort,
        dlqDepth: async () => (await countDlq(nc, o.settings.names)).byReason,
        exitWhenIdleMs: o.exitWhenIdleMs,
        supervisedChild: child,
        pruneInbox: o.inbox && !child ? { url: o.inbox.url, table: o.inbox.table, log } : undefined,
        onDrain: (inFlight) =>
          log(
            `orderq: stopping: finishing ${inFlight} order(s) in hand (at most ${formatDuration(o.drainTimeoutMs)}; a second Ctrl-C stops at once)`,
          ),
      });
    } finally {
      status.stop();
      await nc.drain();
      if (child) leaveSupervisor();
    }
    const stats = pool.stats();
    const elapsedMs = Date.now() - started;
    if (!child) {
      this.log(
        keyValueTable([
          ["committed", stats.committed],
          ["suppressed duplicates", stats.suppressedDuplicates],
          ["failed attempts", stats.failedAttempts],
          ["retried", stats.retried],
          ["quarantined (suspects)", stats.quarantined],
          ["dead-lettered", stats.deadLettered],
          ["invalid payloads", stats.invalid],
          ["errors", stats.errors],
          ["scaling decisions", scaling.length],
          ["elapsed", `${(elapsedMs / 1000).toFixed(1)} s`],
          ["rate", rate(stats.committed, elapsedMs)],
        ]),
      );
    }
    return { ...stats, elapsedMs, rate: Math.round((stats.committed * 1000) / Math.max(1, elapsedMs)), workers: pool.workers(), scaling };
  }
}

type WorkFlags = Interfaces.InferredFlags<(typeof Work)["flags"]>;

/**
 * The flags as typed options, checked together (each one alone was checked when it was parsed); the
 * one source of every worker process's command line (workArgs). Throws InputError naming the flags.
 */
export function resolve(flags: WorkFlags, server: string, raw: RawTokens): ResolvedWorkOptions {
  if (flags.autoscale && flags.min > flags.max) throw new InputError(`--min ${flags.min} is above --max ${flags.max}`);
  if (flags["backoff-base"] > flags["backoff-max"]) {
    throw new InputError(`--backoff-base ${formatDuration(flags["backoff-base"])} is above --backoff-max ${formatDuration(flags["backoff-max"])}`);
  }
  // A lane is one process with one order in flight: that is what keeps a crash from charging others.
  if (flags.lane && (flags.processes > 1 || flags.autoscale))
    throw new InputError("--lane quarantine runs one process: drop --processes / --autoscale");
  const inbox = inboxFrom(flags, raw, ["inbox-pool", "inbox-batch", "inbox-table"]);
  return {
    server,
    settings: settingsFrom(flags),
    concurrency: flags.concurrency,
    // Absolute, so worker processes started from another directory find the same module.
    handler: flags.handler === SIMULATED_HANDLER ? SIMULATED_HANDLER : resolvePath(flags.handler),
    inbox: inbox && { ...inbox, poolSize: flags["inbox-pool"], maxBatch: flags["inbox-batch"] },
    processes: flags.processes,
    autoscale: flags.autoscale
      ? {
          min: flags.min,
          max: flags.max,
          targetLagSeconds: flags["target-lag-seconds"],
          cooldownMs: flags.cooldown,
          sampleMs: flags["sample-every"],
        }
      : undefined,
    handlerMs: flags["handler-ms"],
    failRate: flags["fail-rate"],
    poisonSwitch: flags["poison-switch"],
    backoffBaseMs: flags["backoff-base"],
    backoffMaxMs: flags["backoff-max"],
    confirmAck: flags["confirm-ack"],
    exitWhenIdleMs: flags["exit-when-idle"],
    drainTimeoutMs: flags["drain-timeout"],
    workerId: flags["worker-id"],
    lane: flags.lane === "quarantine" ? "quarantine" : undefined,
    mover: flags.mover,
    seed: flags.seed,
    metricsPort: flags["metrics-port"],
    crashAfterCommitRate: flags["crash-after-commit-rate"],
    dropAckRate: flags["drop-ack-rate"],
    unsafe: flags.unsafe,
    trace: flags.trace,
  };
}
