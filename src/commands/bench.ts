import { join } from "node:path";
import { Flags } from "@oclif/core";
import { refuseWithoutInbox } from "../cli/inbox-flags.js";
import { OrderqCommand } from "../cli/base.js";
import * as defaults from "../core/base/defaults.js";
import { c, StatusLine, table } from "../cli/render.js";
import { MAX_ORDER_BYTES } from "../core/pipeline/order.js";
import { runBench, type BenchResult } from "../core/bench/runner.js";
import { runSoak, type SoakResult } from "../core/bench/soak.js";
import { runDlqScale, type DlqScaleResult } from "../core/bench/dlq-scale.js";
import { formatDuration, parseDuration } from "../core/base/duration.js";
import { INBOX_PHASES, INTAKE_PHASES, PHASES, phase } from "../core/bench/summary.js";
import type { PhaseName } from "../core/bench/types.js";

export default class Bench extends OrderqCommand {
  static override summary = "Measure orderq against the raw JetStream baseline, verifying every order was committed exactly once.";
  static override description =
    "Each run measures, on fresh streams: (a) the baseline — raw JetStream publish with --in-flight PubAcks outstanding, " +
    "then a minimal consume + plain ack loop (at-least-once, no ledger), and the exactly-once floor: the same loop with " +
    "a ledger write (create-if-absent) before each ack and nothing else; (b) orderq — `produce` throughput and the full " +
    "exactly-once `work` pipeline in real worker processes; (c) end-to-end latency publish → commit at --rate. " +
    "After each phase every order is checked to have been committed exactly once; a lost or doubled order fails the " +
    "phase and the command exits 1. The project's performance targets are reported, not enforced.\n\n" +
    "It starts its own nats-server in a temp dir unless --server is given on the command line (NATS_URL alone is " +
    "ignored: a benchmark loads the server and must never pick the machine's shared one by accident).\n\n" +
    "--inbox adds two phases on a PostgreSQL the bench starts in a temp dir (never the machine's own; needs Debian's " +
    "postgresql package or ORDERQ_PG_BIN) with examples/postgres-orders/schema.sql loaded: the inbox floor — consume, " +
    "one INSERT … ON CONFLICT DO NOTHING of the inbox row in its own transaction through --inbox-pool connections, " +
    "ack, nothing else — and orderq's inbox mode with the example handler in real worker processes " +
    "(--inbox-pool, --inbox-batch). Each is verified from the tables: one inbox row per order, and for the handler " +
    "one orders row per order, its stock movements and the stock down by exactly its items.\n\n" +
    "--intake adds two phases through an HTTP gateway: `orderq intake` started as a child process on a free loopback " +
    "port, fed by `produce --via`'s own sender from this process — --orders orders flat out with --in-flight requests " +
    "outstanding (compared with the same run's produce straight to JetStream), then --rate requests/s for " +
    "--latency-seconds, timed from the send call to the 202. Each is verified: every order answered 202 and stored once.\n\n" +
    "--soak ROUNDS runs, instead, rounds of `orderq produce` (--orders) then `orderq work` against one topology whose " +
    "ledger has a short horizon (--soak-horizon, 10s; duplicate window half of it, at most 2m), and prints per round the work rate, " +
    "the nats-server's resident memory and its store size: with the horizon in force they should level off. A round lasts at " +
    "least the horizon (the soak waits out the rest), so each round ends holding its own orders and none of the round before.\n\n" +
    "--dlq ENTRIES fills a fresh DLQ with that many entries and times `dlq show <seq>`, `dlq list --limit 20` and " +
    "`status` (in this process, and as commands), beside `dlq show <order id>`, which reads every entry.";
  static override examples = [
    "<%= config.bin %> bench",
    "<%= config.bin %> bench --orders 50000 --runs 3",
    "<%= config.bin %> bench --workers 2 --concurrency 128 --payload-bytes 1024",
    "<%= config.bin %> bench --orders 2000 --runs 1 --json | jq .summary",
    "<%= config.bin %> bench --inbox --orders 20000 --runs 3",
    "<%= config.bin %> bench --inbox --inbox-batch 8",
    "<%= config.bin %> bench --intake --orders 20000 --rate 2000",
    "<%= config.bin %> bench --server nats://staging:4222 --runs 1",
    "<%= config.bin %> bench --soak 5 --json",
    "<%= config.bin %> bench --dlq 100000",
  ];

  static override flags = {
    orders: Flags.integer({ char: "n", summary: "Orders per throughput phase.", default: 50_000, min: 1 }),
    workers: Flags.integer({ char: "w", summary: "`orderq work` processes.", default: 1, min: 1 }),
    concurrency: Flags.integer({
      char: "c",
      summary: "Orders in flight per worker process (also the baseline consumer's pull batch).",
      default: defaults.CONCURRENCY,
      min: 1,
    }),
    "payload-bytes": Flags.integer({
      summary: "Size of each order's JSON (padded with zero-priced items).",
      default: 300,
      min: 0,
      max: MAX_ORDER_BYTES - 100,
    }),
    "in-flight": Flags.integer({
      summary: "PubAcks outstanding, for the baseline publish and for produce.",
      default: defaults.PUBLISH_IN_FLIGHT,
      min: 1,
    }),
    rate: Flags.integer({ char: "r", summary: "Orders per second in the latency phase.", default: 2000, min: 1 }),
    "latency-seconds": Flags.integer({ summary: "Length of the latency phase.", default: 5, min: 1 }),
    runs: Flags.integer({ summary: "Runs; figures are their medians.", default: 3, min: 1 }),
    soak: Flags.integer({
      summary: "Run ROUNDS soak rounds (produce + work on one topology with a short horizon) instead of the benchmark.",
      min: 2,
      exclusive: ["inbox", "intake", "runs"],
      helpGroup: "SOAK",
    }),
    dlq: Flags.integer({
      summary: "Fill a DLQ with ENTRIES entries and time the DLQ tools and status against it, instead of the benchmark.",
      min: 1,
      exclusive: ["inbox", "intake", "runs", "soak"],
      helpGroup: "SOAK",
    }),
    "soak-horizon": Flags.string({
      summary: "The ledger's horizon during the soak, and the shortest a round lasts; the duplicate window is half of it (at most 2m).",
      default: "10s",
      helpGroup: "SOAK",
    }),
    inbox: Flags.boolean({
      summary: "Also measure the PostgreSQL inbox: its floor, and orderq's inbox mode with the example handler (a PostgreSQL of its own).",
      default: false,
      helpGroup: "INBOX",
    }),
    intake: Flags.boolean({
      summary: "Also send orders through an HTTP gateway (`orderq intake`, a process the bench starts): flat out, and POST → 202 latency at --rate.",
      default: false,
    }),
    "inbox-pool": Flags.integer({
      summary: "Connections of the inbox floor's pool and of each worker process (`work --inbox-pool`).",
      default: defaults.INBOX.poolSize,
      min: 1,
      helpGroup: "INBOX",
    }),
    "inbox-batch": Flags.integer({
      summary: "Most orders in one transaction of the workers (`work --inbox-batch`).",
      default: defaults.INBOX.maxBatch,
      min: 1,
      max: defaults.INBOX.maxBatchCeiling,
      helpGroup: "INBOX",
    }),
  };

  async run(): Promise<BenchResult | SoakResult | DlqScaleResult> {
    const { flags, raw } = await this.parse(Bench);
    refuseWithoutInbox(raw, flags.inbox, ["inbox-pool", "inbox-batch"], "--inbox (it tunes the bench's inbox runs)");
    const horizonMs = parseDuration(flags["soak-horizon"], "--soak-horizon");
    const config = {
      orders: flags.orders,
      workers: flags.workers,
      concurrency: flags.concurrency,
      payloadBytes: flags["payload-bytes"],
      inFlight: flags["in-flight"],
      rate: flags.rate,
      latencySeconds: flags["latency-seconds"],
      runs: flags.runs,
      ...(flags.inbox ? { inbox: { poolSize: flags["inbox-pool"], maxBatch: flags["inbox-batch"] } } : {}),
      ...(flags.intake ? { intake: true } : {}),
    };
    const example = join(this.config.root, "examples", "postgres-orders");
    // The default handlers would exit without 'exit' hooks: those stop our workers and server.
    process.once("SIGINT", () => process.exit(130));
    process.once("SIGTERM", () => process.exit(143));
    const status = new StatusLine();
    let progress = "starting";
    const started = Date.now();
    status.start(() => `${progress}  ${Math.round((Date.now() - started) / 1000)}s`, 250);
    const setup = {
      server: serverOnCommandLine(this.argv) ? this.natsOptions(flags) : undefined,
      workerScript: join(this.config.root, "bin", "run.js"),
    };
    if (flags.dlq !== undefined) {
      let scale: DlqScaleResult;
      try {
        scale = await runDlqScale(flags.dlq, setup, (text) => (progress = text));
      } finally {
        status.stop();
      }
      this.log(renderDlqScale(scale));
      return scale;
    }
    if (flags.soak !== undefined) {
      let soak: SoakResult;
      try {
        // Half the horizon, at most the usual window: a long horizon (a contrast run) keeps the usual dedupe cost.
        const soakConfig = { ...config, rounds: flags.soak, horizonMs, dupWindowMs: Math.min(Math.floor(horizonMs / 2), defaults.DUP_WINDOW_MS) };
        soak = await runSoak(soakConfig, setup, (text) => (progress = text));
      } finally {
        status.stop();
      }
      this.log(renderSoak(soak));
      if (!soak.verified) process.exitCode = 1;
      return soak;
    }
    let result: BenchResult;
    try {
      result = await runBench(
        config,
        {
          ...setup,
          inboxFiles: { handler: join(example, "handler.mjs"), schema: join(example, "schema.sql") },
        },
        (text) => (progress = text),
      );
    } finally {
      status.stop();
    }
    this.log(render(result));
    if (!result.verified) process.exitCode = 1;
    return result;
  }
}

/** Only --server / -s on the command line selects a server; NATS_URL and the default never do. */
function serverOnCommandLine(argv: string[]): boolean {
  return argv.some((arg) => arg === "--server" || arg.startsWith("--server=") || arg.startsWith("-s"));
}

const LABELS: Record<PhaseName, (r: BenchResult) => string> = {
  publish: (r) => `JetStream publish, ${r.config.inFlight} in flight (baseline)`,
  consume: () => "consume + plain ack, no ledger (baseline)",
  floor: () => "consume + ledger write + ack, nothing else (floor)",
  produce: () => "orderq produce",
  work: (r) => `orderq work, exactly-once (${r.config.workers} × ${r.config.concurrency})`,
  latency: (r) => `end-to-end at ${r.config.rate}/s: p50 / p90 / p99 / p99.9`,
  "inbox-floor": (r) => `consume + INSERT … ON CONFLICT + ack, ${r.config.inbox?.poolSize} connections (inbox floor)`,
  "inbox-work": (r) =>
    `orderq work, inbox + example handler (${r.config.workers} × ${r.config.concurrency}, pool ${r.config.inbox?.poolSize}, batch ${r.config.inbox?.maxBatch})`,
  intake: (r) => `produce --via an intake gateway (HTTP), ${r.config.inFlight} in flight`,
  "intake-latency": (r) => `POST → 202 at ${r.config.rate}/s: p50 / p90 / p99 / p99.9`,
};

function render(r: BenchResult): string {
  const s = r.summary;
  const n = (x: number) => x.toLocaleString("en-US");
  const ms = (x: number) => x.toFixed(x < 10 ? 2 : 1);
  const phasesOf = (name: PhaseName) => r.runs.map((run) => phase(run, name));
  const verdict = (name: PhaseName) => {
    const failed = phasesOf(name).flatMap((p, i) => (p.verification.ok ? [] : [`run ${i + 1}`]));
    // A worker that died inside a measured window makes its figure say less: say so beside it.
    const restarts = phasesOf(name).reduce((sum, p) => sum + (p.workerRestarts ?? 0), 0);
    const note = restarts ? c.yellow(` (${restarts} worker ${restarts === 1 ? "restart" : "restarts"})`) : "";
    return (failed.length ? c.red(`FAILED (${failed.join(", ")})`) : c.green("ok")) + note;
  };
  const vs: Partial<Record<PhaseName, string>> = {
    floor: `${s.floorRatio} × consume`,
    produce: `${s.produceRatio} × publish`,
    work: `${s.workRatio} × consume, ${s.workToFloor} × floor`,
    ...(s.inbox ? { "inbox-work": `${s.inbox.workToFloor} × inbox floor` } : {}),
  };
  const l = s.latency;
  const inbox = s.inbox;
  const rows: (string | number)[][] = PHASES.map((name) => {
    const cpu = s.cpu[name];
    const median = name === "latency" ? `${ms(l.p50Ms)} / ${ms(l.p90Ms)} / ${ms(l.p99Ms)} / ${ms(l.p999Ms)} ms` : `${n(s.rates[name])}/s`;
    const each = phasesOf(name)
      .map((p) => (name === "latency" ? `p99 ${ms(p.latency!.p99Ms)}` : n(p.rate)))
      .join("  ");
    return [LABELS[name](r), median, each, vs[name] ?? "", cpu.clientSeconds, cpu.serverSeconds ?? "n/a", ...(inbox ? [""] : []), verdict(name)];
  });
  if (inbox) {
    for (const name of INBOX_PHASES) {
      const cpu = inbox.cpu[name];
      const each = phasesOf(name)
        .map((p) => n(p.rate))
        .join("  ");
      rows.push([
        LABELS[name](r),
        `${n(inbox.rates[name])}/s`,
        each,
        vs[name] ?? "",
        cpu.clientSeconds,
        cpu.serverSeconds ?? "n/a",
        cpu.databaseSeconds ?? "n/a",
        verdict(name),
      ]);
    }
  }
  const intake = s.intake;
  if (intake) {
    const il = intake.latency;
    for (const name of INTAKE_PHASES) {
      const cpu = intake.cpu[name];
      const latency = name === "intake-latency";
      const median = latency ? `${ms(il.p50Ms)} / ${ms(il.p90Ms)} / ${ms(il.p99Ms)} / ${ms(il.p999Ms)} ms` : `${n(intake.rates.intake)}/s`;
      // The fixed-rate phase's achieved rate beside its p99: a gateway that fell behind sent fewer.
      const each = phasesOf(name)
        .map((p) => (latency ? `p99 ${ms(p.latency!.p99Ms)} (${n(p.rate)}/s)` : n(p.rate)))
        .join("  ");
      const versus = latency ? "" : `${intake.produceRatio} × produce`;
      const client = cpu.gatewaySeconds === undefined ? cpu.clientSeconds : `${cpu.clientSeconds} (gateway ${cpu.gatewaySeconds})`;
      rows.push([LABELS[name](r), median, each, versus, client, cpu.serverSeconds ?? "n/a", ...(inbox ? [""] : []), verdict(name)]);
    }
  }
  const rss = r.runs.map((run) => Math.max(0, ...run.phases.flatMap((p) => p.workerPeakRssMb ?? []))).join("  ");
  rows.push(["worker peak RSS (largest process)", `${s.workerPeakRssMb} MB`, rss, "", "", "", ...(inbox ? [""] : []), ""]);
  const env = r.environment;
  const us = (x: number | null) => (x === null ? "n/a" : `${x}`);
  const perOrder = (name: "inbox-floor" | "inbox-work") => {
    const u = inbox!.cpuPerOrderUs[name];
    return `${name} ${us(u.client)} + ${us(u.server)} + ${us(u.database)} µs`;
  };
  const lines = [
    c.bold(`orderq bench: medians of ${r.config.runs} run(s), ${n(r.config.orders)} orders of ${r.config.payloadBytes} bytes`),
    table(
      ["figure", "median", "each run", "vs baseline", "CPU s client", "CPU s server", ...(inbox ? ["CPU s PostgreSQL"] : []), "exactly-once"],
      rows,
    ),
    table(
      ["performance target", "measured", "met"],
      r.targets.map((t) => [t.target, t.measured, t.met ? c.green("✓") : c.red("✗")]),
    ),
    c.dim(
      [
        "windows: publish/produce first publish → last PubAck; consume/floor start → last ack processed; work every worker's",
        "first commit → last commit (ledger server timestamps, start-up excluded); latency = ledger write server time − publish call.",
        "CPU client: this process (publish, consume, floor, produce) or the worker processes (work, latency), over the same windows" +
          (intake
            ? "; intake: this process (the load generator: produce --via's Producer, HttpSender on undici) and the gateway process, the gateway's own share in brackets. intake latency = 202 read − send called."
            : "."),
        `nats-server ${env.server.version} at ${env.server.url} (${env.server.ours ? "started for this run" : "given by --server"}); ` +
          `node ${env.node}, ${env.cpus} CPUs, load average ${env.loadAverage.before.toFixed(2)} before / ${env.loadAverage.after.toFixed(2)} after (this benchmark included).`,
        ...(inbox && env.database
          ? [
              `inbox phases: PostgreSQL ${env.database.version} started for this run (synchronous_commit ${env.database.synchronousCommit}); ` +
                `inbox-work timed by PostgreSQL commit timestamps, start-up excluded; CPU per order, client + server + PostgreSQL: ` +
                `${perOrder("inbox-floor")}, ${perOrder("inbox-work")}.`,
            ]
          : []),
        "Client, workers and server share this machine's CPUs: figures from a busy machine are noisy.",
      ].join("\n"),
    ),
  ];
  for (const run of r.runs) {
    for (const p of run.phases) if (!p.verification.ok) lines.push(c.red(`FAILED run ${run.run} ${p.phase}: ${p.verification.detail}`));
  }
  return lines.join("\n");
}

function renderSoak(r: SoakResult): string {
  const n = (x: number) => x.toLocaleString("en-US");
  const rows = r.rounds.map((x) => [
    x.round,
    n(x.totalOrders),
    `${n(x.workRate)}/s`,
    `${n(x.produceRate)}/s`,
    x.serverRssMb === null ? "n/a" : `${x.serverRssMb} MB`,
    `${x.storeMb} MB`,
    `${n(x.ledgerKeys)} (${n(x.ledgerWrites)})`,
    x.loadAverage.toFixed(2),
    x.verification.ok ? c.green("ok") : c.red(`FAILED: ${x.verification.detail}`),
  ]);
  const env = r.environment;
  return [
    c.bold(
      `orderq bench --soak: ${r.rounds.length} rounds of ${n(r.config.orders)} orders, horizon ${formatDuration(r.config.horizonMs)}, ` +
        `duplicate window ${formatDuration(r.config.dupWindowMs)}`,
    ),
    table(["round", "orders so far", "work", "produce", "server RSS", "store", "ledger keys (writes)", "load", "exactly-once"], rows),
    table(
      ["soak target", "measured", "met"],
      r.targets.map((t) => [t.target, t.measured, t.met ? c.green("✓") : c.red("✗")]),
    ),
    c.dim(
      `work: every worker's first commit → last commit of the round (ledger server timestamps). server RSS: VmRSS after the round; ` +
        `store: the account's file storage (JetStream account info). nats-server ${env.server.version} ` +
        `(${env.server.ours ? "started for this run" : "given by --server"}); load average ${env.loadAverage.before.toFixed(2)} before / ${env.loadAverage.after.toFixed(2)} after.`,
    ),
  ].join("\n");
}

function renderDlqScale(r: DlqScaleResult): string {
  const ms = (x: number | null) => (x === null ? "n/a" : `${x.toLocaleString("en-US")} ms`);
  return [
    c.bold(
      `orderq bench --dlq: ${r.entries.toLocaleString("en-US")} DLQ entries (${Math.round(r.dlqBytes / 1048576)} MB), filled in ${r.fillSeconds} s`,
    ),
    table(
      ["what", "core call (median of 5)", "as a command (new process)"],
      r.timings.map((t) => [t.what, ms(t.inProcessMs), ms(t.commandMs)]),
    ),
    c.dim(
      `a command's time includes Node's start-up and connecting. nats-server ${r.environment.server.version}; ` +
        `load average ${r.environment.loadAverage.before.toFixed(2)} before / ${r.environment.loadAverage.after.toFixed(2)} after.`,
    ),
  ].join("\n");
}
