/**
 * One chaos run, Jepsen's shape: servers → topology → worker processes → in-process producers
 * recording a history → the nemesis's fault schedule → heal → quiet → stop → checker.
 * Everything the run starts is stopped in `finally`, also on abort (Ctrl-C) and on failure.
 */
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { Autoscaler, type ScaleEvent } from "../fleet/autoscaler.js";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connectNats, credentialEnv, type NatsOptions } from "../nats/connection.js";
import { listDlq } from "../ops/dlq-admin.js";
import { EnvironmentError, InputError, OrderqError } from "../base/errors.js";
import { History, type HistoryEvent } from "../pipeline/history.js";
import { readLedgerWrites } from "../pipeline/ledger.js";
import { DEFAULT_NAMES, kvStreamName, namesFor, type Names } from "../nats/names.js";
import { guessOrderId } from "../pipeline/order.js";
import { Producer, type ProduceStats } from "../pipeline/producer.js";
import { backlog, waitForQuiet } from "../fleet/quiescence.js";
import { workArgs } from "../fleet/work-args.js";
import { seededRng } from "../base/random.js";
import { setTimeout as sleep } from "node:timers/promises";
import { NatsCluster, NatsServer } from "../fleet/nats-server.js";
import { DEFAULT_SETTINGS, deleteTopology, ensureTopology, type TopologySettings } from "../nats/topology.js";
import type { WorkerStats } from "../pipeline/worker.js";
import { parseAckedWrites } from "../pipeline/acked-writes.js";
import { check, SAMPLE_SIZE, type CheckResult, type MessageRef } from "./checker.js";
import { Nemesis, type FaultWindow } from "./nemesis.js";
import { ProxiedPath, type Upstream } from "./proxy.js";
import { faultKinds, faultNames, type Scenario } from "./scenario.js";
import { RunDir } from "./evidence.js";
import { buildTimeline, type Timeline } from "./timeline.js";
import { WorkerPool, type PoolCounters } from "./worker-pool.js";
import { acceptedIds, checkHandlerModule, InboxRun, type InboxRunResult } from "./inbox-run.js";

/** Quiet must last this long: a redelivery or an advisory can be on its way right after a quiet sample. */
const QUIET_FOR_MS = 2_000;
/** Even a run that used its whole time limit gets this long to settle before it is checked. */
const MIN_SETTLE_MS = 10_000;
/** A few rounds of the DLQ movers' orphan sweep (every 5 s). */
const EMPTY_WAIT_MS = 12_000;
const WORKERS_READY_MS = 30_000;
const WORKER_STOP_GRACE_MS = 10_000;
/** The stream's duplicate window: producer retries must stay inside it. */
/** Messages left in ORDERS that the checker reads one by one, at most. */
const MAX_REMAINING = 10_000;

export interface RunOptions {
  seed: number;
  /** Overrides the scenario's order count. */
  orders?: number;
  /** Negative control: workers commit with a plain put and skip the redelivery check. */
  unsafe: boolean;
  /** A server the user gave: nothing is started; server faults are refused. */
  external?: NatsOptions;
  /** The CLI entry point (bin/run.js) that worker processes run. */
  cliScript: string;
  /** The workers' handler module (absolute path), instead of the scenario's: e.g. the unsafe example, as a negative control. */
  handler?: string;
  signal?: AbortSignal;
  events?: RunEvents;
  /**
   * Where to keep the run's evidence (servers' stores and logs, workers' logs, the checker's inputs):
   * kept when the run is INVALID, or always. Without it the evidence is removed with the run.
   */
  evidence?: { dir: string; always: boolean };
}

export interface Progress {
  elapsedMs: number;
  phase: "producing" | "healing" | "settling" | "checking";
  accepted: number;
  /** Ledger writes so far (commits and dead-letter claims). */
  ledgerWrites: number;
  deadLettered: number;
  backlog: number;
  faults: number;
}

export interface RunEvents {
  onProgress?(progress: Progress): void;
  onFault?(window: FaultWindow): void;
  onNote?(text: string): void;
}

export interface FaultSummary {
  /** Nemesis faults whose effect was seen, plus the faults the workload carries. */
  observed: number;
  windows: FaultWindow[];
  byKind: Record<string, { injected: number; observed: number }>;
  /** Workers that SIGKILLed themselves (crash-after-commit, crash orders). */
  selfCrashes: number;
  droppedAcks: number;
  /** Accepted poison, fatal, crash and invalid orders. */
  markedOrders: number;
  /** Orders the producer re-sent on purpose. */
  resends: number;
}

export interface Effects {
  /** Ledger writes on a redelivery plus redeliveries the ledger absorbed. */
  redeliveries: number;
  ledgerWritesOnRedelivery: number;
  suppressedDuplicates: number;
  /** Failed attempts handed back with nak(delay). */
  naks: number;
  /** Most messages seen redelivered and awaiting an ack at one sample. */
  redeliveredPendingMax: number;
  producerRetries: number;
  duplicatePubAcks: number;
  indeterminatePublishes: number;
  workerRestarts: number;
  workerErrors: number;
}

/** ORDERS and its consumer as the checker found them: the first place to look when something is stuck. */
export interface FinalState {
  stream: { messages: number; firstSeq: number; lastSeq: number };
  consumer: { deliveredStreamSeq: number; ackFloorStreamSeq: number; pending: number; ackPending: number; redelivered: number };
  /** Stream sequences of the messages left in ORDERS (at most SAMPLE_SIZE). */
  remainingSeqs: number[];
}

export interface ChaosResult {
  scenario: string;
  file: string;
  seed: number;
  unsafe: boolean;
  orders: number;
  servers: number;
  valid: boolean;
  elapsedMs: number;
  quiet: boolean;
  timedOut: boolean;
  check: CheckResult;
  faults: FaultSummary;
  effects: Effects;
  producer: ProduceStats;
  workers: WorkerStats & PoolCounters;
  /** The autoscaler's decisions, when the scenario turns it on. */
  scaling: ScaleEvent[];
  timeline: Timeline;
  final: FinalState;
  /** Start of the run, ms since epoch; timeline and fault windows count from here. */
  startedAt: number;
  /** The directory the run's evidence was kept in, when it was. */
  evidence?: string;
  /** Inbox mode: the inbox as the ledger of record, and the effect check. */
  inbox?: InboxRunResult;
}

export interface RunOutput {
  result: ChaosResult;
  history: HistoryEvent[];
}

/** Cleanup steps, run last-in first-out; one failing does not stop the others. */
class Teardown {
  private readonly steps: (() => unknown)[] = [];

  add(step: () => unknown): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    while (this.steps.length) {
      try {
        await this.steps.pop()?.();
      } catch {
        // keep tearing down
      }
    }
  }
}

function upstreamsOf(url: string): Upstream[] {
  return url.split(",").map((u) => {
    const parsed = new URL(u.trim().includes("://") ? u.trim() : `nats://${u.trim()}`);
    return { host: parsed.hostname, port: Number(parsed.port || 4222) };
  });
}

/** On a server of the user's, a run gets names of its own and removes them afterwards. */
function runNames(external: boolean, seed: number): Names {
  if (!external) return DEFAULT_NAMES;
  const tag = `${seed.toString(36)}_${Date.now().toString(36)}`.toUpperCase();
  return namesFor({ stream: `CHAOS_${tag}`, consumer: "workers", dlqStream: `CHAOS_${tag}_DLQ`, ledgerBucket: `chaos_${tag.toLowerCase()}_ledger` });
}

/** Messages still in ORDERS (work-queue retention: an acked order is gone), read by sequence. */
async function remainingMessages(jsm: JetStreamManager, names: Names): Promise<{ refs: MessageRef[]; final: FinalState }> {
  const [info, consumer] = await Promise.all([jsm.streams.info(names.stream), jsm.consumers.info(names.stream, names.consumer)]);
  const refs: MessageRef[] = [];
  const seqs: number[] = [];
  // Deleted sequences lie between first and last: stop once every stored message is found.
  const wanted = Math.min(info.state.messages, MAX_REMAINING);
  for (let seq = info.state.first_seq; refs.length < wanted && seq <= info.state.last_seq; seq++) {
    const msg = await jsm.streams.getMessage(names.stream, { seq }).catch(() => null);
    if (!msg) continue;
    refs.push({ msgId: msg.header?.get("Nats-Msg-Id") || undefined, orderId: guessOrderId(msg.data), seq });
    if (seqs.length < SAMPLE_SIZE) seqs.push(seq);
  }
  const final: FinalState = {
    stream: { messages: info.state.messages, firstSeq: info.state.first_seq, lastSeq: info.state.last_seq },
    consumer: {
      deliveredStreamSeq: consumer.delivered.stream_seq,
      ackFloorStreamSeq: consumer.ack_floor.stream_seq,
      pending: consumer.num_pending,
      ackPending: consumer.num_ack_pending,
      redelivered: consumer.num_redelivered,
    },
    remainingSeqs: seqs,
  };
  return { refs, final };
}

export async function runChaos(scenario: Scenario, options: RunOptions): Promise<RunOutput> {
  const dir = new RunDir();
  let output: RunOutput | undefined;
  try {
    output = await runIn(dir, scenario, options);
  } finally {
    // runIn has stopped every server and worker by now: the stores are as the run left them.
    const evidence = options.evidence;
    if (output && evidence && (evidence.always || !output.result.valid)) {
      dir.keep(evidence.dir);
      output.result.evidence = evidence.dir;
    } else dir.discard();
  }
  return output;
}

async function runIn(dir: RunDir, scenario: Scenario, options: RunOptions): Promise<RunOutput> {
  const s = scenario;
  const external = options.external;
  if (external && faultKinds(s).includes("kill-server")) {
    throw new InputError(`scenario ${s.name} kills servers: it needs servers of its own (run it without --server)`);
  }
  if (options.unsafe && s.inbox) {
    throw new InputError(`scenario ${s.name} uses the inbox, where --unsafe changes nothing: the negative control is an unsafe handler (--handler examples/postgres-orders/unsafe-handler.mjs)`);
  }
  const handler = options.handler ?? s.handler.module;
  const orders = options.orders ?? s.orders;
  const note = (text: string) => options.events?.onNote?.(text);
  const teardown = new Teardown();
  const abort = new AbortController();
  const onAbort = () => abort.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  teardown.add(() => options.signal?.removeEventListener("abort", onAbort));
  try {
    const inbox = await InboxRun.start(s, handler);
    if (inbox) {
      teardown.add(() => inbox.dispose());
      note(`inbox database ready: 127.0.0.1:${inbox.database.port}`);
    }
    if (handler) await checkHandlerModule(handler, options.handler ? "--handler" : `${s.file}: handler.module`, inbox?.env ?? {});

    // Servers.
    let servers: NatsServer[] = [];
    let directUrl: string;
    if (external) directUrl = external.server;
    else if (s.servers === 3) {
      const cluster = await NatsCluster.start(3, { baseDir: dir.servers });
      teardown.add(() => cluster.dispose());
      servers = cluster.servers;
      directUrl = cluster.url;
    } else {
      const server = await NatsServer.start({ storeDir: join(dir.servers, "n1"), name: "n1" });
      teardown.add(() => server.dispose());
      servers = [server];
      directUrl = server.url;
    }
    note(`servers ready: ${directUrl}`);

    const names = runNames(external !== undefined, options.seed);
    const connectOptions: NatsOptions = { ...(external ?? { server: directUrl }), server: directUrl, name: "orderq chaos observer" };
    const observer: NatsConnection = await connectNats(connectOptions);
    teardown.add(() => observer.close());
    const jsm = await jetstreamManager(observer);
    const replicas = s.servers;
    const settings: TopologySettings = {
      ...DEFAULT_SETTINGS,
      names,
      replicas,
      ackWaitMs: s.consumer.ackWaitMs,
      maxDeliver: s.consumer.maxDeliver,
    };
    await ensureTopology(observer, settings);
    if (external) teardown.add(() => deleteTopology(jsm, names));

    // Workers and producers reach the servers through proxies the nemesis can cut or slow.
    const upstreams = servers.length ? servers.map((srv) => ({ host: "127.0.0.1", port: srv.port })) : upstreamsOf(directUrl);
    const workerPath = await ProxiedPath.start(upstreams);
    teardown.add(() => workerPath.close());
    const producerPath = await ProxiedPath.start(upstreams);
    teardown.add(() => producerPath.close());

    let spawns = 0;
    const pool = new WorkerPool(
      {
        script: options.cliScript,
        env: { ...(external ? credentialEnv(external) : {}), ...inbox?.env },
        restartDelayMs: s.workers.restartDelayMs,
        killOnExit: true,
        logFile: (workerId) => dir.workerLog(workerId),
        args: (workerId) =>
          workArgs({
            server: workerPath.url,
            settings,
            concurrency: s.workers.concurrency,
            handlerMs: s.handler.ms,
            failRate: s.handler.failRate,
            backoffBaseMs: s.consumer.backoffBaseMs,
            backoffMaxMs: s.consumer.backoffMaxMs,
            crashAfterCommitRate: s.workers.crashAfterCommitRate,
            dropAckRate: s.workers.dropAckRate,
            workerId,
            // A replacement process must not replay its predecessor's random choices.
            seed: options.seed + 1000 * ++spawns,
            unsafe: options.unsafe || undefined,
            trace: true,
            ...(inbox?.workOptions ?? { handler }),
          }),
      },
      note,
    );
    teardown.add(() => pool.stop(WORKER_STOP_GRACE_MS));
    const autoscale = s.workers.autoscale;
    const initialWorkers = autoscale ? autoscale.min : s.workers.processes;
    pool.start(initialWorkers);
    await waitForWorkers(jsm, names, initialWorkers, abort.signal);
    note(`${initialWorkers} workers pulling`);
    let autoscaler: Autoscaler | undefined;
    if (autoscale) {
      autoscaler = new Autoscaler(pool.supervisor, jsm, names, { ...autoscale, maxStepUp: Math.max(1, Math.ceil(autoscale.max / 4)) }, (event) => {
        note(`autoscale: ${event.from} → ${event.to} workers: ${event.reason}`);
      });
      autoscaler.start();
      teardown.add(() => autoscaler?.stop());
    }

    const producerNc = await connectNats({ ...connectOptions, server: producerPath.url, name: "orderq chaos producer" });
    teardown.add(() => producerNc.close());
    const history = new History();
    const h = s.handler;
    const producer = new Producer(
      producerNc,
      {
        names,
        count: orders,
        rate: s.rate,
        sources: s.sources,
        poisonRate: h.poisonRate,
        fatalRate: h.fatalRate,
        crashRate: h.crashRate,
        invalidRate: h.invalidRate,
        duplicateRate: s.producer.duplicateRate,
        inFlight: s.producer.inFlight,
        publishTimeoutMs: s.producer.publishTimeoutMs,
        retryForMs: Math.min(s.producer.retryForMs, settings.dupWindowMs / 2),
        idPrefix: `c${options.seed.toString(36)}`,
      },
      seededRng(options.seed),
      history,
    );

    // The run.
    const t0 = Date.now();
    const nemesis = new Nemesis(s.faults, { workers: pool, servers, leader: () => streamLeader(jsm, names), paths: { workers: workerPath, producers: producerPath }, database: inbox?.database }, options.seed, {
      onFault: (w) => options.events?.onFault?.(w),
    });
    let phase: Progress["phase"] = "producing";
    const sampler = new Sampler(jsm, names, () => ({ elapsedMs: Date.now() - t0, phase, accepted: producer.stats.accepted, faults: nemesis.windows.length }), (p) => options.events?.onProgress?.(p), inbox && (() => inbox.rowCount()));
    sampler.start();
    teardown.add(() => sampler.stop());
    const workersEachSecond: number[] = [];
    const countWorkers = setInterval(() => workersEachSecond.push(pool.supervisor.active), 1000);
    teardown.add(() => clearInterval(countWorkers));

    let timedOut = false;
    /** The time limit came before the producer and the nemesis were done (not just while settling). */
    let cutShort = false;
    const stopEverything = () => {
      producer.stop();
      nemesis.abort();
    };
    const limit = setTimeout(() => {
      timedOut = true;
      cutShort = phase === "producing" || phase === "healing";
      stopEverything();
    }, s.timeLimitMs);
    teardown.add(() => clearTimeout(limit));
    abort.signal.addEventListener("abort", stopEverything, { once: true });

    nemesis.start(t0);
    const produced = await producer.run();
    nemesis.endProduction();
    phase = "healing";
    await nemesis.wait();
    if (abort.signal.aborted) throw new OrderqError("interrupted", 130);

    phase = "settling";
    const settleBy = Date.now() + Math.max(MIN_SETTLE_MS, t0 + s.timeLimitMs - Date.now());
    const quiet =
      (await waitForQuiet(jsm, names, { quietForMs: QUIET_FOR_MS, timeoutMs: settleBy - Date.now(), shouldStop: () => abort.signal.aborted })) &&
      (await waitForEmptyStream(jsm, names, Math.min(settleBy, Date.now() + EMPTY_WAIT_MS), abort.signal));
    if (abort.signal.aborted) throw new OrderqError("interrupted", 130);
    const elapsedMs = Date.now() - t0;

    phase = "checking";
    sampler.stop();
    autoscaler?.stop(); // before the drain: it must not start workers while they are being stopped
    await pool.stop(WORKER_STOP_GRACE_MS);
    const workerStats = pool.stats();
    const [kvLedger, dlqEntries, left, ledgerInfo, dlqInfo] = await Promise.all([
      inbox ? [] : readLedgerWrites(observer, names),
      listDlq(observer, names),
      remainingMessages(jsm, names),
      jsm.streams.info(kvStreamName(names.ledgerBucket)),
      jsm.streams.info(names.dlqStream),
    ]);
    // Inbox mode: the inbox is the ledger of record.
    const inboxRead = await inbox?.finish(acceptedIds(history.events));
    const ledger = inboxRead?.ledger ?? kvLedger;
    dir.writeLines("ledger.jsonl", ledger);
    dir.writeLines("dlq.jsonl", dlqEntries);
    dir.writeLines("remaining.jsonl", left.refs);
    const dlq: MessageRef[] = dlqEntries.map((e) => ({ msgId: e.originalHeaders["Nats-Msg-Id"]?.[0], orderId: e.orderId, seq: e.originalSeq }));

    const faults = summarizeFaults(nemesis.windows, pool.counters, workerStats, history.events);
    const ledgerWritesOnRedelivery = ledger.filter((w) => w.outcome.attempt > 1).length;
    const effects: Effects = {
      redeliveries: ledgerWritesOnRedelivery + workerStats.suppressedDuplicates,
      ledgerWritesOnRedelivery,
      suppressedDuplicates: workerStats.suppressedDuplicates,
      naks: workerStats.retried,
      redeliveredPendingMax: sampler.redeliveredMax,
      producerRetries: produced.retries,
      duplicatePubAcks: produced.duplicates,
      indeterminatePublishes: produced.indeterminate,
      workerRestarts: pool.counters.restarts,
      workerErrors: workerStats.errors,
    };
    const traces =
      effects.redeliveries + effects.naks + effects.redeliveredPendingMax + effects.producerRetries + effects.duplicatePubAcks + effects.workerRestarts;
    const result = check({
      history: history.events,
      ledger,
      dlq,
      remaining: left.refs,
      expect: { ...s.expect, faultsMustHaveEffect: faultNames(s).length > 0 },
      observed: { faults: faults.observed, redeliveries: effects.redeliveries, effects: traces, quiet: quiet && !timedOut, cutShort, unseenKinds: unseenKinds(s, faults) },
      broker: {
        acked: parseAckedWrites(dir.workerLogs()),
        end: {
          orders: { lastSeq: left.final.stream.lastSeq },
          ledger: { lastSeq: ledgerInfo.state.last_seq, held: new Map(ledger.map((w) => [w.seq, w.orderId])) },
          dlq: { lastSeq: dlqInfo.state.last_seq, held: new Map(dlqEntries.map((e) => [e.dlqSeq, e.orderId ?? `seq:${e.originalSeq}`])), complete: true },
        },
      },
    });
    const timeline = buildTimeline(
      t0,
      history.events,
      ledger,
      dlqEntries.map((e) => Date.parse(e.deadLetteredAt)),
      workersEachSecond,
    );
    return {
      history: history.events,
      result: {
        scenario: s.name,
        file: s.file,
        seed: options.seed,
        unsafe: options.unsafe,
        orders,
        servers: external ? 0 : servers.length,
        valid: result.valid && (inboxRead?.result.effects?.valid ?? true),
        elapsedMs,
        quiet,
        timedOut,
        check: result,
        faults,
        effects,
        producer: produced,
        workers: { ...workerStats, ...pool.counters },
        scaling: autoscaler?.events ?? [],
        timeline,
        final: left.final,
        startedAt: t0,
        inbox: inboxRead?.result,
      },
    };
  } finally {
    await teardown.run();
  }
}

/** Kinds the schedule names (not drawn by `any`, which may draw a kind once, when it can do nothing) never seen at work. */
function unseenKinds(s: Scenario, faults: FaultSummary): string[] {
  const named = new Set(s.faults.flatMap((f) => (f.kind === "any" ? [] : [f.kind])));
  return [...named].filter((kind) => (faults.byKind[kind]?.observed ?? 0) === 0);
}

function summarizeFaults(windows: FaultWindow[], pool: PoolCounters, workers: WorkerStats, history: HistoryEvent[]): FaultSummary {
  const byKind: FaultSummary["byKind"] = {};
  for (const w of windows) {
    const k = (byKind[w.kind] ??= { injected: 0, observed: 0 });
    k.injected++;
    if (w.observed) k.observed++;
  }
  const accepted = new Set(history.filter((e) => e.type === "ok").map((e) => e.id));
  const marked = new Set(history.filter((e) => e.type === "invoke" && e.kind !== "order" && accepted.has(e.id)).map((e) => e.id));
  const resends = history.filter((e) => e.type === "invoke" && e.resend).length;
  const nemesisObserved = windows.filter((w) => w.observed).length;
  return {
    observed: nemesisObserved + pool.selfCrashes + workers.droppedAcks + marked.size + resends,
    windows,
    byKind,
    selfCrashes: pool.selfCrashes,
    droppedAcks: workers.droppedAcks,
    markedOrders: marked.size,
    resends,
  };
}

async function streamLeader(jsm: JetStreamManager, names: Names): Promise<string | undefined> {
  try {
    return (await jsm.streams.info(names.stream)).cluster?.leader;
  } catch {
    return undefined;
  }
}

/**
 * Quiet can hide orders nothing will deliver again (a lost MAX_DELIVERIES advisory): the movers' orphan
 * sweep moves them when the consumer is idle, so give it a few rounds; the checker reports what is left.
 */
async function waitForEmptyStream(jsm: JetStreamManager, names: Names, until: number, signal: AbortSignal): Promise<boolean> {
  while (!signal.aborted) {
    const info = await jsm.streams.info(names.stream).catch(() => undefined);
    if (info?.state.messages === 0) return true;
    if (Date.now() >= until) return false;
    await sleep(250);
  }
  return false;
}

/** Each worker process has a pull request waiting once it is ready to work. */
async function waitForWorkers(jsm: JetStreamManager, names: Names, processes: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + WORKERS_READY_MS;
  while (Date.now() < deadline && !signal.aborted) {
    const info = await jsm.consumers.info(names.stream, names.consumer).catch(() => undefined);
    if (info && info.num_waiting >= processes) return;
    await sleep(100);
  }
  if (signal.aborted) throw new OrderqError("interrupted", 130);
  throw new EnvironmentError(`worker processes did not start pulling within ${WORKERS_READY_MS / 1000} s (is the CLI built? npm run build)`);
}

/** Samples the pipeline every second for live progress and the redelivery high-water mark. */
class Sampler {
  redeliveredMax = 0;
  private inboxRows = 0;
  private timer?: NodeJS.Timeout;
  private busy = false;

  constructor(
    private readonly jsm: JetStreamManager,
    private readonly names: Names,
    private readonly base: () => Pick<Progress, "elapsedMs" | "phase" | "accepted" | "faults">,
    private readonly onProgress?: (p: Progress) => void,
    /** Inbox mode: the ledger of record's row count (undefined while the database is down). */
    private readonly ledgerCount?: () => Promise<number | undefined>,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sample(), 1000);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const [b, ledger, dlq] = await Promise.all([
        backlog(this.jsm, this.names),
        this.jsm.streams.info(kvStreamName(this.names.ledgerBucket)),
        this.jsm.streams.info(this.names.dlqStream),
      ]);
      this.redeliveredMax = Math.max(this.redeliveredMax, b.redelivered);
      this.inboxRows = (await this.ledgerCount?.()) ?? this.inboxRows;
      this.onProgress?.({ ...this.base(), ledgerWrites: this.ledgerCount ? this.inboxRows : ledger.state.messages, deadLettered: dlq.state.messages, backlog: b.pending + b.ackPending });
    } catch {
      // A broker that is down right now is part of the scenario: skip this sample.
    } finally {
      this.busy = false;
    }
  }
}
