/** Medians over runs, orderq's ratios to the baseline, and the project's performance targets as figures to report. */
import type { CpuUse } from "./meter.js";
import type { LatencySummary, PhaseName, PhaseResult, RunResult } from "./types.js";

export interface BenchSummary {
  /** msgs/s, median over runs. */
  rates: Record<PhaseName, number>;
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
  cpu: Record<PhaseName, CpuUse>;
}

export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean;
}

export const PHASES: PhaseName[] = ["publish", "consume", "floor", "produce", "work", "latency"];

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
  const rates = Object.fromEntries(PHASES.map((n) => [n, Math.round(of(n, (p) => p.rate))])) as Record<PhaseName, number>;
  const cpu = Object.fromEntries(
    PHASES.map((n) => {
      const server = runs.map((r) => phase(r, n).cpu.serverSeconds);
      // The median of an even number of runs is a mean: rounded again, or 2.4349999999999996 is printed.
      return [n, { clientSeconds: round2(of(n, (p) => p.cpu.clientSeconds)), serverSeconds: server.includes(null) ? null : round2(median(server as number[])) }];
    }),
  ) as Record<PhaseName, CpuUse>;
  const lat = (pick: (l: LatencySummary) => number) => of("latency", (p) => pick(p.latency!));
  return {
    rates,
    // Ratios of each run, then their median: a noisy moment hits both figures of the same run.
    produceRatio: round2(median(runs.map((r) => phase(r, "produce").rate / phase(r, "publish").rate))),
    workRatio: round2(median(runs.map((r) => phase(r, "work").rate / phase(r, "consume").rate))),
    floorRatio: round2(median(runs.map((r) => phase(r, "floor").rate / phase(r, "consume").rate))),
    workToFloor: round2(median(runs.map((r) => phase(r, "work").rate / phase(r, "floor").rate))),
    latency: {
      p50Ms: lat((l) => l.p50Ms),
      p90Ms: lat((l) => l.p90Ms),
      p99Ms: lat((l) => l.p99Ms),
      p999Ms: lat((l) => l.p999Ms),
      maxMs: lat((l) => l.maxMs),
      meanMs: lat((l) => l.meanMs),
    },
    workerPeakRssMb: median(runs.map((r) => Math.max(0, ...r.phases.flatMap((p) => p.workerPeakRssMb ?? [])))),
    cpu,
  };
}

/** Issue 7's targets. They are figures to report, not a verdict of the command. */
export function checkTargets(s: BenchSummary, config: { rate: number; concurrency: number }): TargetCheck[] {
  return [
    { target: "exactly-once work ≥ 10,000 orders/s", measured: `${s.rates.work.toLocaleString("en-US")}/s`, met: s.rates.work >= 10_000 },
    { target: "work ≥ 0.55 × consume + plain ack", measured: `${s.workRatio} ×`, met: s.workRatio >= 0.55 },
    { target: "produce ≥ 0.85 × pipelined publish", measured: `${s.produceRatio} ×`, met: s.produceRatio >= 0.85 },
    {
      target: `end-to-end p99 ≤ 10 ms at 2,000 orders/s${config.rate === 2000 ? "" : ` (measured at ${config.rate}/s)`}`,
      measured: `${s.latency.p99Ms.toFixed(s.latency.p99Ms < 10 ? 2 : 1)} ms`,
      met: s.latency.p99Ms <= 10,
    },
    { target: `worker peak memory ≤ 150 MB (at --concurrency ${config.concurrency})`, measured: `${s.workerPeakRssMb} MB`, met: s.workerPeakRssMb <= 150 },
  ];
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
