/**
 * The real system the model-based tests drive: a fresh nats-server, the topology, a TCP proxy between
 * the worker processes and the server, real `orderq work` processes, and a publisher that records a
 * chaos-checker history. In inbox mode also a private PostgreSQL (the chaos runs' InboxRun: the
 * example's schema, the inbox table, the stock before any order), whose inbox is then the ledger of
 * record and whose `orders`, `stock_movements` and `stock` the effect checker reads. `dispose()` kills every
 * process it started, also after a failure.
 */
import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type PubAck } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { MessageRef } from "../../src/core/chaos/checker.js";
import { TcpProxy } from "../../src/core/chaos/proxy.js";
import { connectNats } from "../../src/core/nats/connection.js";
import { listDlq } from "../../src/core/ops/dlq-admin.js";
import type { StoredDlqEntry } from "../../src/core/pipeline/dlq-entry.js";
import { errorMessage } from "../../src/core/base/errors.js";
import { History, type OpKind } from "../../src/core/pipeline/history.js";
import { readLedgerWrites, type LedgerWrite } from "../../src/core/pipeline/ledger.js";
import { acceptedIds, InboxRun } from "../../src/core/chaos/inbox-run.js";
import type { EffectsResult } from "../../src/core/chaos/effects.js";
import { orderSubject } from "../../src/core/nats/names.js";
import { guessOrderId } from "../../src/core/pipeline/order.js";
import { backlog, waitForQuiet } from "../../src/core/fleet/quiescence.js";
import { setTimeout as sleep } from "node:timers/promises";
import { NatsServer } from "../../src/core/fleet/nats-server.js";
import { DEFAULT_SETTINGS, ensureTopology, type TopologySettings } from "../../src/core/nats/topology.js";
import { workArgs, type WorkOptions } from "../../src/core/fleet/work-args.js";
import { startCli } from "./cli.js";

/** Small timings, so that a crashed worker's order comes back and a poison order dies within seconds. */
export const ACK_WAIT_MS = 1_000;
export const MAX_DELIVER = 3;
/**
 * In inbox mode a delivery that meets the database down fails and waits one ack wait for its
 * redelivery: a few deliveries more, so that a restart-db (up to a few seconds of outage) cannot
 * spend a good order's last one. A poison order still dies within a second or two (backoff ≤ 100 ms).
 */
export const INBOX_MAX_DELIVER = 10;
const settingsFor = (maxDeliver: number): TopologySettings => ({ ...DEFAULT_SETTINGS, ackWaitMs: ACK_WAIT_MS, maxDeliver });
const names = DEFAULT_SETTINGS.names;

/** Quiet must outlast one ack wait: an unacked order of a dead worker is redelivered after it. */
const QUIET_FOR_MS = ACK_WAIT_MS + 500;
const SETTLE_TIMEOUT_MS = 60_000;
/** An order left in ORDERS with nothing pending waits for a DLQ mover's orphan sweep (every 5 s). */
const SWEEP_WAIT_MS = 15_000;
const PUBLISH_RETRY_FOR_MS = 15_000;
/** How long a worker started to commit once and die is given to find an order. */
const CRASH_WAIT_MS = 4_000;

export interface WorkerProcess {
  child: ChildProcess;
  exited: Promise<void>;
  log: () => string;
}

export interface Observation {
  /** The KV ledger's writes, or in inbox mode the inbox rows in that shape (inboxLedger()). */
  ledger: LedgerWrite[];
  dlq: StoredDlqEntry[];
  /** What is still in ORDERS, by message id and order id. */
  remaining: MessageRef[];
  /** Inbox mode: the effect checker's verdict on the example's `orders`, `stock_movements` and `stock`. */
  effects?: EffectsResult;
}

export interface ModelSystemOptions {
  /** The broken build: workers commit with a plain put and skip the redelivery check (KV ledger only). */
  unsafe?: boolean;
  /** Inbox mode: a private PostgreSQL with examples/postgres-orders' schema, workers running `handler`. */
  inbox?: { handler: string; maxBatch: number; poolSize: number };
}

export const EXAMPLE_DIR = new URL("../../examples/postgres-orders/", import.meta.url).pathname;

/** The end of the id of an order whose handler throws after its writes on its first attempt. */
export const FLAKY_SUFFIX = "-flaky";

/**
 * Writes a handler module to `dir` that wraps one of examples/postgres-orders' handlers for the model:
 * an order marked `simulate: "poison"` fails every attempt (the example knows no such mark); any other
 * runs the example, then, if its id ends with FLAKY_SUFFIX and this is its first attempt, throws (a
 * transient error after the writes), else stays in the handler for `afterMs` (as a handler that calls
 * a slow API after its writes would), so that a kill or a database restart lands between the example's
 * writes and orderq's commit often enough to matter. Returns the module's path.
 */
export function writeModelHandler(dir: string, example: "handler.mjs" | "unsafe-handler.mjs", afterMs: number): string {
  const file = join(dir, `model-${example}`);
  writeFileSync(
    file,
    `// Written by test/support/model-system.ts: ${example} for the model-based test.
import { setTimeout as sleep } from "node:timers/promises";
import example from ${JSON.stringify(pathToFileURL(join(EXAMPLE_DIR, example)).href)};

export default async function modelHandler(order, ctx) {
  if (order.simulate === "poison") throw new Error(\`order \${order.id} rejected on attempt \${ctx.attempt} (poison)\`);
  await example(order, ctx);
  if (order.id.endsWith(${JSON.stringify(FLAKY_SUFFIX)}) && ctx.attempt === 1) throw new Error(\`order \${order.id} failed after its writes (flaky, attempt 1)\`);
  await sleep(${afterMs}, undefined, { signal: ctx.signal });
}
`,
  );
  return file;
}

/** Every message left in ORDERS belongs to an order with a ledger entry or a DLQ entry. */
function onlyResidue(seen: Observation): boolean {
  const done = new Set([...seen.ledger.map((w) => w.orderId), ...seen.dlq.flatMap((e) => [e.originalHeaders["Nats-Msg-Id"]?.[0], e.orderId])]);
  return seen.remaining.every((ref) => done.has(ref.msgId ?? ref.orderId));
}

export class ModelSystem {
  readonly history = new History();
  /** The workers the model knows of, in its order. */
  readonly workers: WorkerProcess[] = [];
  /** What was run, with times from the start: printed when a run fails. */
  readonly steps: string[] = [];
  private readonly started = new Set<WorkerProcess>();
  private readonly payloads = new Map<string, { kind: OpKind; payload: string }>();
  private readonly t0 = Date.now();
  private spawned = 0;
  /** Commands run so far. */
  commands = 0;

  private constructor(
    private readonly server: NatsServer,
    private readonly proxy: TcpProxy,
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly settings: TopologySettings,
    /** The broken build: workers commit with a plain put and skip the redelivery check. */
    private readonly unsafe: boolean,
    /** Inbox mode: the private PostgreSQL and what the workers need to use it. */
    private readonly inbox: InboxRun | undefined,
  ) {}

  static async start(options: ModelSystemOptions = {}): Promise<ModelSystem> {
    const settings = settingsFor(options.inbox ? INBOX_MAX_DELIVER : MAX_DELIVER);
    const server = await NatsServer.start();
    let inbox: InboxRun | undefined;
    try {
      if (options.inbox) {
        const { handler, maxBatch, poolSize } = options.inbox;
        inbox = await InboxRun.start(
          { file: "model test", inbox: { schema: join(EXAMPLE_DIR, "schema.sql"), effects: true, maxBatch, poolSize } },
          handler,
        );
      }
      const nc = await connectNats({ server: server.url, name: "orderq model test" });
      await ensureTopology(nc, settings);
      const proxy = await TcpProxy.start({ host: "127.0.0.1", port: server.port });
      return new ModelSystem(server, proxy, nc, jetstream(nc), await jetstreamManager(nc), settings, options.unsafe ?? false, inbox);
    } catch (err) {
      await inbox?.dispose();
      await server.dispose();
      throw err;
    }
  }

  /** Records a command (counted) or, with `note`, what happened inside one. */
  step(text: string): void {
    this.commands++;
    this.note(text);
  }

  note(text: string): void {
    this.steps.push(`${((Date.now() - this.t0) / 1000).toFixed(2)}s ${text}`);
  }

  /** Publishes with `Nats-Msg-Id` = id, retrying until a PubAck (the server is up between commands). */
  async publish(id: string, kind: OpKind, payload: string, resend = false): Promise<PubAck> {
    this.payloads.set(id, { kind, payload });
    this.history.record({ type: "invoke", id, kind, source: "web", resend, time: Date.now() });
    const deadline = Date.now() + PUBLISH_RETRY_FOR_MS;
    for (let tries = 1; ; tries++) {
      try {
        const ack = await this.js.publish(orderSubject(names, "web"), payload, { msgID: id, timeout: 1_000 });
        this.history.record({ type: "ok", id, seq: ack.seq, duplicate: ack.duplicate, tries, time: Date.now() });
        return ack;
      } catch (err) {
        if (Date.now() >= deadline) {
          this.history.record({ type: "indeterminate", id, error: errorMessage(err), tries, time: Date.now() });
          throw err;
        }
        await sleep(100);
      }
    }
  }

  /** The same message again: same id, same payload. */
  republish(id: string): Promise<PubAck> {
    const sent = this.payloads.get(id);
    if (!sent) throw new Error(`${id} was never published`);
    return this.publish(id, sent.kind, sent.payload, true);
  }

  /** A real `orderq work` process, connected through the proxy. */
  private spawnWorker(concurrency: number, extra: WorkOptions = {}): WorkerProcess {
    const n = ++this.spawned;
    const { ackWaitMs, maxDeliver, dupWindowMs } = this.settings;
    const { child, done } = startCli(
      workArgs({
        json: true,
        server: this.proxy.url,
        settings: { ackWaitMs, maxDeliver, dupWindowMs },
        concurrency,
        backoffBaseMs: 20,
        backoffMaxMs: 100,
        workerId: `m${n}`,
        seed: n,
        unsafe: this.unsafe || undefined,
        ...this.inbox?.workOptions,
        ...extra,
      }),
      this.inbox?.env,
    );
    // With --json a worker's fatal error is a JSON object on stdout; its log lines are on stderr.
    let output = "";
    child.stdout?.on("data", (d) => (output += d));
    child.stderr?.on("data", (d) => (output += d));
    const worker: WorkerProcess = { child, exited: done.then(() => undefined), log: () => output.trim() };
    this.started.add(worker);
    return worker;
  }

  startWorker(): void {
    this.workers.push(this.spawnWorker(4));
  }

  /** SIGKILL, and the exit seen (a stopped process dies of SIGKILL too). */
  async killWorker(index: number): Promise<void> {
    const [worker] = this.workers.splice(index, 1);
    worker.child.kill("SIGKILL");
    await worker.exited;
  }

  signalWorker(index: number, signal: "SIGSTOP" | "SIGCONT"): void {
    this.workers[index].child.kill(signal);
  }

  /**
   * A worker that SIGKILLs itself right after its first commit, before the ack, and a fresh order for
   * it. Another worker may take that order first: the crasher is then killed after a while instead.
   */
  async commitThenDie(publish: () => Promise<void>): Promise<boolean> {
    const crasher = this.spawnWorker(1, { crashAfterCommitRate: 1 });
    await publish();
    const exited = await Promise.race([crasher.exited.then(() => true), sleep(CRASH_WAIT_MS).then(() => false)]);
    if (!exited) {
      crasher.child.kill("SIGKILL");
      await crasher.exited;
      return false;
    }
    if (crasher.child.signalCode !== "SIGKILL") throw new Error(`the crasher exited with ${crasher.child.exitCode}: ${crasher.log()}`);
    return true;
  }

  /** kill -9, then a restart on the same port and store. */
  async restartServer(downMs: number): Promise<void> {
    await this.server.kill();
    await sleep(downMs);
    await this.server.restart();
  }

  /** kill -9 of the inbox's PostgreSQL (postmaster and children), then a restart on the same data dir. */
  async restartDb(downMs: number): Promise<void> {
    if (!this.inbox) throw new Error("restart-db needs inbox mode");
    await this.inbox.database.kill();
    await sleep(downMs);
    await this.inbox.database.restart();
  }

  cutNetwork(): void {
    this.proxy.cut();
  }

  healNetwork(): void {
    this.proxy.heal();
  }

  /**
   * Heals every fault, keeps a worker running as a supervisor would (one that dies, e.g. exit 3 for a
   * link cut during its start-up, is replaced; one that is alive but stuck is not), waits until nothing
   * is pending, in flight or waiting for a DLQ mover and ORDERS holds nothing unprocessed, stops the
   * workers, and observes.
   */
  async settle(): Promise<Observation> {
    this.healNetwork();
    for (const w of this.workers) w.child.kill("SIGCONT");
    // Only exit 3 (the broker unreachable at start) is a death a supervisor should simply repair; any
    // other exit is a bug the run must report rather than paper over.
    const unexpected: string[] = [];
    const keepOneAlive = () => {
      if (this.workers.some((w) => w.child.exitCode === null && w.child.signalCode === null)) return;
      const exits = this.workers.map((w) => w.child.signalCode ?? `exit ${w.child.exitCode}`);
      unexpected.push(
        ...this.workers.filter((w) => w.child.exitCode !== 3).map((w) => `${w.child.signalCode ?? `exit ${w.child.exitCode}`}: ${w.log()}`),
      );
      this.note(`  no worker alive${exits.length ? ` (${exits.join(", ")})` : ""}: starting one`);
      this.workers.length = 0;
      this.startWorker();
    };
    keepOneAlive();
    const watcher = setInterval(keepOneAlive, 250);
    const quiet = await waitForQuiet(this.jsm, names, { quietForMs: QUIET_FOR_MS, timeoutMs: SETTLE_TIMEOUT_MS, pollMs: 100 }).finally(() =>
      clearInterval(watcher),
    );
    if (unexpected.length > 0) throw new Error(`a worker died while the system settled: ${unexpected.join("; ")}`);
    if (!quiet) {
      const left = await backlog(this.jsm, names).catch((err: unknown) => errorMessage(err));
      throw new Error(`not quiet after ${SETTLE_TIMEOUT_MS / 1000} s: ${JSON.stringify(left)}`);
    }
    // Residue (a processed order's message that a kill -9 brought back) may stay; anything else must go.
    const deadline = Date.now() + SWEEP_WAIT_MS;
    while (Date.now() < deadline && !onlyResidue(await this.observe())) await sleep(250);
    await this.killAll();
    return this.observe();
  }

  /** The ledger of record (the KV ledger, or the inbox with the effect check), the DLQ and ORDERS. */
  async observe(): Promise<Observation> {
    const [record, dlq, remaining] = await Promise.all([this.ledgerOfRecord(), listDlq(this.nc, names), this.remaining()]);
    return { ...record, dlq, remaining };
  }

  /** The KV ledger's writes; in inbox mode the inbox rows as ledger writes, and the effect check. */
  private async ledgerOfRecord(): Promise<Pick<Observation, "ledger" | "effects">> {
    if (!this.inbox) return { ledger: await readLedgerWrites(this.nc, names) };
    const { ledger, result } = await this.inbox.finish(acceptedIds(this.history.events));
    return { ledger, effects: result.effects };
  }

  /** Messages still in ORDERS (work-queue retention: an acked order is gone), read by sequence. */
  private async remaining(): Promise<MessageRef[]> {
    const { state } = await this.jsm.streams.info(names.stream);
    const refs: MessageRef[] = [];
    for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
      const msg = await this.jsm.streams.getMessage(names.stream, { seq });
      if (msg) refs.push({ msgId: msg.header?.get("Nats-Msg-Id") || undefined, orderId: guessOrderId(msg.data) });
    }
    return refs;
  }

  /** Stderr of every worker that wrote any, for a failure report. */
  workerLogs(): string[] {
    return [...this.started].map((w, i) => (w.log() ? `worker ${i + 1}: ${w.log()}` : "")).filter(Boolean);
  }

  private async killAll(): Promise<void> {
    for (const w of this.started) {
      w.child.kill("SIGCONT");
      w.child.kill("SIGKILL");
    }
    await Promise.all([...this.started].map((w) => w.exited));
  }

  async dispose(): Promise<void> {
    await this.killAll();
    await this.proxy.close();
    await this.nc.close().catch(() => undefined);
    await this.server.dispose();
    await this.inbox?.dispose();
  }
}
