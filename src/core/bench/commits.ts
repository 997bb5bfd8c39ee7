/** Reading the outcome of a worker phase back from the ledger: progress, verdict, timing. */
import type { JetStreamManager } from "@nats-io/jetstream";
import { countCommits, type LedgerWrite } from "../pipeline/ledger.js";
import { kvStreamName, type Names } from "../nats/names.js";
import { setTimeout as sleep } from "node:timers/promises";
import type { Verification } from "./types.js";

/** Polls the ledger until it holds `expected` writes, or none arrive for `stallMs`. Returns the count. */
export async function waitForLedger(
  jsm: JetStreamManager,
  names: Names,
  expected: number,
  stallMs: number,
  progress: (writes: number) => void,
): Promise<number> {
  return waitForCount(async () => (await jsm.streams.info(kvStreamName(names.ledgerBucket))).state.messages, expected, stallMs, progress);
}

/** Polls `count` until it reaches `expected`, or stays unchanged for `stallMs`. Returns the last count. */
export async function waitForCount(count: () => Promise<number>, expected: number, stallMs: number, progress: (n: number) => void): Promise<number> {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const n = await count();
    if (n !== last) [last, lastChange] = [n, Date.now()];
    progress(n);
    if (n >= expected || Date.now() - lastChange > stallMs) return n;
    await sleep(250); // the timing comes from the ledger's own timestamps: no need to ask more often
  }
}

/** Every expected order committed exactly once, nothing else committed, nothing dead-lettered. */
export function verifyCommits(writes: LedgerWrite[], expectedIds: readonly string[], leftInStream: number): Verification {
  const commits = countCommits(writes);
  const expected = new Set(expectedIds);
  const lost = expectedIds.filter((id) => !commits.has(id)).length;
  const duplicated = [...commits.values()].filter((n) => n > 1).length;
  const unexpected = [...commits.keys()].filter((id) => !expected.has(id)).length;
  const deadLettered = writes.filter((w) => w.outcome.result === "dead-lettered").length;
  const ok = lost + duplicated + unexpected === 0;
  const detail =
    `${commits.size - duplicated} committed once, ${lost} lost, ${duplicated} duplicated, ${unexpected} unexpected` +
    (deadLettered ? `, ${deadLettered} dead-lettered` : "") +
    (leftInStream ? `, ${leftInStream} left unacked in the stream` : "");
  return { ok, detail, expected: expectedIds.length, lost, duplicated, unexpected };
}

/** Server time of the first commit of each order. */
export function commitTimes(writes: LedgerWrite[]): Map<string, number> {
  const times = new Map<string, number>();
  for (const w of writes) if (w.outcome.result === "committed" && !times.has(w.orderId)) times.set(w.orderId, timeOf(w));
  return times;
}

/**
 * The steady-state window of a work phase: from the moment every worker process had made its first
 * commit (all started up) to the last commit, with the commits inside it. Server timestamps throughout.
 */
export function steadyWindow(writes: LedgerWrite[]): { t0: number; t1: number; count: number } {
  return steadyWindowOf(writes.filter((w) => w.outcome.result === "committed").map((w) => ({ worker: w.outcome.worker, time: timeOf(w) })));
}

/** steadyWindow over commits from any ledger of record (the KV ledger, or an inbox table's commit timestamps). */
export function steadyWindowOf(commits: ReadonlyArray<{ worker: string; time: number }>): { t0: number; t1: number; count: number } {
  if (commits.length === 0) return { t0: 0, t1: 0, count: 0 };
  const firstByWorker = new Map<string, number>();
  let t1 = -Infinity;
  for (const { worker, time } of commits) {
    firstByWorker.set(worker, Math.min(firstByWorker.get(worker) ?? time, time));
    t1 = Math.max(t1, time);
  }
  const t0 = Math.max(...firstByWorker.values()); // one value per worker process
  return { t0, t1, count: commits.filter((c) => c.time > t0).length };
}

function timeOf(w: LedgerWrite): number {
  if (w.time === undefined) throw new Error(`ledger write ${w.seq} has no server timestamp`);
  return w.time;
}
