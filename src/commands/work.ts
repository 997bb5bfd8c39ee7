import { Flags } from "@oclif/core";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { OrderqCommand, nameFlags, probability, settingsFrom, topologyFlags } from "../cli/base.js";
import { c, keyValueTable, rate, StatusLine } from "../cli/render.js";
import { DEFAULT_BACKOFF } from "../core/backoff.js";
import { parseDuration } from "../core/duration.js";
import { simulatedHandler } from "../core/handler.js";
import { waitForQuiet } from "../core/quiescence.js";
import { randomSeed, seededRng } from "../core/random.js";
import { Supervisor, type ChildReport } from "../core/supervisor.js";
import { ensureTopology } from "../core/topology.js";
import { Worker, type WorkerStats } from "../core/worker.js";

export default class Work extends OrderqCommand {
  static override summary = "Process orders exactly once: pull, validate, handle, commit to the ledger, ack.";
  static override description =
    "Runs until SIGINT/SIGTERM (or --exit-when-idle), then stops pulling, finishes the orders in flight and exits 0. " +
    "Failed attempts are retried with exponential backoff; after --max-deliver attempts, or on a non-retryable " +
    "error or an invalid payload, the order is copied to the dead-letter stream. Each process also runs a DLQ mover.";
  static override examples = [
    "<%= config.bin %> work --concurrency 50",
    "<%= config.bin %> work --processes 3 --handler-ms 20 --fail-rate 0.05",
    "<%= config.bin %> work --exit-when-idle 2s --json",
  ];

  static override flags = {
    ...nameFlags,
    ...topologyFlags,
    concurrency: Flags.integer({ char: "c", summary: "Orders in flight per process.", default: 64, min: 1 }),
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
    "crash-after-commit-rate": Flags.string({ summary: "Fault: probability of SIGKILLing this process between commit and ack.", default: "0", helpGroup: "FAULTS" }),
    "drop-ack-rate": Flags.string({ summary: "Fault: probability of committing and never acking.", default: "0", helpGroup: "FAULTS" }),
    unsafe: Flags.boolean({ summary: "Negative control: commit with a plain put (duplicates become visible).", default: false, helpGroup: "FAULTS" }),
  };

  async run(): Promise<WorkerStats & { elapsedMs: number; rate: number }> {
    const { flags } = await this.parse(Work);
    const settings = settingsFrom(flags);
    const failRate = probability(Number(flags["fail-rate"]), "--fail-rate");
    const crashRate = probability(Number(flags["crash-after-commit-rate"]), "--crash-after-commit-rate");
    const dropRate = probability(Number(flags["drop-ack-rate"]), "--drop-ack-rate");
    const backoff = {
      ...DEFAULT_BACKOFF,
      baseMs: parseDuration(flags["backoff-base"], "--backoff-base"),
      maxMs: parseDuration(flags["backoff-max"], "--backoff-max"),
    };
    const idleMs = flags["exit-when-idle"] ? parseDuration(flags["exit-when-idle"], "--exit-when-idle") : undefined;
    const nc = await this.connect(flags);
    await ensureTopology(nc, settings);
    const started = Date.now();
    const status = new StatusLine();
    const interactive = status.enabled && !this.jsonEnabled();
    let stats: WorkerStats;
    let stop: () => void;
    let done: Promise<unknown>;

    if (flags.processes > 1) {
      const childArgs = this.argv.filter((a, i, all) => !isFlagOrValue(all, i, ["--processes", "-p", "--exit-when-idle", "--json", "--worker-id"]));
      const supervisor = new Supervisor(
        { script: join(this.config.root, "bin", "run.js"), args: (id) => ["work", ...childArgs, "--worker-id", id], restartDelayMs: 200 },
        {
          onExit: (id, code, signal, replaced) => {
            if (replaced) this.logToStderr(`worker ${id} exited (${signal ?? code}); starting a replacement`);
          },
        },
      );
      for (let i = 0; i < flags.processes; i++) supervisor.spawn();
      stop = () => void supervisor.stop().then(() => resolveDone());
      let resolveDone!: () => void;
      done = new Promise<void>((r) => (resolveDone = r));
      stats = supervisor.stats();
      const refresh = setInterval(() => (stats = supervisor.stats()), 250);
      done = done.then(() => {
        clearInterval(refresh);
        stats = supervisor.stats();
      });
    } else {
      const seed = flags.seed ?? randomSeed();
      const worker = new Worker(
        nc,
        {
          names: settings.names,
          workerId: flags["worker-id"],
          concurrency: flags.concurrency,
          backoff,
          confirmAck: flags["confirm-ack"],
          unsafe: flags.unsafe,
          mover: flags.mover,
          faults: { crashAfterCommitRate: crashRate, dropAckRate: dropRate },
        },
        simulatedHandler({ handlerMs: flags["handler-ms"], failRate, poisonSwitch: flags["poison-switch"] }, seededRng(seed)),
        seededRng(seed + 1),
      );
      stats = worker.stats;
      stop = () => worker.stop();
      done = worker.run();
      if (process.send && process.env.ORDERQ_SUPERVISED) {
        const report = setInterval(() => process.send?.({ type: "stats", stats: worker.stats } satisfies ChildReport), 250);
        done = done.finally(() => {
          clearInterval(report);
          process.send?.({ type: "stats", stats: worker.stats } satisfies ChildReport);
        });
      }
    }

    let signals = 0;
    const onSignal = () => {
      if (++signals > 1) process.exit(130); // a second Ctrl-C means now
      stop();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);

    if (idleMs !== undefined) {
      const jsm = await jetstreamManager(nc);
      void waitForQuiet(jsm, settings.names, { quietForMs: idleMs, timeoutMs: Number.MAX_SAFE_INTEGER, shouldStop: () => signals > 0 }).then(
        (quiet) => quiet && stop(),
      );
    }
    if (interactive) {
      status.start(
        () =>
          `${c.green("committed")} ${stats.committed}  ${rate(stats.committed, Date.now() - started)}  ` +
          `retried ${stats.retried}  suppressed ${stats.suppressedDuplicates}  ${c.yellow("dead-lettered")} ${stats.deadLettered}  in flight ${stats.inFlight}`,
      );
    }
    await done;
    status.stop();
    await nc.drain();
    const elapsedMs = Date.now() - started;
    const result = { ...stats, elapsedMs, rate: Math.round((stats.committed * 1000) / Math.max(1, elapsedMs)) };
    if (!process.env.ORDERQ_SUPERVISED) {
      this.log(
        keyValueTable([
          ["committed", result.committed],
          ["suppressed duplicates", result.suppressedDuplicates],
          ["failed attempts", result.failedAttempts],
          ["retried", result.retried],
          ["dead-lettered", result.deadLettered],
          ["invalid payloads", result.invalid],
          ["errors", result.errors],
          ["elapsed", `${(elapsedMs / 1000).toFixed(1)} s`],
          ["rate", rate(result.committed, elapsedMs)],
        ]),
      );
    }
    return result;
  }
}

/** True when argv[i] is one of `names` (or its value, in `--flag value` form). */
function isFlagOrValue(argv: string[], i: number, names: string[]): boolean {
  const arg = argv[i];
  if (names.some((n) => arg === n || arg.startsWith(`${n}=`))) return true;
  const prev = argv[i - 1];
  return prev !== undefined && names.includes(prev) && prev !== "--json" && !arg.startsWith("-");
}
