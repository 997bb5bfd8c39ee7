/** Medians over runs, orderq's ratios to the baseline, and the project's performance targets as figures to report. */
import type { CpuUse } from "./meter.js";
import type { CorePhaseName, InboxPhaseName, IntakePhaseName, LatencySummary, PhaseName, PhaseResult, RunResult } from "./types.js";

export interface BenchSummary {
  /** msgs/s, median over runs. */
  rates: Record<CorePhaseName, number>;
  /** produce ÷ pipelined publish. */
  produceRatio: number;
  /** exactly-once work ÷ consume + plain ack. */
  workRatio: number;
  /** The exactly-once floor (consume + ledger write + ack) ÷ consume + plain ack: the most workRatio could be. */
  floorRatio: number;
  /** exactly-once work ÷ the floor: how much of the floor's rate orderq's worker keeps. */
  workToFloor: number;
  latency: Omit<LatencySummary, "samples">;
  /** Largest worker process's peak RSS (work and latency phases), MB. */
  workerPeakRssMb: number;
  cpu: Record<CorePhaseName, CpuUse>;
  /** `--inbox` only. */
  inbox?: InboxSummary;
  /** `--intake` only. */
  intake?: IntakeSummary;
}

/** The gateway phases' figures: medians over runs (the ratio: of each run, then the median). */
export interface IntakeSummary {
  /** requests/s answered 202: flat out (intake), and the rate achieved in the fixed-rate phase. */
  rates: Record<IntakePhaseName, number>;
  /** intake ÷ produce, straight to JetStream in the same run. */
  produceRatio: number;
  /** POST → 202 at the fixed rate. */
  latency: Omit<LatencySummary, "samples">;
  /** This process (the load generator) and the gateway together. */
  cpu: Record<IntakePhaseName, CpuUse>;
}

/** The inbox phases' figures: medians over runs, and the ratio of each run then its median. */
export interface InboxSummary {
  /** orders/s: the inbox floor, and orderq's inbox mode with the example handler. */
  rates: Record<InboxPhaseName, number>;
  /** inbox work ÷ inbox floor. */
  workToFloor: number;
  cpu: Record<InboxPhaseName, CpuUse>;
  /** CPU µs per order: the client (this process, or the workers), the nats-server, PostgreSQL. */
  cpuPerOrderUs: Record<InboxPhaseName, { client: number; server: number | null; database: number | null }>;
}

export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean;
}

/** The phases of every run, in their order. */
export const PHASES: CorePhaseName[] = ["publish", "consume", "floor", "produce", "work", "latency"];
/** The phases `--inbox` adds after them. */
export const INBOX_PHASES: InboxPhaseName[] = ["inbox-floor", "inbox-work"];
/** The phases `--intake` adds last. */
export const INTAKE_PHASES: IntakePhaseName[] = ["intake", "intake-latency"];

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function phase(run: RunResult, name: PhaseName): PhaseResult {
  const found = run.phases.find((p) => p.phase === name);
  if (!found) throw new Error(`run ${run.run} has no ${name} phase`);
  return found;
}

export function summarize(runs: RunResult[]): BenchSummary {
  const of = (name: PhaseName, pick: (p: PhaseResult) => number) => median(runs.map((r) => pick(phase(r, name))));
  const rates = Object.fromEntries(PHASES.map((n) => [n, Math.round(of(n, (p) => p.rate))])) as Record<CorePhaseName, number>;
  const cpu = Object.fromEntries(PHASES.map((n) => [n, medianCpu(runs, n)])) as Record<CorePhaseName, CpuUse>;
  return {
    rates,
    // Ratios of each run, then their median: a noisy moment hits both figures of the same run.
    produceRatio: round2(median(runs.map((r) => phase(r, "produce").rate / phase(r, "publish").rate))),
    workRatio: round2(median(runs.map((r) => phase(r, "work").rate / phase(r, "consume").rate))),
    floorRatio: round2(median(runs.map((r) => phase(r, "floor").rate / phase(r, "consume").rate))),
    workToFloor: round2(median(runs.map((r) => phase(r, "work").rate / phase(r, "floor").rate))),
    latency: medianLatency(runs, "latency"),
    workerPeakRssMb: median(runs.map((r) => Math.max(0, ...r.phases.flatMap((p) => p.workerPeakRssMb ?? [])))),
    cpu,
    ...(runs.every((r) => INBOX_PHASES.every((n) => r.phases.some((p) => p.phase === n))) ? { inbox: summarizeInbox(runs) } : {}),
    ...(runs.every((r) => INTAKE_PHASES.every((n) => r.phases.some((p) => p.phase === n))) ? { intake: summarizeIntake(runs) } : {}),
  };
}

/** Each percentile's median over the runs' latency summaries of one phase. */
function medianLatency(runs: RunResult[], name: "latency" | "intake-latency"): Omit<LatencySummary, "samples"> {
  const lat = (pick: (l: LatencySummary) => number) => median(runs.map((r) => pick(phase(r, name).latency!)));
  return {
    p50Ms: lat((l) => l.p50Ms),
    p90Ms: lat((l) => l.p90Ms),
    p99Ms: lat((l) => l.p99Ms),
    p999Ms: lat((l) => l.p999Ms),
    maxMs: lat((l) => l.maxMs),
    meanMs: lat((l) => l.meanMs),
  };
}

export function summarizeIntake(runs: RunResult[]): IntakeSummary {
  const rate = (n: IntakePhaseName) => Math.round(median(runs.map((r) => phase(r, n).rate)));
  return {
    rates: { intake: rate("intake"), "intake-latency": rate("intake-latency") },
    produceRatio: round2(median(runs.map((r) => phase(r, "intake").rate / phase(r, "produce").rate))),
    latency: medianLatency(runs, "intake-latency"),
    cpu: { intake: medianCpu(runs, "intake"), "intake-latency": medianCpu(runs, "intake-latency") },
  };
}

function summarizeInbox(runs: RunResult[]): InboxSummary {
  const pair = <T>(f: (n: InboxPhaseName) => T) => ({ "inbox-floor": f("inbox-floor"), "inbox-work": f("inbox-work") });
  const perOrder = (n: InboxPhaseName, pick: (cpu: CpuUse) => number | null | undefined): number | null => {
    const values = runs.map((r) => {
      const p = phase(r, n);
      const seconds = pick(p.cpu);
      return seconds === null || seconds === undefined || p.count === 0 ? null : (seconds * 1e6) / p.count;
    });
    return values.includes(null) ? null : Math.round(median(values as number[]));
  };
  return {
    rates: pair((n) => Math.round(median(runs.map((r) => phase(r, n).rate)))),
    workToFloor: round2(median(runs.map((r) => phase(r, "inbox-work").rate / phase(r, "inbox-floor").rate))),
    cpu: pair((n) => medianCpu(runs, n)),
    cpuPerOrderUs: pair((n) => ({
      client: perOrder(n, (c) => c.clientSeconds) ?? 0,
      server: perOrder(n, (c) => c.serverSeconds),
      database: perOrder(n, (c) => c.databaseSeconds),
    })),
  };
}

/** Median CPU seconds of a phase over the runs; null where a run could not measure it. */
function medianCpu(runs: RunResult[], name: PhaseName): CpuUse {
  const medianOrNull = (values: Array<number | null | undefined>) =>
    // The median of an even number of runs is a mean: rounded again, or 2.4349999999999996 is printed.
    values.some((v) => v === null || v === undefined) ? null : round2(median(values as number[]));
  const cpus = runs.map((r) => phase(r, name).cpu);
  const use: CpuUse = {
    clientSeconds: medianOrNull(cpus.map((c) => c.clientSeconds)) ?? 0,
    serverSeconds: medianOrNull(cpus.map((c) => c.serverSeconds)),
  };
  if (cpus.some((c) => c.databaseSeconds !== undefined)) use.databaseSeconds = medianOrNull(cpus.map((c) => c.databaseSeconds)) ?? undefined;
  if (cpus.some((c) => c.gatewaySeconds !== undefined)) use.gatewaySeconds = medianOrNull(cpus.map((c) => c.gatewaySeconds)) ?? undefined;
  return use;
}

/** Issue 7's targets, then issues 13's, 15's and 12's. They are figures to report, not a verdict of the command. */
export function checkTargets(s: BenchSummary, config: { rate: number; concurrency: number }): TargetCheck[] {
  return [
    { target: "exactly-once work ≥ 10,000 orders/s", measured: `${s.rates.work.toLocaleString("en-US")}/s`, met: s.rates.work >= 10_000 },
    { target: "work ≥ 0.55 × consume + plain ack", measured: `${s.workRatio} ×`, met: s.workRatio >= 0.55 },
    { target: "produce ≥ 0.85 × pipelined publish", measured: `${s.produceRatio} ×`, met: s.produceRatio >= 0.85 },
    {
      target: `end-to-end p99 ≤ 10 ms at 2,000 orders/s${config.rate === 2000 ? "" : ` (measured at ${config.rate}/s)`}`,
      measured: ms(s.latency.p99Ms),
      met: s.latency.p99Ms <= 10,
    },
    {
      target: `worker peak memory ≤ 150 MB (at --concurrency ${config.concurrency})`,
      measured: `${s.workerPeakRssMb} MB`,
      met: s.workerPeakRssMb <= 150,
    },
    ...workerTargets(s, config.rate),
    ...(s.inbox ? inboxTargets(s.inbox) : []),
    ...(s.intake ? intakeTargets(s.intake, config.rate) : []),
  ];
}

/** A latency for a target's line: two decimals below 10 ms, one above. */
function ms(v: number): string {
  return `${v.toFixed(v < 10 ? 2 : 1)} ms`;
}

/** Issue 13's targets for the worker: closer to its floor, and a shorter tail at 2,000 orders/s. */
function workerTargets(s: BenchSummary, rate: number): TargetCheck[] {
  const at = rate === 2000 ? "" : ` (measured at ${rate}/s)`;
  return [
    { target: "work ≥ 0.85 × the exactly-once floor", measured: `${s.workToFloor} ×`, met: s.workToFloor >= 0.85 },
    { target: `end-to-end p99 ≤ 5 ms at 2,000 orders/s${at}`, measured: ms(s.latency.p99Ms), met: s.latency.p99Ms <= 5 },
    { target: `end-to-end p99.9 ≤ 15 ms at 2,000 orders/s${at}`, measured: ms(s.latency.p999Ms), met: s.latency.p999Ms <= 15 },
  ];
}

/** Issue 12's targets for the HTTP gateway. */
export function intakeTargets(i: IntakeSummary, rate: number): TargetCheck[] {
  const p99 = i.latency.p99Ms;
  return [
    {
      target: "intake (HTTP) ≥ 0.5 × produce",
      measured: `${i.produceRatio} × (${i.rates.intake.toLocaleString("en-US")}/s)`,
      met: i.produceRatio >= 0.5,
    },
    {
      target: `intake p99 ≤ 10 ms at 2,000 requests/s${rate === 2000 ? "" : ` (measured at ${rate}/s)`}`,
      measured: ms(p99),
      met: p99 <= 10,
    },
  ];
}

/** Issue 15's targets for the inbox mode with the example handler. */
function inboxTargets(i: InboxSummary): TargetCheck[] {
  const work = i.rates["inbox-work"];
  return [
    { target: "inbox work ≥ 0.8 × inbox floor", measured: `${i.workToFloor} ×`, met: i.workToFloor >= 0.8 },
    { target: "inbox work (example handler) ≥ 8,000 orders/s", measured: `${work.toLocaleString("en-US")}/s`, met: work >= 8_000 },
  ];
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
