/** Per-second series of a chaos run, computed after the fact from the history, ledger and DLQ. */
import type { HistoryEvent } from "../pipeline/history.js";
import type { LedgerWrite } from "../pipeline/ledger.js";

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface Timeline {
  /** Index i covers [i, i+1) seconds from the start of the run. */
  accepted: number[];
  committed: number[];
  deadLettered: number[];
  /** Ledger writes made on a redelivery (attempt > 1). */
  redelivered: number[];
  /** Publish-to-commit latency of the orders committed in each second, ms. */
  latencyP50: (number | null)[];
  latencyP99: (number | null)[];
  latency: Percentiles;
  /** Worker processes running, sampled once a second (the autoscaler's work shows here). */
  workers: number[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? 0 };
}

export function buildTimeline(t0: number, history: HistoryEvent[], ledger: LedgerWrite[], dlqTimes: number[], workers: number[]): Timeline {
  const second = (time: number) => Math.max(0, Math.floor((time - t0) / 1000));
  const series = (): number[] => [];
  const bump = (s: number[], i: number) => {
    while (s.length <= i) s.push(0);
    s[i]++;
  };
  const accepted = series();
  const committed = series();
  const deadLettered = series();
  const redelivered = series();
  const invokedAt = new Map<string, number>();
  for (const e of history) {
    if (e.type === "invoke" && !invokedAt.has(e.id)) invokedAt.set(e.id, e.time);
    if (e.type === "ok" && !e.duplicate) bump(accepted, second(e.time));
  }
  const bySecond = new Map<number, number[]>();
  const all: number[] = [];
  for (const w of ledger) {
    const at = w.time ?? Date.parse(w.outcome.at); // the server's store time when known
    if (w.outcome.attempt > 1) bump(redelivered, second(at));
    if (w.outcome.result !== "committed") continue;
    bump(committed, second(at));
    const sent = invokedAt.get(w.orderId);
    if (sent === undefined) continue;
    const latency = Math.max(0, Math.round(at - sent));
    all.push(latency);
    const list = bySecond.get(second(at)) ?? [];
    list.push(latency);
    bySecond.set(second(at), list);
  }
  for (const at of dlqTimes) bump(deadLettered, second(at));
  const length = Math.max(accepted.length, committed.length, deadLettered.length, redelivered.length);
  const pad = (s: number[]) => [...s, ...new Array<number>(length - s.length).fill(0)];
  const latencyAt = (p: number) =>
    Array.from({ length }, (_, i) => {
      const list = bySecond.get(i);
      return list
        ? percentile(
            [...list].sort((a, b) => a - b),
            p,
          )
        : null;
    });
  return {
    accepted: pad(accepted),
    committed: pad(committed),
    deadLettered: pad(deadLettered),
    redelivered: pad(redelivered),
    latencyP50: latencyAt(50),
    latencyP99: latencyAt(99),
    latency: percentiles(all),
    workers,
  };
}
