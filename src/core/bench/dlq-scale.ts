/**
 * `orderq bench --dlq ENTRIES`: the DLQ tools at scale. Fills a fresh DLQ with ENTRIES entries (sources
 * and reasons mixed, each with two recorded attempts, as workers write them), then times what an
 * operator runs: `dlq show seq:<n>`, `dlq list --limit 20`, `status` — in this process (the core call
 * each command makes) and as commands (a new process each, as a person runs them: Node's start-up
 * included) — beside a full read of the DLQ, which is what `dlq show` did before and what `dlq show
 * <order id>` still does.
 */
import { spawn } from "node:child_process";
import { loadavg } from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { encodeDlqHeaders, DLQ_REASONS, type DlqEntry } from "../pipeline/dlq-entry.js";
import { makeOrder } from "../pipeline/order.js";
import { randomSeed, seededRng } from "../base/random.js";
import { dlqSubject, SOURCES, type Names } from "../nats/names.js";
import { PubAckRequests } from "../nats/pub-acks.js";
import { countDlq, findDlqEntries, listDlq, pageDlq } from "../ops/dlq-admin.js";
import { StatusReader } from "../ops/status.js";
import { DEFAULT_SETTINGS, deleteTopology } from "../nats/topology.js";
import { createTopology, phaseNames } from "./topology.js";
import { openTarget } from "./target.js";
import type { BenchSetup } from "./runner.js";
import { median } from "./summary.js";

export interface DlqScaleTiming {
  /** What was timed, as an operator would type it. */
  what: string;
  /** The core call, in this process: median of `repeats`, ms. */
  inProcessMs: number;
  /** The command in a new process (Node start-up and connecting included), ms; null when not run as a command. */
  commandMs: number | null;
}

export interface DlqScaleResult {
  entries: number;
  /** Bytes the DLQ stream holds. */
  dlqBytes: number;
  fillSeconds: number;
  timings: DlqScaleTiming[];
  environment: { date: string; node: string; server: { version: string; ours: boolean }; loadAverage: { before: number; after: number } };
}

const IN_FLIGHT = 256;

export async function runDlqScale(entries: number, setup: BenchSetup, progress: (text: string) => void): Promise<DlqScaleResult> {
  const loadBefore = loadavg()[0];
  const target = await openTarget(setup.server);
  const names = phaseNames(randomSeed().toString(36).toUpperCase(), "DLQ");
  const { nc } = target;
  try {
    await createTopology(nc, names, DEFAULT_SETTINGS.maxAckPending);
    const t0 = performance.now();
    await fill(target.hotNc, names, entries, (n) => progress(`filling the DLQ: ${n}/${entries}`));
    const fillSeconds = (performance.now() - t0) / 1000;
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(names.dlqStream);
    const mid = Math.ceil(info.state.last_seq / 2);
    const reader = new StatusReader(nc, names);
    const timings: DlqScaleTiming[] = [];
    const time = async (what: string, call: () => Promise<unknown>, args: string[] | undefined, repeats = 5) => {
      progress(`timing ${what}`);
      const runs: number[] = [];
      for (let i = 0; i < repeats; i++) {
        const start = performance.now();
        await call();
        runs.push(performance.now() - start);
      }
      const commandMs = args ? await command(setup.workerScript, target.url, target.workerEnv, names, args) : null;
      timings.push({ what, inProcessMs: round(median(runs)), commandMs: commandMs === null ? null : round(commandMs) });
    };
    // What every command pays before it does anything on this machine: Node and oclif starting up.
    await time("orderq --version (start-up alone)", async () => {}, ["--version"]);
    await time(`dlq show seq:${mid}`, () => findDlqEntries(nc, names, [`seq:${mid}`]), ["dlq", "show", `seq:${mid}`]);
    await time("dlq list --limit 20", () => Promise.all([pageDlq(nc, names, {}, 20), countDlq(nc, names)]), ["dlq", "list", "--limit", "20"]);
    await time(
      "dlq list --limit 20 --reason non-retryable",
      () => Promise.all([pageDlq(nc, names, { reason: "non-retryable" }, 20), countDlq(nc, names, { reason: "non-retryable" })]),
      ["dlq", "list", "--limit", "20", "--reason", "non-retryable"],
    );
    await time("status", () => reader.read(), ["status"]);
    // The reference: one read of every entry (dlq show before this change; dlq show <order id> now).
    await time(`dlq show b-${mid - 1} (by order id: reads every entry)`, () => listDlq(nc, names), ["dlq", "show", `b-${mid - 1}`], 1);
    return {
      entries,
      dlqBytes: info.state.bytes,
      fillSeconds: round(fillSeconds),
      timings,
      environment: {
        date: new Date().toISOString(),
        node: process.version,
        server: { version: target.version, ours: target.serverPid !== undefined },
        loadAverage: { before: loadBefore, after: loadavg()[0] },
      },
    };
  } finally {
    await deleteTopology(await jetstreamManager(nc), names).catch(() => undefined);
    await target.close();
  }
}

/** Entries as workers write them (order `b-<i>`), `IN_FLIGHT` publishes outstanding. */
async function fill(nc: NatsConnection, names: Names, count: number, progress: (n: number) => void): Promise<void> {
  const publisher = new PubAckRequests(nc);
  const rng = seededRng(1);
  const at = new Date().toISOString();
  let next = 0;
  const one = async (i: number) => {
    const source = SOURCES[i % SOURCES.length];
    const reason = DLQ_REASONS[i % DLQ_REASONS.length];
    const order = makeOrder(`b-${i}`, source, rng);
    const attempts = [1, 2].map((attempt) => ({
      orderId: order.id,
      streamSeq: i + 1,
      attempt,
      worker: "bench",
      error: "order rejected (bench)",
      errorClass: "Error",
      at,
    }));
    const entry: DlqEntry = {
      reason,
      lastError: "order rejected (bench)",
      orderId: order.id,
      source,
      originalStream: names.stream,
      originalSubject: `${names.subjectPrefix}.${source}`,
      originalSeq: i + 1,
      originalHeaders: { "Nats-Msg-Id": [order.id] },
      consumer: names.consumer,
      deliveries: 2,
      attempts,
      firstAttemptAt: at,
      lastAttemptAt: at,
      deadLetteredAt: at,
    };
    await publisher.publish(dlqSubject(names, source, reason), JSON.stringify(order), encodeDlqHeaders(entry, `bench:${i}`));
  };
  const lanes = Array.from({ length: IN_FLIGHT }, async () => {
    while (next < count) {
      const i = next++;
      await one(i);
      if (i % 5000 === 0) progress(i);
    }
  });
  try {
    await Promise.all(lanes);
  } finally {
    publisher.close();
  }
}

/** Wall time of `orderq <args>` in a new process; fails when the command does. */
function command(script: string, server: string, env: NodeJS.ProcessEnv, names: Names, args: string[]): Promise<number> {
  const naming = ["--stream", names.stream, "--dlq-stream", names.dlqStream, "--ledger-bucket", names.ledgerBucket, "--consumer", names.consumer];
  const full = args[0] === "--version" ? args : [...args, ...naming, "--server", server, "--json"];
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...full], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) =>
      code === 0 ? resolve(performance.now() - start) : reject(new Error(`orderq ${args.join(" ")}: exit ${code}: ${stderr.trim()}`)),
    );
  });
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
