import { Flags, type Interfaces } from "@oclif/core";
import { join } from "node:path";
import type { Server } from "node:http";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { OrderqCommand, nameFlags, probability, settingsFrom, topologyFlags } from "../cli/base.js";
import { c, keyValueTable, rate, StatusLine } from "../cli/render.js";
import { Autoscaler, type ScaleEvent } from "../core/autoscaler.js";
import { DEFAULT_BACKOFF } from "../core/backoff.js";
import { credentialEnv } from "../core/connection.js";
import { parseDuration } from "../core/duration.js";
import { InputError } from "../core/errors.js";
import { simulatedHandler } from "../core/handler.js";
import { mergeMetrics, pipelineRegistry, serveMetrics, WorkerMetrics } from "../core/metrics.js";
import type { Names } from "../core/names.js";
import { backlog, waitForQuiet } from "../core/quiescence.js";
import { randomSeed, seededRng } from "../core/random.js";
import { Supervisor, type ChildReport } from "../core/supervisor.js";
import { ensureTopology } from "../core/topology.js";
import { Worker, type WorkerStats } from "../core/worker.js";

/** Flags that only the supervising process acts on; its children must not see them. */
const SUPERVISOR_ONLY = ["--processes", "-p", "--exit-when-idle", "--json", "--worker-id", "--autoscale", "--min", "--max", "--target-lag-seconds", "--cooldown", "--sample-every", "--metrics-port"];
/** Credentials reach the children in NATS_* variables (credentialEnv), not in arguments that `ps` shows. */
const CREDENTIAL_FLAGS = ["--user", "--password", "--token", "--creds", "--tls-ca"];

/** A running pool: one in-process worker, or a supervisor of worker processes. */
interface Pool {
  stats(): WorkerStats;
  workers(): number;
  metrics(): Promise<{ contentType: string; body: string }>;
  stop(): void;
  done: Promise<unknown>;
}

export default class Work extends OrderqCommand {
  static override summary = "Process orders exactly once: pull, validate, handle, commit to the ledger, ack.";
  static override description =
    "Runs until SIGINT/SIGTERM (or --exit-when-idle), then stops pulling, finishes the orders in flight and exits 0. " +
    "Failed attempts are retried with exponential backoff; after --max-deliver attempts, or on a non-retryable " +
    "error or an invalid payload, the order is copied to the dead-letter stream. Each process also runs a DLQ mover.\n\n" +
    "--autoscale starts --min worker processes and adds or retires them so the backlog drains within " +
    "--target-lag-seconds at the measured commit rate; every decision is logged with its reason.";
  static override examples = [
    "<%= config.bin %> work --concurrency 50",
    "<%= config.bin %> work --processes 3 --handler-ms 20 --fail-rate 0.05",
    "<%= config.bin %> work --autoscale --min 1 --max 8 --handler-ms 20 --metrics-port 9464",
    "<%= config.bin %> work --exit-when-idle 2s --json",
  ];

  static override flags = {
    ...nameFlags,
    ...topologyFlags,
    concurrency: Flags.integer({ char: "c", summary: "Orders in flight per process.", default: 256, min: 1 }),
    processes: Flags.integer({ char: "p", summary: "Worker processes, under one supervisor that replaces any that die.", default: 1, min: 1 }),
    "handler-ms": Flags.integer({ summary: "Simulated processing time per order, in ms.", default: 0, min: 0 }),
    "fail-rate": Flags.string({ summary: "Probability that an attempt fails with a transient error.", default: "0" }),
    "poison-switch": Flags.boolean({
      summary: "Reject orders marked poison/fatal/crash; --no-poison-switch simulates the bug being fixed.",
      default: true,
      allowNo: true,
    }),
    "backoff-base": Flags.string({ summary: "Retry delay after the first failed attempt.", default: "250ms" }),
    "backoff-max": Flags.string({ summary: "Upper bound of any retry delay.", default: "5s" }),
    "confirm-ack": Flags.boolean({ summary: "Await a confirmed ack (double ack) for every order.", default: false }),
    "exit-when-idle": Flags.string({ summary: "Exit once nothing is pending or in flight for this long (e.g. 2s)." }),
    "worker-id": Flags.string({ summary: "Name of this worker in the ledger and attempt history.", default: `w-${process.pid}` }),
    mover: Flags.boolean({ summary: "Run a DLQ mover in this process.", default: true, allowNo: true }),
    seed: Flags.integer({ summary: "Seed of the simulated handler's randomness." }),
    "metrics-port": Flags.integer({ summary: "Serve Prometheus metrics on this port at /metrics.", min: 0, max: 65535 }),
    autoscale: Flags.boolean({ summary: "Add and retire worker processes to keep the backlog within target.", default: false, helpGroup: "AUTOSCALE" }),
    min: Flags.integer({ summary: "Fewest worker processes with --autoscale.", default: 1, min: 1, helpGroup: "AUTOSCALE" }),
    max: Flags.integer({ summary: "Most worker processes with --autoscale.", default: 8, min: 1, helpGroup: "AUTOSCALE" }),
    "target-lag-seconds": Flags.integer({ summary: "Backlog ÷ commit rate to aim for.", default: 5, min: 1, helpGroup: "AUTOSCALE" }),
    cooldown: Flags.string({ summary: "Hold after each scaling decision.", default: "3s", helpGroup: "AUTOSCALE" }),
    "sample-every": Flags.string({ summary: "Sampling period of the lag and commit rate.", default: "1s", helpGroup: "AUTOSCALE" }),
    "crash-after-commit-rate": Flags.string({ summary: "Fault: probability of SIGKILLing this process between commit and ack.", default: "0", helpGroup: "FAULTS" }),
    "drop-ack-rate": Flags.string({ summary: "Fault: probability of committing and never acking.", default: "0", helpGroup: "FAULTS" }),
    unsafe: Flags.boolean({ summary: "Negative control: commit with a plain put (duplicates become visible).", default: false, helpGroup: "FAULTS" }),
    trace: Flags.boolean({
      summary: "Log to stderr, with a timestamp, every outcome decision (commit, ack, dead-letter, move, sweep) and every error.",
      description: "Chaos runs turn it on and keep the log as evidence: a lost order can be traced to the decision that acked or deleted it.",
      default: false,
    }),
  };

  async run(): Promise<WorkerStats & { elapsedMs: number; rate: number; workers: number; scaling: ScaleEvent[] }> {
    const { flags } = await this.parse(Work);
    const settings = settingsFrom(flags);
    if (flags.autoscale && flags.min > flags.max) throw new InputError(`--min ${flags.min} is above --max ${flags.max}`);
    const idleMs = flags["exit-when-idle"] ? parseDuration(flags["exit-when-idle"], "--exit-when-idle") : undefined;
    const nc = await this.connect(flags, { coalesceWrites: true });
    await ensureTopology(nc, settings);
    const jsm = await jetstreamManager(nc);
    const started = Date.now();
    const scaling: ScaleEvent[] = [];
    const pool = flags.processes > 1 || flags.autoscale ? this.supervised(flags, jsm, settings.names, scaling, credentialEnv(this.natsOptions(flags))) : this.inProcess(nc, jsm, flags, settings.names);

    let signals = 0;
    const onSignal = () => {
      if (++signals > 1) process.exit(130); // a second Ctrl-C means now
      pool.stop();
    };
    process.on("SIGTERM", onSignal);
    if (process.env.ORDERQ_SUPERVISED) {
      // Ctrl-C reaches the whole process group; the supervisor turns it into one SIGTERM per worker,
      // which drains. A second signal here would mean "exit now" and abandon the orders in flight.
      process.on("SIGINT", () => {});
      process.on("disconnect", () => pool.stop()); // the supervisor died: drain and exit
    } else {
      process.on("SIGINT", onSignal);
    }

    let metricsServer: Server | undefined;
    if (flags["metrics-port"] !== undefined) metricsServer = await serveMetrics(flags["metrics-port"], () => pool.metrics());
    if (idleMs !== undefined) {
      void waitForQuiet(jsm, settings.names, { quietForMs: idleMs, timeoutMs: Number.MAX_SAFE_INTEGER, shouldStop: () => signals > 0 }).then(
        (quiet) => quiet && pool.stop(),
      );
    }
    const status = new StatusLine();
    if (!this.jsonEnabled() && !process.env.ORDERQ_SUPERVISED) {
      status.start(() => {
        const s = pool.stats();
        return (
          `${c.green("committed")} ${s.committed}  ${rate(s.committed, Date.now() - started)}  workers ${pool.workers()}  ` +
          `retried ${s.retried}  suppressed ${s.suppressedDuplicates}  ${c.yellow("dead-lettered")} ${s.deadLettered}  in flight ${s.inFlight}`
        );
      });
    }
    await pool.done;
    status.stop();
    metricsServer?.close();
    await nc.drain();
    // A supervised worker has sent its last report: close the IPC channel, which would keep it alive.
    if (process.env.ORDERQ_SUPERVISED) process.disconnect?.();
    const stats = pool.stats();
    const elapsedMs = Date.now() - started;
    if (!process.env.ORDERQ_SUPERVISED) {
      this.log(
        keyValueTable([
          ["committed", stats.committed],
          ["suppressed duplicates", stats.suppressedDuplicates],
          ["failed attempts", stats.failedAttempts],
          ["retried", stats.retried],
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

  /** One worker in this process; under a supervisor it also reports its stats over IPC. */
  private inProcess(nc: NatsConnection, jsm: JetStreamManager, flags: WorkFlags, names: Names): Pool {
    const seed = flags.seed ?? randomSeed();
    const supervised = process.send !== undefined && process.env.ORDERQ_SUPERVISED === "1";
    let worker: Worker | undefined;
    const metrics = new WorkerMetrics(() => worker!.stats);
    const metricsServed = flags["metrics-port"] !== undefined || process.env.ORDERQ_METRICS === "1";
    worker = new Worker(
      nc,
      {
        names,
        workerId: flags["worker-id"],
        concurrency: flags.concurrency,
        backoff: {
          ...DEFAULT_BACKOFF,
          baseMs: parseDuration(flags["backoff-base"], "--backoff-base"),
          maxMs: parseDuration(flags["backoff-max"], "--backoff-max"),
        },
        confirmAck: flags["confirm-ack"],
        unsafe: flags.unsafe,
        mover: flags.mover,
        // The latency histogram costs a clock read and an observe per order: only when it is served.
        observeLatency: metricsServed ? (seconds) => metrics.latency.observe(seconds) : undefined,
        onError: (flags.trace ? (log: (m: string) => void) => log : onceInAWhile)((message) =>
          this.logToStderr(`${flags.trace ? `${new Date().toISOString()} ` : ""}orderq: worker ${flags["worker-id"]}: ${message} (the order is left for redelivery)`),
        ),
        trace: flags.trace ? (line) => process.stderr.write(`${new Date().toISOString()} ${flags["worker-id"]} ${line}\n`) : undefined,
        faults: {
          crashAfterCommitRate: probability(Number(flags["crash-after-commit-rate"]), "--crash-after-commit-rate"),
          dropAckRate: probability(Number(flags["drop-ack-rate"]), "--drop-ack-rate"),
        },
      },
      simulatedHandler(
        { handlerMs: flags["handler-ms"], failRate: probability(Number(flags["fail-rate"]), "--fail-rate"), poisonSwitch: flags["poison-switch"] },
        seededRng(seed),
      ),
      seededRng(seed + 1),
    );
    const w = worker;
    let done: Promise<unknown> = w.run();
    if (supervised) {
      const report = async () => {
        const snapshot = metricsServed ? await metrics.registry.getMetricsAsJSON() : undefined;
        // Once the supervisor is gone (a second Ctrl-C, a crash) there is nobody to tell, and a send
        // on the closed channel would throw from this timer and end the drain with orders in hand.
        if (!process.connected) return;
        process.send?.({ type: "stats", stats: w.stats, metrics: snapshot } satisfies ChildReport, undefined, undefined, () => {});
      };
      const timer = setInterval(() => void report(), 250);
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
      stats: () => w.stats,
      workers: () => 1,
      metrics: async () => ({
        contentType: metrics.registry.contentType,
        body: (await metrics.registry.metrics()) + (await lagRegistry.metrics()),
      }),
      stop: () => w.stop(),
      done,
    };
  }

  /** Worker processes under a supervisor, optionally autoscaled. */
  private supervised(flags: WorkFlags, jsm: JetStreamManager, names: Names, scaling: ScaleEvent[], credentials: NodeJS.ProcessEnv): Pool {
    const childArgs = withoutFlags(this.argv, [...SUPERVISOR_ONLY, ...CREDENTIAL_FLAGS]);
    const metricsOn = flags["metrics-port"] !== undefined;
    const supervisor = new Supervisor(
      {
        script: join(this.config.root, "bin", "run.js"),
        args: (id) => ["work", ...childArgs, "--worker-id", id],
        env: { ...credentials, ...(metricsOn ? { ORDERQ_METRICS: "1" } : {}) },
        restartDelayMs: 200,
      },
      {
        onExit: ({ id, code, signal, replaced }) => {
          if (replaced) this.logToStderr(`worker ${id} exited (${signal ?? code}); starting a replacement`);
        },
      },
    );
    const initial = flags.autoscale ? flags.min : flags.processes;
    for (let i = 0; i < initial; i++) supervisor.spawn();
    let autoscaler: Autoscaler | undefined;
    if (flags.autoscale) {
      autoscaler = new Autoscaler(
        supervisor,
        jsm,
        names,
        {
          min: flags.min,
          max: flags.max,
          targetLagSeconds: flags["target-lag-seconds"],
          cooldownMs: parseDuration(flags.cooldown, "--cooldown"),
          sampleMs: parseDuration(flags["sample-every"], "--sample-every"),
          maxStepUp: Math.max(1, Math.ceil(flags.max / 4)),
        },
        (event) => {
          scaling.push(event);
          if (!this.jsonEnabled()) this.logToStderr(`autoscale: ${event.from} → ${event.to} workers: ${event.reason}`);
        },
      );
      autoscaler.start();
    }
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const lagRegistry = pipelineRegistry(async () => {
      const b = await backlog(jsm, names);
      return { workers: supervisor.active, lag: b.pending + b.ackPending };
    });
    return {
      stats: () => supervisor.stats(),
      workers: () => supervisor.active,
      metrics: async () => {
        const merged = mergeMetrics(supervisor.metricsSnapshots());
        return { contentType: merged.contentType, body: (await merged.metrics()) + (await lagRegistry.metrics()) };
      },
      stop: () => {
        autoscaler?.stop();
        void supervisor.stop().then(resolveDone);
      },
      done,
    };
  }
}

type WorkFlags = Interfaces.InferredFlags<(typeof Work)["flags"]>;

/**
 * argv without the given flags and their values (`--flag value` or `--flag=value`): every one of them
 * but --json and --autoscale takes a value.
 */
function withoutFlags(argv: string[], names: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const name = arg.split("=")[0];
    if (!names.includes(name)) {
      out.push(arg);
      continue;
    }
    if (!arg.includes("=") && !["--json", "--autoscale"].includes(name)) i++;
  }
  return out;
}

/** Logs a message, but the same message at most once every 10 s: a broker outage is one line, not thousands. */
function onceInAWhile(log: (message: string) => void): (message: string) => void {
  const last = new Map<string, number>();
  return (message) => {
    const now = Date.now();
    if (now - (last.get(message) ?? 0) < 10_000) return;
    last.set(message, now);
    log(message);
  };
}
