/**
 * `orderq bench --soak ROUNDS`: does the cost stay flat as orders pile up? One topology with a short
 * horizon, kept across rounds; each round produces `orders` orders and runs `orderq work` processes
 * until they are committed, then records the work rate, the server's resident memory and what its
 * store holds. With the horizon in force the ledger holds only the last horizon's orders, so memory
 * and rate should level off after the first rounds instead of growing with every order ever processed.
 *
 * A round lasts at least the horizon (the soak waits out the rest before it samples): then every round
 * ends holding its own orders and none of the round before, so round 2 is already the steady state the
 * last round is compared with. With rounds shorter than the horizon, the ledger would still be filling
 * up in round 2 (a quiet machine works 50,000 orders in about 2 s against a 10 s horizon), and the
 * comparison would measure the horizon's length instead of a leak.
 */
import { loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { rssMb } from "../fleet/procfs.js";
import { readLedgerWrites } from "../pipeline/ledger.js";
import { kvStreamName, type Names } from "../nats/names.js";
import { DEFAULT_SETTINGS, deleteTopology, ensureTopology } from "../nats/topology.js";
import { steadyWindow, verifyCommits } from "./commits.js";
import { Meter } from "./meter.js";
import { producePhase } from "./produce.js";
import { openTarget } from "./target.js";
import { phaseNames, settledStreamMessages } from "./topology.js";
import { randomSeed } from "../base/random.js";
import { perSecond, type Verification } from "./types.js";
import { runWorkersUntil } from "./work.js";
import type { BenchConfig, BenchSetup } from "./runner.js";

export interface SoakConfig extends Pick<BenchConfig, "orders" | "workers" | "concurrency" | "payloadBytes" | "inFlight"> {
  rounds: number;
  /** The ledger's horizon for the soak (ms): short, so that it is reached within the first rounds. */
  horizonMs: number;
  /** The orders stream's duplicate window (ms): below the horizon, as `topology ensure` requires. */
  dupWindowMs: number;
}

export interface SoakRound {
  round: number;
  /** `orderq work`'s rate over its steady window (every worker's first commit → last commit), orders/s. */
  workRate: number;
  produceRate: number;
  /** The nats-server's resident memory after the round (VmRSS), MB; null when the server is not ours. */
  serverRssMb: number | null;
  /** What the account's file storage holds after the round (JetStream account info), MB. */
  storeMb: number;
  /** Keys and writes the ledger holds after the round: bounded by the horizon, not by the orders ever processed. */
  ledgerKeys: number;
  ledgerWrites: number;
  /** Orders processed since the soak began. */
  totalOrders: number;
  /** Seconds since the soak began, at the end of the round. */
  elapsedSeconds: number;
  /** 1-minute load average at the end of the round. */
  loadAverage: number;
  verification: Verification;
}

export interface SoakTarget {
  target: string;
  measured: string;
  met: boolean;
}

export interface SoakResult {
  config: SoakConfig;
  environment: {
    date: string;
    node: string;
    server: { url: string; version: string; ours: boolean };
    loadAverage: { before: number; after: number };
  };
  rounds: SoakRound[];
  targets: SoakTarget[];
  verified: boolean;
}

const STALL_MS = 30_000;

export async function runSoak(config: SoakConfig, setup: BenchSetup, progress: (text: string) => void): Promise<SoakResult> {
  const loadBefore = loadavg()[0];
  const target = await openTarget(setup.server);
  const { nc } = target;
  const jsm = await jetstreamManager(nc);
  const names = phaseNames(randomSeed().toString(36).toUpperCase(), "SOAK");
  // verify: the horizon's rules apply to the soak's settings as to anyone's.
  await ensureTopology(
    nc,
    { ...DEFAULT_SETTINGS, names, dupWindowMs: config.dupWindowMs, ledgerRetentionMs: config.horizonMs },
    { verify: true, update: false },
  );
  const started = Date.now();
  const rounds: SoakRound[] = [];
  try {
    for (let round = 1; round <= config.rounds; round++) {
      const say = (text: string) => progress(`soak round ${round}/${config.rounds} · ${text}`);
      const roundStarted = Date.now();
      const firstSeq = (await ledgerState(jsm, names)).lastSeq + 1;
      say(`produce: ${config.orders} orders`);
      const meter = new Meter(() => [process.pid], target.serverPid);
      const settings = { count: config.orders, inFlight: config.inFlight, payloadBytes: config.payloadBytes, seed: round, idPrefix: `s${round}` };
      const produced = await producePhase(target.hotNc, jsm, names, settings, meter);
      const expected = produced.acceptedIds;
      await runWorkersUntil(
        {
          nc,
          hotNc: target.hotNc,
          jsm,
          names,
          launch: {
            script: setup.workerScript,
            server: target.url,
            env: target.workerEnv,
            processes: config.workers,
            concurrency: config.concurrency,
          },
          serverPid: target.serverPid,
          stallMs: STALL_MS,
          progress: say,
          committed: async () => (await ledgerState(jsm, names)).lastSeq - firstSeq + 1,
        },
        () => expected.length,
        "work",
      );
      const left = await settledStreamMessages(jsm, names.stream);
      // Only this round's writes, read at once, while they are younger than the horizon.
      const writes = await readLedgerWrites(nc, names, firstSeq);
      const verification = verifyCommits(writes, expected, left);
      if ((await ledgerState(jsm, names)).firstSeq > firstSeq && verification.lost > 0) {
        verification.detail += `; writes of this round expired before they were read: raise --soak-horizon`;
      }
      const window = steadyWindow(writes);
      const rest = roundStarted + config.horizonMs - Date.now();
      if (rest > 0) {
        say(`waiting ${Math.ceil(rest / 1000)} s: a round lasts at least the horizon`);
        await sleep(rest);
      }
      const ledger = await ledgerState(jsm, names);
      const account = await jsm.getAccountInfo();
      const rss = target.serverPid === undefined ? undefined : rssMb(target.serverPid);
      rounds.push({
        round,
        workRate: perSecond(window.count, window.t1 - window.t0),
        produceRate: produced.result.rate,
        serverRssMb: rss === undefined ? null : Math.round(rss),
        storeMb: Math.round((account.storage / 1048576) * 10) / 10,
        ledgerKeys: ledger.keys,
        ledgerWrites: ledger.messages,
        totalOrders: round * config.orders,
        elapsedSeconds: Math.round((Date.now() - started) / 1000),
        loadAverage: Math.round(loadavg()[0] * 100) / 100,
        verification,
      });
    }
  } finally {
    await deleteTopology(jsm, names).catch(() => undefined);
    await target.close();
  }
  return {
    config,
    environment: {
      date: new Date().toISOString(),
      node: process.version,
      server: { url: target.url, version: target.version, ours: target.serverPid !== undefined },
      loadAverage: { before: loadBefore, after: loadavg()[0] },
    },
    rounds,
    targets: soakTargets(rounds),
    verified: rounds.every((r) => r.verification.ok),
  };
}

/**
 * Issue 13's targets: the server's memory after the last round (round 5 of 5) within 20% of round 2's
 * — no more than 20% above it: less memory is no growth — and the last round's work rate at least
 * 0.9 × round 2's. Round 1 is left out: it starts on an empty server. None with fewer than 3 rounds.
 */
export function soakTargets(rounds: readonly SoakRound[]): SoakTarget[] {
  if (rounds.length < 3) return [];
  const [second, last] = [rounds[1], rounds[rounds.length - 1]];
  const out: SoakTarget[] = [];
  if (second.serverRssMb !== null && last.serverRssMb !== null) {
    const ratio = last.serverRssMb / second.serverRssMb;
    out.push({
      target: `server memory after round ${last.round} at most 20% above round 2`,
      measured: `${last.serverRssMb} MB vs ${second.serverRssMb} MB (${ratio.toFixed(2)} ×)`,
      met: ratio <= 1.2,
    });
  }
  const ratio = second.workRate > 0 ? last.workRate / second.workRate : 0;
  out.push({
    target: `work rate in round ${last.round} ≥ 0.9 × round 2`,
    measured: `${last.workRate}/s vs ${second.workRate}/s (${ratio.toFixed(2)} ×)`,
    met: ratio >= 0.9,
  });
  return out;
}

async function ledgerState(jsm: JetStreamManager, names: Names): Promise<{ firstSeq: number; lastSeq: number; messages: number; keys: number }> {
  const { state } = await jsm.streams.info(kvStreamName(names.ledgerBucket));
  return { firstSeq: state.first_seq, lastSeq: state.last_seq, messages: state.messages, keys: state.num_subjects ?? 0 };
}
