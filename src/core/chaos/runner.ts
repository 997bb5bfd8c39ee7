/**
 * One chaos run, Jepsen's shape: servers → topology → worker processes → in-process producers
 * recording a history → the nemesis's fault schedule → heal → quiet → stop → checker.
 * Everything the run starts is stopped in `finally`, also on abort (Ctrl-C) and on failure.
 */
import { join } from "node:path";
import { TimeoutError, type NatsConnection } from "@nats-io/transport-node";
import { Autoscaler, type ScaleEvent } from "../fleet/autoscaler.js";
import { jetstreamManager, type JetStreamManager, type StreamInfo } from "@nats-io/jetstream";
import { connectNats, credentialEnv, type NatsOptions } from "../nats/connection.js";
import { listDlq } from "../ops/dlq-admin.js";
import { EnvironmentError, InputError, OrderqError } from "../base/errors.js";
import { History, type HistoryEvent } from "../pipeline/history.js";
import { readLedgerWrites, type LedgerWrite } from "../pipeline/ledger.js";
import type { StoredDlqEntry } from "../pipeline/dlq-entry.js";
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
import { check, invalidReasons, SAMPLE_SIZE, scaleExpectations, type CheckResult, type MessageRef } from "./checker.js";
import { Nemesis, type FaultWindow } from "./nemesis.js";
import { ProxiedPath, type Upstream } from "./proxy.js";
import { faultKinds, faultNames, type Scenario } from "./scenario.js";
import { RunDir } from "./evidence.js";
import { buildTimeline, type Timeline, type WorkerEvent } from "./timeline.js";
import { WorkerPool, type PoolCounters } from "./worker-pool.js";
import { GatewayPool, type GatewayCounters } from "./gateway-pool.js";
import { HttpSender } from "../intake/http-sender.js";
import { acceptedIds, checkHandlerModule, InboxRun, type InboxRunResult } from "./inbox-run.js";
import { INBOX_URL_ENV } from "../inbox/connect.js";

/** Quiet must last this long: a redelivery or an advisory can be on its way right after a quiet sample. */
const QUIET_FOR_MS = 2_000;
/** Even a run that used its whole time limit gets this long to settle before it is checked. */
const MIN_SETTLE_MS = 10_000;
/** A few rounds of the DLQ movers' orphan sweep (every 5 s). */
const EMPTY_WAIT_MS = 12_000;
const WORKERS_READY_MS = 30_000;
const WORKER_STOP_GRACE_MS = 10_000;
/** A gateway answers what it holds (each request bounded by its --timeout) and exits. */
const GATEWAY_STOP_GRACE_MS = 5_000;
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
  /** Ledger writes on a redelivery, redeliveries the ledger absorbed, and suspects sent to the quarantine lane. */
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
  /** Why the run is INVALID: each broken rule and failed expectation, one line each; empty when valid. */
  why: string[];
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
  /** Intake mode: the gateways' URLs and what happened to their processes. */
  gateways?: GatewayCounters & { urls: string[] };
}

export interface RunOutput {
  result: ChaosResult;
  history: HistoryEvent[];
  /** Every worker start, kill, pause, resume and exit: written to history.jsonl beside the producer's events. */
  workerEvents: WorkerEvent[];
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
  // Suspects still in the quarantine lane are left over too, under the original's id and sequence.
  const lane = await jsm.streams.info(names.quarantineStream);
  for (let seq = lane.state.first_seq, found = 0; found < Math.min(lane.state.messages, MAX_REMAINING) && seq <= lane.state.last_seq; seq++) {
    const msg = await jsm.streams.getMessage(names.quarantineStream, { seq }).catch(() => null);
    if (!msg) continue;
    found++;
    refs.push({
      msgId: msg.header?.get("Orderq-Original-Msg-Id") || undefined,
      orderId: guessOrderId(msg.data),
      seq: Number(msg.header?.get("Orderq-Original-Seq")) || undefined,
    });
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

/** The phases, in order. Each one that starts something adds its stop to the teardown, which runs on every path. */
async function runIn(dir: RunDir, scenario: Scenario, options: RunOptions): Promise<RunOutput> {
  refuseUnrunnable(scenario, options);
  const ctx = runContext(dir, scenario, options);
  try {
    const rig = await setUp(ctx);
    // Gateways (intake mode) start beside the workers: both take seconds. Both settle before a failure
    // of either is thrown, so that everything either started is in the teardown.
    const [fleet, workload] = bothOrThrow(await Promise.allSettled([startWorkers(ctx, rig), startProducer(ctx, rig)]));
    const run = startClock(ctx, rig, fleet, workload);
    const produced = await produceUnderFaults(run);
    await heal(ctx, run);
    const settled = await settle(ctx, run);
    const workerStats = await stopWorkers(run);
    const left = await whileTimingOut(() => readWhatIsLeft(ctx, run));
    const ending: Ending = { produced, ...settled, workerStats, ...left };
    return report(ctx, run, ending, checkRun(ctx, run, ending));
  } finally {
    await ctx.teardown.run();
  }
}

function bothOrThrow<A, B>([a, b]: [PromiseSettledResult<A>, PromiseSettledResult<B>]): [A, B] {
  if (a.status === "rejected") throw a.reason;
  if (b.status === "rejected") throw b.reason;
  return [a.value, b.value];
}

/** What every phase reads: the run's inputs, the teardown to add stops to, and the run's abort signal. */
interface RunContext {
  dir: RunDir;
  s: Scenario;
  options: RunOptions;
  /** The workers' handler module: --handler, else the scenario's (undefined: the simulated handler). */
  handler: string | undefined;
  orders: number;
  note: (text: string) => void;
  teardown: Teardown;
  /** Aborted by the caller's signal (Ctrl-C). */
  signal: AbortSignal;
}

/** What set-up started: the database (inbox scenarios), the servers, the topology and the proxies. */
interface Rig {
  inbox: InboxRun | undefined;
  servers: NatsServer[];
  names: Names;
  connectOptions: NatsOptions;
  observer: NatsConnection;
  jsm: JetStreamManager;
  settings: TopologySettings;
  workerPath: ProxiedPath;
  producerPath: ProxiedPath;
}

interface Fleet {
  pool: WorkerPool;
  autoscaler?: Autoscaler;
}

interface Workload {
  producer: Producer;
  history: History;
  /** Intake mode: the gateways the producer posts through. */
  gateways?: GatewayPool;
}

/** A run under way: the timeline, the fault windows and the progress count from `t0`. */
interface Run extends Workload {
  rig: Rig;
  fleet: Fleet;
  t0: number;
  nemesis: Nemesis;
  sampler: Sampler;
  workersEachSecond: number[];
  /** Written by the phases and by the time limit, which can strike in any phase. */
  state: {
    phase: Progress["phase"];
    timedOut: boolean;
    /** The time limit came before the producer and the nemesis were done (not just while settling). */
    cutShort: boolean;
  };
}

/** What the run left, read once the workers have stopped. */
interface Leftovers {
  /** The KV ledger's writes, or the inbox rows in inbox mode. */
  ledger: LedgerWrite[];
  dlqEntries: StoredDlqEntry[];
  left: { refs: MessageRef[]; final: FinalState };
  ledgerInfo: StreamInfo;
  dlqInfo: StreamInfo;
  inboxRead?: { ledger: LedgerWrite[]; result: InboxRunResult };
}

/** What the run came to: the checker's and the report's input. */
interface Ending extends Leftovers {
  produced: ProduceStats;
  quiet: boolean;
  elapsedMs: number;
  workerStats: WorkerStats;
}

interface Verdict {
  check: CheckResult;
  faults: FaultSummary;
  effects: Effects;
}

/** Refuses, before anything starts, a scenario these options cannot run. */
function refuseUnrunnable(s: Scenario, options: RunOptions): void {
  if (options.external && faultKinds(s).includes("kill-server")) {
    throw new InputError(`scenario ${s.name} kills servers: it needs servers of its own (run it without --server)`);
  }
  if (options.unsafe && s.inbox) {
    throw new InputError(
      `scenario ${s.name} uses the inbox, where --unsafe changes nothing: the negative control is an unsafe handler (--handler examples/postgres-orders/unsafe-handler.mjs)`,
    );
  }
}

/** The run's own abort follows the caller's signal until the teardown unhooks it. */
function runContext(dir: RunDir, s: Scenario, options: RunOptions): RunContext {
  const teardown = new Teardown();
  const abort = new AbortController();
  const onAbort = () => abort.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  teardown.add(() => options.signal?.removeEventListener("abort", onAbort));
  return {
    dir,
    s,
    options,
    handler: options.handler ?? s.handler.module,
    orders: options.orders ?? s.orders,
    note: (text: string) => options.events?.onNote?.(text),
    teardown,
    signal: abort.signal,
  };
}

function throwIfInterrupted(signal: AbortSignal): void {
  if (signal.aborted) throw new OrderqError("interrupted", 130);
}

/** Set up: the inbox database, the servers, the topology, and the proxies the nemesis can cut or slow. */
async function setUp(ctx: RunContext): Promise<Rig> {
  const inbox = await startInbox(ctx);
  const { servers, directUrl } = await startServers(ctx);
  const topology = await createTopology(ctx, directUrl);
  // Workers and producers reach the servers through proxies the nemesis can cut or slow.
  const upstreams = servers.length ? servers.map((srv) => ({ host: "127.0.0.1", port: srv.port })) : upstreamsOf(directUrl);
  const workerPath = await ProxiedPath.start(upstreams);
  ctx.teardown.add(() => workerPath.close());
  const producerPath = await ProxiedPath.start(upstreams);
  ctx.teardown.add(() => producerPath.close());
  return { inbox, servers, ...topology, workerPath, producerPath };
}

/** Inbox scenarios: the run's own PostgreSQL. Then the handler module, loaded once here before any worker runs it. */
async function startInbox(ctx: RunContext): Promise<InboxRun | undefined> {
  const { s, options, handler } = ctx;
  const inbox = await InboxRun.start(s, handler);
  if (inbox) {
    ctx.teardown.add(() => inbox.dispose());
    ctx.note(`inbox database ready: 127.0.0.1:${inbox.database.port}`);
  }
  if (handler) await checkHandlerModule(handler, options.handler ? "--handler" : `${s.file}: handler.module`, inbox?.env ?? {});
  return inbox;
}

/** One server or a cluster of three in the run dir; none with a server of the user's. */
async function startServers(ctx: RunContext): Promise<{ servers: NatsServer[]; directUrl: string }> {
  const { s, dir, teardown } = ctx;
  const external = ctx.options.external;
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
  ctx.note(`servers ready: ${directUrl}`);
  return { servers, directUrl };
}

/** The observer's connection (not proxied: it must see through the faults) and the run's streams and consumer. */
async function createTopology(ctx: RunContext, directUrl: string): Promise<Pick<Rig, "names" | "connectOptions" | "observer" | "jsm" | "settings">> {
  const { s, options, teardown } = ctx;
  const external = options.external;
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
  await whileTimingOut(() => ensureTopology(observer, settings));
  if (external) teardown.add(() => deleteTopology(jsm, names));
  return { names, connectOptions, observer, jsm, settings };
}

/** Start: the worker processes, each pulling, then the autoscaler when the scenario turns it on. */
async function startWorkers(ctx: RunContext, rig: Rig): Promise<Fleet> {
  const { s, teardown } = ctx;
  const pool = workerPool(ctx, rig);
  teardown.add(() => pool.stop(WORKER_STOP_GRACE_MS));
  const autoscale = s.workers.autoscale;
  const initialWorkers = autoscale ? autoscale.min : s.workers.processes;
  pool.start(initialWorkers);
  await waitForWorkers(rig.jsm, rig.names, initialWorkers, ctx.signal);
  ctx.note(`${initialWorkers} workers pulling`);
  if (!autoscale) return { pool };
  const autoscaler = new Autoscaler(
    pool.supervisor,
    rig.jsm,
    rig.names,
    { ...autoscale, maxStepUp: Math.max(1, Math.ceil(autoscale.max / 4)) },
    (event) => {
      ctx.note(`autoscale: ${event.from} → ${event.to} workers: ${event.reason}`);
    },
  );
  autoscaler.start();
  teardown.add(() => autoscaler.stop());
  return { pool, autoscaler };
}

/** `orderq work` processes through the workers' proxy, restarted when they die, each logging to the run dir. */
function workerPool(ctx: RunContext, rig: Rig): WorkerPool {
  const { s, options, dir, handler } = ctx;
  const external = options.external;
  const inbox = rig.inbox;
  let spawns = 0;
  const args = (workerId: string, lane?: "quarantine") =>
    workArgs({
      server: rig.workerPath.url,
      settings: rig.settings,
      concurrency: s.workers.concurrency,
      handlerMs: s.handler.ms,
      failRate: s.handler.failRate,
      backoffBaseMs: s.consumer.backoffBaseMs,
      backoffMaxMs: s.consumer.backoffMaxMs,
      crashAfterCommitRate: s.workers.crashAfterCommitRate,
      dropAckRate: s.workers.dropAckRate,
      workerId,
      lane,
      // A replacement process must not replay its predecessor's random choices.
      seed: options.seed + 1000 * ++spawns,
      unsafe: options.unsafe || undefined,
      trace: true,
      ...(inbox?.workOptions ?? { handler }),
    });
  return new WorkerPool(
    {
      script: options.cliScript,
      // Workers inherit this process's environment; an ORDERQ_INBOX_URL from the shell would turn on inbox
      // mode against a database that is not the run's, so only an inbox scenario passes one (its own).
      env: { ...(external ? credentialEnv(external) : {}), ...(inbox?.env ?? { [INBOX_URL_ENV]: undefined }) },
      restartDelayMs: s.workers.restartDelayMs,
      killOnExit: true,
      logFile: (workerId) => dir.workerLog(workerId),
      args,
    },
    ctx.note,
  );
}

/**
 * The in-process producer, through its own proxy, recording the history the checker reads. In intake
 * mode it posts to the gateways instead, and they reach the servers through the producers' proxy.
 */
async function startProducer(ctx: RunContext, rig: Rig): Promise<Workload> {
  const { s, options } = ctx;
  const gateways = s.intake && (await startGateways(ctx, rig, s.intake));
  let target: ConstructorParameters<typeof Producer>[0];
  if (gateways) target = (timeoutMs: number) => new HttpSender(gateways.urls, timeoutMs);
  else {
    const producerNc = await connectNats({ ...rig.connectOptions, server: rig.producerPath.url, name: "orderq chaos producer" });
    ctx.teardown.add(() => producerNc.close());
    target = producerNc;
  }
  const history = new History();
  const h = s.handler;
  const producer = new Producer(
    target,
    {
      names: rig.names,
      count: ctx.orders,
      rate: s.rate,
      sources: s.sources,
      poisonRate: h.poisonRate,
      fatalRate: h.fatalRate,
      crashRate: h.crashRate,
      invalidRate: h.invalidRate,
      duplicateRate: s.producer.duplicateRate,
      inFlight: s.producer.inFlight,
      publishTimeoutMs: s.producer.publishTimeoutMs,
      retryForMs: Math.min(s.producer.retryForMs, rig.settings.dupWindowMs / 2),
      idPrefix: `c${options.seed.toString(36)}`,
    },
    seededRng(options.seed),
    history,
  );
  return { producer, history, gateways };
}

/**
 * Intake mode: `orderq intake` children on ports of their own, through the producers' proxy, with the
 * run's topology (the flags both commands take, spelled once by workArgs). --unsafe makes them the
 * negative control: no key store, a new message id per request.
 */
async function startGateways(ctx: RunContext, rig: Rig, intake: NonNullable<Scenario["intake"]>): Promise<GatewayPool> {
  const { options, dir } = ctx;
  const topology = workArgs({ server: rig.producerPath.url, settings: rig.settings }).slice(1);
  const pool = await GatewayPool.start(intake.gateways, {
    script: options.cliScript,
    args: [...topology, "--timeout", `${intake.timeoutMs}ms`, ...(options.unsafe ? ["--unsafe"] : [])],
    env: options.external ? credentialEnv(options.external) : {},
    logFile: (id) => dir.gatewayLog(id),
  });
  ctx.teardown.add(() => pool.stop(GATEWAY_STOP_GRACE_MS));
  ctx.note(`${intake.gateways} intake gateways ready: ${pool.urls.join(", ")}${options.unsafe ? " (unsafe)" : ""}`);
  return pool;
}

/** t0: the nemesis, live progress, the count of workers each second, and the time limit, which stops the producer and the nemesis. */
function startClock(ctx: RunContext, rig: Rig, fleet: Fleet, workload: Workload): Run {
  const { s, options, teardown } = ctx;
  const { jsm, names } = rig;
  const { pool } = fleet;
  const { producer } = workload;
  const inbox = rig.inbox;
  const t0 = Date.now();
  const nemesis = new Nemesis(
    s.faults,
    {
      workers: pool,
      servers: rig.servers,
      leader: () => streamLeader(jsm, names),
      paths: { workers: rig.workerPath, producers: rig.producerPath },
      database: inbox?.database,
      gateways: workload.gateways,
    },
    options.seed,
    {
      onFault: (w) => options.events?.onFault?.(w),
    },
  );
  const state: Run["state"] = { phase: "producing", timedOut: false, cutShort: false };
  const sampler = new Sampler(
    jsm,
    names,
    () => ({ elapsedMs: Date.now() - t0, phase: state.phase, accepted: producer.stats.accepted, faults: nemesis.windows.length }),
    (p) => options.events?.onProgress?.(p),
    inbox && (() => inbox.rowCount()),
  );
  sampler.start();
  teardown.add(() => sampler.stop());
  const workersEachSecond: number[] = [];
  const countWorkers = setInterval(() => workersEachSecond.push(pool.supervisor.active), 1000);
  teardown.add(() => clearInterval(countWorkers));

  const stopEverything = () => {
    producer.stop();
    nemesis.abort();
  };
  const limit = setTimeout(() => {
    state.timedOut = true;
    state.cutShort = state.phase === "producing" || state.phase === "healing";
    stopEverything();
  }, s.timeLimitMs);
  teardown.add(() => clearTimeout(limit));
  ctx.signal.addEventListener("abort", stopEverything, { once: true });
  return { ...workload, rig, fleet, t0, nemesis, sampler, workersEachSecond, state };
}

/** Produce + nemesis: the faults run on their schedule while the producer sends the orders. */
async function produceUnderFaults(run: Run): Promise<ProduceStats> {
  run.nemesis.start(run.t0);
  const produced = await run.producer.run();
  run.nemesis.endProduction();
  return produced;
}

/** Heal: wait for the nemesis's last faults to end and be healed. */
async function heal(ctx: RunContext, run: Run): Promise<void> {
  run.state.phase = "healing";
  await run.nemesis.wait();
  throwIfInterrupted(ctx.signal);
}

/** Settle: wait until nothing moves and ORDERS is empty, within what is left of the time limit (at least MIN_SETTLE_MS). */
async function settle(ctx: RunContext, run: Run): Promise<{ quiet: boolean; elapsedMs: number }> {
  const { jsm, names } = run.rig;
  const signal = ctx.signal;
  run.state.phase = "settling";
  const settleBy = Date.now() + Math.max(MIN_SETTLE_MS, run.t0 + ctx.s.timeLimitMs - Date.now());
  const quiet =
    (await waitForQuiet(jsm, names, { quietForMs: QUIET_FOR_MS, timeoutMs: settleBy - Date.now(), shouldStop: () => signal.aborted })) &&
    (await waitForEmptyStream(jsm, names, Math.min(settleBy, Date.now() + EMPTY_WAIT_MS), signal));
  throwIfInterrupted(signal);
  return { quiet, elapsedMs: Date.now() - run.t0 };
}

/** Stops the sampler, the autoscaler and the workers, so that what the checker reads no longer moves. */
async function stopWorkers(run: Run): Promise<WorkerStats> {
  const { pool, autoscaler } = run.fleet;
  run.state.phase = "checking";
  run.sampler.stop();
  autoscaler?.stop(); // before the drain: it must not start workers while they are being stopped
  await pool.stop(WORKER_STOP_GRACE_MS);
  return pool.stats();
}

/** Reads the ledger (the inbox in inbox mode), the DLQ and what is left in ORDERS, and writes them to the run dir as evidence. */
async function readWhatIsLeft(ctx: RunContext, run: Run): Promise<Leftovers> {
  const { dir } = ctx;
  const { inbox, observer, jsm, names } = run.rig;
  const [kvLedger, dlqEntries, left, ledgerInfo, dlqInfo] = await Promise.all([
    inbox ? [] : readLedgerWrites(observer, names),
    listDlq(observer, names),
    remainingMessages(jsm, names),
    jsm.streams.info(kvStreamName(names.ledgerBucket)),
    jsm.streams.info(names.dlqStream),
  ]);
  // Inbox mode: the inbox is the ledger of record.
  const inboxRead = await inbox?.finish(acceptedIds(run.history.events));
  const ledger = inboxRead?.ledger ?? kvLedger;
  dir.writeLines("ledger.jsonl", ledger);
  dir.writeLines("dlq.jsonl", dlqEntries);
  dir.writeLines("remaining.jsonl", left.refs);
  return { ledger, dlqEntries, left, ledgerInfo, dlqInfo, inboxRead };
}

/** Check: the history against the ledger, the DLQ and the leftovers, with the faults' traces and the broker-loss evidence. */
function checkRun(ctx: RunContext, run: Run, end: Ending): Verdict {
  const { s, dir } = ctx;
  const { pool } = run.fleet;
  const { ledger, dlqEntries, left, workerStats } = end;
  const dlq: MessageRef[] = dlqEntries.map((e) => ({ msgId: e.originalHeaders["Nats-Msg-Id"]?.[0], orderId: e.orderId, seq: e.originalSeq }));
  const faults = summarizeFaults(run.nemesis.windows, pool.counters, workerStats, run.history.events);
  const effects = effectsOf(ledger, workerStats, pool.counters, run.sampler, end.produced);
  const traces =
    effects.redeliveries + effects.naks + effects.redeliveredPendingMax + effects.producerRetries + effects.duplicatePubAcks + effects.workerRestarts;
  const result = check({
    history: run.history.events,
    ledger,
    dlq,
    remaining: left.refs,
    expect: { ...scaleExpectations(s.expect, ctx.orders, s.orders), faultsMustHaveEffect: faultNames(s).length > 0 },
    observed: {
      faults: faults.observed,
      redeliveries: effects.redeliveries,
      effects: traces,
      quiet: end.quiet && !run.state.timedOut,
      cutShort: run.state.cutShort,
      unseenKinds: unseenKinds(s, faults),
    },
    broker: {
      acked: parseAckedWrites(dir.workerLogs()),
      end: {
        orders: { lastSeq: left.final.stream.lastSeq },
        ledger: { lastSeq: end.ledgerInfo.state.last_seq, held: new Map(ledger.map((w) => [w.seq, w.orderId])) },
        dlq: {
          lastSeq: end.dlqInfo.state.last_seq,
          held: new Map(dlqEntries.map((e) => [e.dlqSeq, e.orderId ?? `seq:${e.originalSeq}`])),
          complete: true,
        },
      },
    },
  });
  return { check: result, faults, effects };
}

function effectsOf(ledger: LedgerWrite[], workerStats: WorkerStats, counters: PoolCounters, sampler: Sampler, produced: ProduceStats): Effects {
  const ledgerWritesOnRedelivery = ledger.filter((w) => w.outcome.attempt > 1).length;
  return {
    // A suspect sent to the quarantine lane is a redelivery too, though the lane commits it on the
    // copy's first delivery: without it, a run whose kills only made suspects would show none.
    redeliveries: ledgerWritesOnRedelivery + workerStats.suppressedDuplicates + workerStats.quarantined,
    ledgerWritesOnRedelivery,
    suppressedDuplicates: workerStats.suppressedDuplicates,
    naks: workerStats.retried,
    redeliveredPendingMax: sampler.redeliveredMax,
    producerRetries: produced.retries,
    duplicatePubAcks: produced.duplicates,
    indeterminatePublishes: produced.indeterminate,
    workerRestarts: counters.restarts,
    workerErrors: workerStats.errors,
  };
}

/** Report: the result and the history. VALID needs the checker's verdict and, with `effects: true`, the effect checker's. */
function report(ctx: RunContext, run: Run, end: Ending, verdict: Verdict): RunOutput {
  const { s, options } = ctx;
  const { pool, autoscaler } = run.fleet;
  const timeline = buildTimeline(
    run.t0,
    run.history.events,
    end.ledger,
    end.dlqEntries.map((e) => Date.parse(e.deadLetteredAt)),
    run.workersEachSecond,
    pool.events,
  );
  return {
    history: run.history.events,
    workerEvents: pool.events,
    result: {
      scenario: s.name,
      file: s.file,
      seed: options.seed,
      unsafe: options.unsafe,
      orders: ctx.orders,
      servers: options.external ? 0 : run.rig.servers.length,
      valid: verdict.check.valid && (end.inboxRead?.result.effects?.valid ?? true),
      why: [...invalidReasons(verdict.check), ...effectReasons(end.inboxRead?.result)],
      elapsedMs: end.elapsedMs,
      quiet: end.quiet,
      timedOut: run.state.timedOut,
      check: verdict.check,
      faults: verdict.faults,
      effects: verdict.effects,
      producer: end.produced,
      workers: { ...end.workerStats, ...pool.counters },
      scaling: autoscaler?.events ?? [],
      timeline,
      final: end.left.final,
      startedAt: run.t0,
      inbox: end.inboxRead?.result,
      gateways: run.gateways && { urls: run.gateways.urls, ...run.gateways.counters },
    },
  };
}

/** Why the effect check failed (inbox runs with `effects: true`), as invalidReasons does for the checker. */
function effectReasons(inbox: InboxRunResult | undefined): string[] {
  const e = inbox?.effects;
  if (!e || e.valid) return [];
  const k = e.categories;
  return [`effects not exactly once: lost ${k.lostEffects.count}, duplicated ${k.duplicatedEffects.count}, unexpected ${k.unexpectedEffects.count}`];
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

/**
 * Runs `op` again while NATS answers with timeouts, for up to `forMs`: a cluster just started, or one
 * that lost a node, elects its leaders in seconds, longer on a loaded machine, and a request sent
 * meanwhile times out. Only for steps that can be repeated: ensuring the topology, reading what is left.
 */
async function whileTimingOut<T>(op: () => Promise<T>, forMs = 30_000): Promise<T> {
  const deadline = Date.now() + forMs;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (!(err instanceof TimeoutError) || Date.now() >= deadline) throw err;
      await sleep(500);
    }
  }
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
      this.onProgress?.({
        ...this.base(),
        ledgerWrites: this.ledgerCount ? this.inboxRows : ledger.state.messages,
        deadLettered: dlq.state.messages,
        backlog: b.pending + b.ackPending,
      });
    } catch {
      // A broker that is down right now is part of the scenario: skip this sample.
    } finally {
      this.busy = false;
    }
  }
}
