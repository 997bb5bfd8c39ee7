/**
 * Per-second series of a chaos run, computed after the fact from the history, ledger and DLQ, and
 * each worker's lane (alive, paused, down; where it was killed) from the worker events.
 */
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
  /** Each worker's states over the run, from its events (workerLanes); absent in results of older runs. */
  workerLanes?: WorkerLane[];
}

/**
 * What happened to a worker process in a chaos run, as recorded beside the producer's events in
 * history.jsonl: `start` (spawned, a replacement too), `kill` (the nemesis sent SIGKILL), `pause` /
 * `resume` (SIGSTOP / SIGCONT), `exit` (seen, with its cause).
 */
export interface WorkerEvent {
  type: "worker";
  event: "start" | "kill" | "pause" | "resume" | "exit";
  /** The worker's id (w1, w2…, q1 for the quarantine lane): a replacement keeps its predecessor's. */
  worker: string;
  pid?: number;
  /** ms since epoch. */
  time: number;
  /**
   * exit: who ended it — the nemesis (its SIGKILL), a self-crash (a SIGKILL nobody sent: crash after
   * commit, a crash order), an error (another non-zero exit), or stopped (the run's drain).
   */
  cause?: "nemesis" | "self-crash" | "error" | "stopped";
}

export type LaneState = "alive" | "paused";

/** One worker's run: when it was alive or paused (gaps: no process), and where it died. Times in ms from the run's start. */
export interface WorkerLane {
  worker: string;
  segments: { state: LaneState; fromMs: number; toMs: number }[];
  /** Deaths: killed by the nemesis, or crashed by itself. */
  deaths: { atMs: number; cause: "killed" | "crashed" }[];
}

/**
 * Each worker's lane from its events, in order of first appearance; a state still open at `endMs`
 * (ms from `t0`) ends there. Pure.
 */
export function workerLanes(t0: number, events: readonly WorkerEvent[], endMs: number): WorkerLane[] {
  const lanes = new Map<string, WorkerLane & { open?: { state: LaneState; fromMs: number } }>();
  const sorted = [...events].sort((a, b) => a.time - b.time);
  for (const e of sorted) {
    let lane = lanes.get(e.worker);
    if (!lane) lanes.set(e.worker, (lane = { worker: e.worker, segments: [], deaths: [] }));
    const at = Math.max(0, e.time - t0);
    const close = () => {
      if (lane.open && at > lane.open.fromMs) lane.segments.push({ ...lane.open, toMs: at });
      lane.open = undefined;
    };
    switch (e.event) {
      case "start":
        close();
        lane.open = { state: "alive", fromMs: at };
        break;
      case "pause":
      case "resume":
        // A pause or resume of a worker with no process (it died meanwhile) changes nothing.
        if (!lane.open) break;
        close();
        lane.open = { state: e.event === "pause" ? "paused" : "alive", fromMs: at };
        break;
      case "kill":
        lane.deaths.push({ atMs: at, cause: "killed" });
        break;
      case "exit":
        close();
        if (e.cause === "self-crash") lane.deaths.push({ atMs: at, cause: "crashed" });
        break;
    }
  }
  return [...lanes.values()].map(({ open, ...lane }) => ({
    ...lane,
    segments: open && endMs > open.fromMs ? [...lane.segments, { ...open, toMs: endMs }] : lane.segments,
  }));
}

/**
 * The history.jsonl of a run: the producer's events and the workers', one stream in time order (each
 * list is already in the order it happened; the producer's order is kept among equal times).
 */
export function mergeByTime<A extends { time: number }, B extends { time: number }>(producer: readonly A[], workers: readonly B[]): (A | B)[] {
  const out: (A | B)[] = [];
  let j = 0;
  for (const e of producer) {
    while (j < workers.length && workers[j].time < e.time) out.push(workers[j++]);
    out.push(e);
  }
  while (j < workers.length) out.push(workers[j++]);
  return out;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? 0 };
}

/**
 * The per-second series from `t0` (ms since epoch); `workers` is the sampled process count, and
 * `workerEvents` (when given) make the lanes, up to the last second of the series.
 */
export function buildTimeline(
  t0: number,
  history: HistoryEvent[],
  ledger: LedgerWrite[],
  dlqTimes: number[],
  workers: number[],
  workerEvents?: readonly WorkerEvent[],
): Timeline {
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
    ...(workerEvents && { workerLanes: workerLanes(t0, workerEvents, Math.max(length, workers.length) * 1000) }),
  };
}
