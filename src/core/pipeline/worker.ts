/**
 * One worker process's pipeline, following DESIGN.md's protocol step by step:
 * pull → validate → (redelivery?) ledger check → (suspect?) quarantine → handler with heartbeats →
 * commit → ack, and on failure: record the attempt → nak with backoff, or dead-letter then ack.
 *
 * A worker runs in one of two lanes. The main lane pulls ORDERS through the workers consumer, many
 * orders in flight. The quarantine lane (DESIGN.md, Crash isolation) pulls copies of suspects one at a
 * time, in a process of its own, so a crash there is charged to the one order that caused it.
 */
import type { MsgHdrs, NatsConnection } from "@nats-io/transport-node";
import {
  jetstream,
  jetstreamManager,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { ackedWriteLine } from "./acked-writes.js";
import { AttemptLog, type AttemptRecord } from "./attempts.js";
import { backoffDelay, type BackoffPolicy } from "./backoff.js";
import { deadLetter, type DeadLetterContext, type DeadLetterInput, type OutcomeCounter } from "./dead-letter.js";
import { DlqMover } from "./dlq-mover.js";
import { errorMessage } from "../base/errors.js";
import { isNonRetryable, NonRetryableError, type DbClient, type HandlerContext, type OrderHandler } from "./handler.js";
import { Ledger } from "./ledger.js";
import type { Outcome, OutcomeStore, RecordResult, TransactionalCommit } from "./outcome-store.js";
import type { Names } from "../nats/names.js";
import { guessOrderId, parseOrder, type Order } from "./order.js";
import type { Rng } from "../base/random.js";
import { setTimeout as sleep } from "node:timers/promises";
import { fetchTo, withdrawPull } from "../nats/client-internals.js";
import { HEARTBEAT_MIN_MS, PULL_EXPIRES_MS, SERVER_ACK_WAIT_MS } from "../base/defaults.js";
import { formatDuration } from "../base/duration.js";
import { isoNow } from "../base/clock.js";
import { leaseSettings, type LeaseSettings } from "../nats/topology.js";
import { followLink } from "../nats/connection.js";
import { copyToQuarantine, originalOf } from "./quarantine.js";
import { OrderContext, type ContextSource } from "./order-context.js";

/**
 * How often a worker re-reads its consumer's ack wait and max deliver (`topology ensure --update`
 * while it runs). Periodic, not per pull batch: a process whose slots are all held by slow handlers
 * does not pull at all — exactly when a shorter ack wait matters — and a read per pull would double
 * the requests of a fast pipeline. One request per process every second costs nothing.
 */
export const LEASE_REFRESH_MS = 1_000;

export type Lane = "main" | "quarantine";

export interface WorkerOptions {
  names: Names;
  /** Refuse orders with fields the order schema does not name (invalid-payload) instead of passing them on. */
  strictOrders?: boolean;
  workerId: string;
  /**
   * main: ORDERS through the workers consumer. quarantine: copies of suspects, one at a time
   * (`concurrency` is then 1 whatever it says: one order in flight is what isolates a crash).
   * Absent: main.
   */
  lane?: Lane;
  /** Orders in flight at once in this process. */
  concurrency: number;
  backoff: BackoffPolicy;
  /** Await a confirmed ack (double ack) instead of a fire-and-forget one. */
  confirmAck: boolean;
  /** Negative control: commit with a plain put instead of create-if-absent. */
  unsafe: boolean;
  /** Run this process's DLQ mover (on by default: every worker process runs one). */
  mover: boolean;
  /** After stop(), how long to wait for the orders in hand before giving up on their handlers, in ms. */
  drainTimeoutMs: number;
  /**
   * Inbox mode: the ledger of record is this store (the team's PostgreSQL), and each order's handler
   * runs in the transaction that inserts its outcome row. Owned by the caller, which closes it.
   */
  inbox?: OutcomeStore & TransactionalCommit;
  /** Where a handler's `ctx.log` lines go. */
  onHandlerLog?: (orderId: string, message: string) => void;
  /** Told of each infrastructure error (the order involved is left for redelivery). */
  onError?: (message: string) => void;
  /** Told of a change of the consumer's settings seen while running, and what it does to the orders in hand. */
  onNotice?: (message: string) => void;
  /** Told of every outcome decision (commit, ack, dead-letter, move, sweep): chaos evidence. */
  trace?: (line: string) => void;
  /** Called with the seconds from receiving an order to acking it, for each committed order. */
  observeLatency?: (seconds: number) => void;
  /** Told of each commit (by source) and each DLQ entry written (by source and reason), as the stats count them. */
  counter?: OutcomeCounter;
  faults: {
    /** Probability of SIGKILLing this process between commit and ack. */
    crashAfterCommitRate: number;
    /** Probability of committing and then never acking. */
    dropAckRate: number;
  };
}

export interface WorkerStats {
  /** Orders this process committed. */
  committed: number;
  /** Redeliveries of committed (or dead-lettered) work, absorbed by the ledger. */
  suppressedDuplicates: number;
  /** Handler errors (each is one failed attempt). */
  failedAttempts: number;
  /** Failed attempts given back with nak(delay). */
  retried: number;
  /** Deliveries given back with nak(delay) because another delivery of the order held it (inbox mode). */
  deferred: number;
  /** Orders this process wrote to the DLQ (itself or through its mover). */
  deadLettered: number;
  /** Of those, payloads that were not a valid order. */
  invalid: number;
  /** Suspects (previous delivery ended with no recorded failure) copied to the quarantine lane. */
  quarantined: number;
  /** Acks deliberately not sent (fault knob). */
  droppedAcks: number;
  /** Infrastructure errors (broker down, timeouts); the message is left for redelivery. */
  errors: number;
  inFlight: number;
  /** Orders whose handlers this worker gave up on — at the drain timeout, or after losing their lease — left for redelivery. */
  abandoned: number;
}

function describe(o: Outcome): string {
  return `${o.result} by ${o.worker} seq=${o.streamSeq} attempt=${o.attempt}`;
}

export function emptyStats(): WorkerStats {
  return {
    committed: 0,
    suppressedDuplicates: 0,
    failedAttempts: 0,
    retried: 0,
    deferred: 0,
    deadLettered: 0,
    invalid: 0,
    quarantined: 0,
    droppedAcks: 0,
    errors: 0,
    inFlight: 0,
    abandoned: 0,
  };
}

/** `ctx.db` without an inbox: a handler that needs a transaction says so on its first query. */
const NO_DB: DbClient = {
  // A handler written for the inbox fails the same way on every attempt: dead-letter it at once.
  query: () => Promise.reject(new NonRetryableError("ctx.db is only available in inbox mode (orderq work --inbox postgres://…)")),
};

/**
 * One delivery as the pipeline sees it, whichever lane delivered it: the ORDERS message it stands for
 * (a quarantine copy's original), so outcomes, attempts and DLQ entries name that message.
 */
interface Delivery {
  msg: JsMsg;
  /** The order's sequence in ORDERS. */
  readonly seq: number;
  readonly subject: string;
  /** The original's headers (its Nats-Msg-Id names its DLQ copy). */
  readonly headers?: MsgHdrs;
  /** This lane's delivery count, from 1 (JetStream's, of the consumer the lane pulls from). */
  readonly attempt: number;
}

/**
 * A main-lane delivery: the message is its own original. Its subject and headers are read only when
 * asked for — by a DLQ or quarantine copy, a few orders in a healthy stream — since decoding the
 * header block of every message (its Nats-Msg-Id) allocated more than any other step of the worker's
 * own; the client caches both once decoded.
 */
export class MainLaneDelivery implements Delivery {
  readonly seq: number;
  readonly attempt: number;

  constructor(readonly msg: JsMsg) {
    const info = msg.info;
    this.seq = info.streamSequence;
    this.attempt = info.deliveryCount;
  }

  get subject(): string {
    return this.msg.subject;
  }

  get headers(): MsgHdrs | undefined {
    return this.msg.headers;
  }
}

/** One message in flight: when it arrived and when its lease was last renewed (performance.now()). */
interface Held {
  started: number;
  contact: number;
  /**
   * Its handler's `ctx.signal`, made when the handler first reads it (most never do). Its own
   * controller, aborted by the drain timeout or a lost lease: not AbortSignal.any() with the worker's
   * long-lived signal, which keeps every signal made from it alive (Node 20, nodejs/node#55351).
   */
  abort?: AbortController;
  /** Why its lease is taken as lost, once it is. */
  leaseLost?: Error;
}

export class Worker {
  readonly stats = emptyStats();
  private readonly js: JetStreamClient;
  private jsm!: JetStreamManager;
  /** Pulls in progress (withdrawn on stop()) and the slots they have reserved but not yet filled. */
  private readonly openPulls = new Set<ConsumerMessages>();
  private reserved = 0;
  private mover?: DlqMover;
  private stopping = false;
  /** Each message in flight, for heartbeats, lease checks and latency. */
  private readonly inFlight = new Map<JsMsg, Held>();
  private slotFreed?: () => void;
  private heartbeat?: NodeJS.Timeout;
  private leaseRefresh?: NodeJS.Timeout;
  /** The consumer's ack wait and the workers consumer's max deliver, as the server last said. */
  private ackWaitMs = SERVER_ACK_WAIT_MS;
  private maxDeliver = -1;
  private readonly concurrency: number;
  /**
   * The fewest free slots worth a pull. Small pulls cost a request each, so the loop waits for an
   * eighth of the slots (unless nothing is held): a quarter leaves the pipeline too empty, a sixteenth
   * is no faster (README, Performance).
   */
  private readonly minBatch: number;
  private readonly lane: Lane;
  private ledger!: OutcomeStore;
  private dlq!: DeadLetterContext;
  /** Every handler's `ctx.signal`: aborted when the drain timeout gives up on them. */
  private readonly handlersAbort = new AbortController();
  /** The connection is down: heartbeats sent meanwhile would reach nobody. */
  private linkDown = false;
  private drainTimer?: NodeJS.Timeout;
  /** What every handler's `ctx` refers to (its signal, its log). */
  private readonly contextSource: ContextSource<JsMsg> = {
    signal: (msg) => this.handlerSignal(msg),
    log: (orderId, message) => this.options.onHandlerLog?.(orderId, message),
  };

  constructor(
    private readonly nc: NatsConnection,
    private readonly options: WorkerOptions,
    private readonly handler: OrderHandler,
    private readonly rng: Rng,
  ) {
    this.js = jetstream(nc);
    this.lane = options.lane ?? "main";
    this.concurrency = this.lane === "quarantine" ? 1 : options.concurrency;
    this.minBatch = Math.max(1, Math.floor(this.concurrency / 8));
  }

  /** Runs until stop() and every order in flight is finished. */
  async run(): Promise<void> {
    const { names } = this.options;
    const { lane } = this;
    this.jsm = await jetstreamManager(this.nc, { checkAPI: false });
    ({ ackWaitMs: this.ackWaitMs, maxDeliver: this.maxDeliver } = await leaseSettings(this.jsm, names, lane));
    this.ledger = this.options.inbox ?? (await Ledger.open(this.nc, names, this.options.unsafe));
    let link: { stop(): void } | undefined;
    // A failure on the way (the broker gone at start) must not leave the publisher and the timer running.
    try {
      this.dlq = {
        js: this.js,
        names,
        ledger: this.ledger,
        attempts: await AttemptLog.open(this.nc, names),
        worker: this.options.workerId,
        trace: this.options.trace,
        maxPayload: this.nc.info?.max_payload,
        counter: this.options.counter,
      };
      if (this.options.mover) {
        this.mover = new DlqMover(this.nc, this.dlq, {
          onMove: (result) => {
            if (result === "moved") this.stats.deadLettered++;
          },
          onError: (err) => this.fail(err),
        });
        await this.mover.start();
      }
      this.startHeartbeats();
      link = this.watchLink();
      // The server's settings rule: an operator may change them while this process runs.
      this.leaseRefresh = setInterval(() => void this.refreshLease(), LEASE_REFRESH_MS);

      const consumer =
        lane === "quarantine"
          ? await this.js.consumers.get(names.quarantineStream, names.quarantineConsumer)
          : await this.js.consumers.get(names.stream, names.consumer);
      await this.pullLoop(consumer);
      while (this.inFlight.size > 0 && !this.handlersAbort.signal.aborted) await this.slotFree();
      await this.mover?.stop();
    } finally {
      // Also on a failed run: a pending drain timer would keep the process alive for its full length.
      link?.stop();
      clearTimeout(this.drainTimer);
      clearInterval(this.heartbeat);
      clearInterval(this.leaseRefresh);
      if (!this.options.inbox) await this.ledger.close();
    }
  }

  /**
   * Pulls only as many orders as there are free slots, so every order this process holds is in
   * flight: it gets in-progress acks, and none waits unseen in a client buffer while its ack wait
   * runs out (consume() prefetches; a handler slower than the ack wait then ran orders twice).
   * Several pulls may be open at once — slots are reserved when a pull is sent and given back when
   * it ends short — which keeps the pipeline full without ever holding more than `concurrency`.
   * On stop nothing is handed back: an order delivered here is processed, since a nak would spend a
   * delivery and, on the last one, send a healthy order to the DLQ.
   */
  private async pullLoop(consumer: Consumer): Promise<void> {
    const { concurrency, minBatch } = this;
    const pulls = new Set<Promise<void>>();
    while (!this.stopping) {
      const free = concurrency - this.inFlight.size - this.reserved;
      if (free < minBatch && this.inFlight.size + this.reserved > 0) {
        await this.slotFree();
        continue;
      }
      this.reserved += free;
      const pull = this.pull(consumer, free).finally(() => pulls.delete(pull));
      pulls.add(pull);
    }
    await Promise.all(pulls);
  }

  private async pull(consumer: Consumer, count: number): Promise<void> {
    let received = 0;
    let batch: ConsumerMessages | undefined;
    try {
      batch = await fetchTo(consumer, { max_messages: count, expires: PULL_EXPIRES_MS }, (msg) => {
        received++;
        this.reserved--;
        this.start(msg);
      });
      this.openPulls.add(batch);
      if (this.stopping) withdrawPull(batch);
      // closed() resolves with what ended the pull, when something did (where the iterator threw it).
      const ended = await batch.closed();
      if (ended) throw ended;
    } catch (err) {
      // Broker restarting, leader moving, connection cut: count it, pause, pull again.
      this.fail(err);
      await sleep(250);
    } finally {
      if (batch) this.openPulls.delete(batch);
      this.reserved -= count - received;
      this.wake();
    }
  }

  private start(msg: JsMsg): void {
    const now = performance.now();
    this.inFlight.set(msg, { started: now, contact: now });
    this.stats.inFlight = this.inFlight.size;
    void this.process(msg); // never rejects; it frees the slot itself (finished)
  }

  /**
   * An order is done with (whatever became of it): its slot is free. The loops waiting on slotFree()
   * are woken only when they can act — the pull loop once a pull is worth sending, the drain when
   * nothing is held or when stopping — not for every order: each wake-up cost a promise and a turn of
   * the pull loop that then went back to waiting.
   */
  private finished(msg: JsMsg): void {
    this.inFlight.delete(msg);
    const held = (this.stats.inFlight = this.inFlight.size);
    if (this.stopping || held === 0 || this.concurrency - held - this.reserved >= this.minBatch) this.wake();
  }

  /** Resolves when a slot is freed or a pull ends. */
  private slotFree(): Promise<void> {
    return new Promise<void>((resolve) => (this.slotFreed = resolve));
  }

  private wake(): void {
    this.slotFreed?.();
    this.slotFreed = undefined;
  }

  /**
   * Graceful stop: no new pulls; the open ones are withdrawn (withdrawPull in client-internals.ts), and
   * every order they deliver meanwhile is processed. run() resolves after them — or, once `drainTimeoutMs` has
   * passed, gives up on the handlers still running: their `ctx.signal` is aborted and their orders are
   * left unacked, to be redelivered after the ack wait.
   */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    for (const pull of this.openPulls) withdrawPull(pull);
    this.drainTimer = setTimeout(() => {
      this.stats.abandoned += this.inFlight.size;
      this.options.onError?.(
        `drain timeout: ${this.inFlight.size} order(s) still being handled after ${this.options.drainTimeoutMs} ms; their handlers are aborted`,
      );
      const reason = new Error("the worker stopped waiting for its handlers (drain timeout)");
      this.handlersAbort.abort(reason);
      for (const held of this.inFlight.values()) held.abort?.abort(reason);
      this.wake();
    }, this.options.drainTimeoutMs);
    this.wake();
  }

  /**
   * One timer for all messages: in-progress acks every ack-wait/3 keep a slow order's lease, while a
   * dead process stops sending them and loses it within one ack wait.
   */
  private startHeartbeats(): void {
    clearInterval(this.heartbeat);
    const beat = Math.max(HEARTBEAT_MIN_MS, Math.floor(this.ackWaitMs / 3));
    this.heartbeat = setInterval(() => this.sendHeartbeats(beat), beat);
  }

  /**
   * Renews the leases older than `olderThanMs` — after the check that the server may already have
   * let one go: a lease whose last renewal is a full ack wait old (this process was stalled or
   * stopped, or its connection was down that long) may have been redelivered elsewhere, and its
   * handler's `ctx.signal` is aborted. While the connection is down nothing is renewed: a heartbeat
   * sent then reaches nobody, and the next one goes out on reconnect.
   */
  private sendHeartbeats(olderThanMs: number): void {
    const now = performance.now();
    for (const [msg, held] of this.inFlight) {
      if (now - held.contact >= this.ackWaitMs) this.loseLease(msg, held, now);
      if (!this.linkDown && now - held.contact >= olderThanMs) {
        msg.working();
        held.contact = now;
      }
    }
  }

  /** Aborts the handler's `ctx.signal` of an order whose lease may be gone (once). */
  private loseLease(msg: JsMsg, held: Held, now: number): void {
    if (held.leaseLost) return;
    const silentMs = Math.round(now - held.contact);
    this.options.trace?.(`lease-lost seq=${msg.info.streamSequence} silent=${silentMs}ms ackWait=${this.ackWaitMs}ms`);
    held.leaseLost = new Error(
      `the worker lost this order's lease: no renewal could reach the broker for ${silentMs} ms (ack wait ${this.ackWaitMs} ms); it may be redelivered to another worker`,
    );
    held.abort?.abort(held.leaseLost);
  }

  /**
   * Follows the connection: while it is down heartbeats are held back; on reconnect every lease is
   * checked and renewed at once. Returns the watcher's stop.
   */
  private watchLink(): { stop(): void } {
    return followLink(this.nc, (state) => {
      this.linkDown = state !== "connected";
      if (!this.linkDown) this.sendHeartbeats(0);
    });
  }

  /** The handler's `ctx.signal` for the order in `msg`: aborted by the drain timeout or by its lease's loss. */
  private handlerSignal(msg: JsMsg): AbortSignal {
    const held = this.inFlight.get(msg);
    if (!held || this.handlersAbort.signal.aborted) return this.handlersAbort.signal;
    if (!held.abort) {
      held.abort = new AbortController();
      if (held.leaseLost) held.abort.abort(held.leaseLost);
    }
    return held.abort.signal;
  }

  /**
   * Follows the server's ack wait and max deliver. A shorter ack wait renews every lease at once (and
   * then every new ack-wait/3); an order whose last renewal is already older than the new ack wait may
   * have lost its lease in between — it can then run twice (the ledger keeps one commit) — and that
   * is logged with the count, as is every change.
   */
  private async refreshLease(): Promise<void> {
    let now: LeaseSettings;
    try {
      now = await leaseSettings(this.jsm, this.options.names, this.lane);
    } catch {
      return; // broker briefly away: keep the last known settings; the pulls report the outage
    }
    const change = describeLeaseChange(
      { ackWaitMs: this.ackWaitMs, maxDeliver: this.maxDeliver },
      now,
      [...this.inFlight.values()],
      performance.now(),
    );
    if (!change) return;
    ({ ackWaitMs: this.ackWaitMs, maxDeliver: this.maxDeliver } = now);
    if (now.ackWaitMs !== change.before.ackWaitMs) {
      this.sendHeartbeats(0);
      this.startHeartbeats();
    }
    this.options.onNotice?.(change.message);
  }

  private fail(err: unknown): void {
    this.stats.errors++;
    this.options.onError?.(errorMessage(err));
  }

  private async process(msg: JsMsg): Promise<void> {
    try {
      // A quarantine copy stands for its ORDERS original: outcomes, attempts and DLQ entries name that.
      const d: Delivery = this.lane === "quarantine" ? { msg, ...originalOf(msg), attempt: msg.info.deliveryCount } : new MainLaneDelivery(msg);
      const parsed = parseOrder(msg.data, this.options.strictOrders);
      if (!parsed.ok) {
        await this.toDlq(d, {
          reason: "invalid-payload",
          lastError: `invalid-payload: ${parsed.reason}`,
          displayOrderId: guessOrderId(msg.data),
        });
        this.stats.invalid++;
        return;
      }
      await this.processOrder(d, parsed.order);
    } catch (err) {
      // Broker unreachable, a timeout...: leave the message unacked; its redelivery is absorbed.
      this.fail(err);
    } finally {
      this.finished(msg);
    }
  }

  /**
   * A valid order, from the ledger check to the ack. Only a redelivery (or a quarantine copy) pays
   * for the reads before the handler; a first delivery in the main lane goes straight to it.
   */
  private async processOrder(d: Delivery, order: Order): Promise<void> {
    const { lane } = this;
    const { unsafe } = this.options;
    const redelivery = d.attempt > 1 || lane === "quarantine";
    // A first delivery cannot be committed yet (publishing is de-duplicated), so only a redelivery
    // pays for this read; the commit's create-if-absent guards every case anyway. A quarantine copy
    // reads it too: the delivery that lost its lease may have committed after all.
    // The unsafe negative control skips it, so a redelivery of committed work is written again
    // (with a plain put) and the chaos checker must see the duplicate.
    const existing = redelivery && !unsafe ? await this.ledger.get(order.id) : undefined;
    if (existing) {
      this.options.trace?.(`ledger-has ${order.id} seq=${d.seq} attempt=${d.attempt} lane=${lane}: ${describe(existing)}`);
      await this.onOutcomeExists(d, order, existing);
      return;
    }
    // Crash isolation (DESIGN.md). The previous delivery ended with no recorded failure (or deferral):
    // its process died or lost the lease, maybe because of an order beside it. Charging it here could
    // send a healthy order to the DLQ, so it is retried alone in the quarantine lane instead.
    if (lane === "main" && d.attempt > 1 && !(await this.dlq.attempts.endedWithRecord(d.seq, d.attempt - 1))) {
      await this.quarantine(d, order);
      return;
    }
    // In the lane, where the order ran alone, every earlier delivery without a record is a crash of
    // its own. Once it has crashed the lane max-deliver times, it is not run again.
    if (lane === "quarantine" && d.attempt > 1 && this.maxDeliver > 0) {
      const crashes = d.attempt - 1 - (await this.dlq.attempts.laneRecords(d.seq));
      if (crashes >= this.maxDeliver) {
        await this.crashedWorker(d, order, crashes);
        return;
      }
    }
    if (this.options.inbox) {
      await this.processInInbox(d, order, this.options.inbox);
      return;
    }
    try {
      await this.handler(order, this.handlerContext(d, order));
    } catch (err) {
      await this.onHandlerError(d, order, err);
      return;
    }
    const outcome = this.committedOutcome(d);
    // The first try inline, the retry loop only after a failure: one async frame less per order.
    const since = Date.now();
    let commit: RecordResult;
    try {
      commit = ownWriteAsWritten(await this.ledger.record(order.id, outcome), outcome);
    } catch (err) {
      commit = await this.commitRetried(order.id, outcome, since, err);
    }
    if (!commit.written && commit.existing?.result === "dead-lettered") {
      // A DLQ move (the advisory's mover, the orphan sweep) claimed the order while this delivery
      // ran, and may have died or failed before its copy: an ack now would delete an order that is
      // neither committed nor in the DLQ. Finish the move as it began; its copy is de-duplicated.
      this.options.trace?.(`commit ${order.id} seq=${d.seq} attempt=${d.attempt}: claimed by a DLQ move, ${describe(commit.existing)}`);
      await this.toDlq(d, { reason: commit.existing.reason ?? "max-deliveries", lastError: commit.existing.error, validOrderId: order.id });
      return;
    }
    // The key exists but its outcome could not be read: it may be an unfinished DLQ move. Leave the
    // order unacked; its redelivery reads the ledger again.
    if (!commit.written && !commit.existing) throw new Error(`the ledger holds ${order.id} but its outcome could not be read`);
    if (commit.written) this.countCommit(order);
    else this.stats.suppressedDuplicates++; // another delivery won the race
    if (commit.written && commit.seq !== undefined) this.options.trace?.(ackedWriteLine("ledger", commit.seq, order.id));
    this.options.trace?.(
      `commit ${order.id} seq=${d.seq} attempt=${d.attempt}: ${commit.written ? "written" : `exists, ${commit.existing ? describe(commit.existing) : "not read back"}`}`,
    );
    const acked = this.afterCommit(d.msg, order, commit.written);
    if (acked) await acked;
  }

  /**
   * A suspect leaves the main lane: copied to the quarantine stream (de-duplicated, so a retry after a
   * crash right here stays single), then acked here. Copy first: under work-queue retention the ack
   * deletes the original.
   */
  private async quarantine(d: Delivery, order: Order): Promise<void> {
    await copyToQuarantine(this.js, this.options.names, d, d.msg.data);
    this.stats.quarantined++;
    this.options.trace?.(`quarantine ${order.id} seq=${d.seq} attempt=${d.attempt}: no failure recorded for attempt ${d.attempt - 1}`);
    await this.ack(d.msg);
  }

  /**
   * Dead-letters a suspect that crashed its quarantine lane max-deliver times: reason crashed-worker,
   * with its crash count, apart from the failures its handler did report (the entry's attempts).
   */
  private async crashedWorker(d: Delivery, order: Order, crashes: number): Promise<void> {
    await this.toDlq(
      d,
      {
        reason: "crashed-worker",
        lastError: `the worker died or lost its lease ${crashes} time(s) while processing this order alone in the quarantine lane`,
        validOrderId: order.id,
        crashes,
      },
      d.attempt - 1,
    );
  }

  /**
   * Inbox mode: the inbox row is inserted first, in the transaction the handler then writes through;
   * the ack comes after the commit. A crash between the two is a redelivery that finds the row.
   */
  private async processInInbox(d: Delivery, order: Order, inbox: TransactionalCommit): Promise<void> {
    const result = await inbox.run(order.id, this.committedOutcome(d), (db) => this.handler(order, this.handlerContext(d, order, db)));
    this.options.trace?.(`inbox ${order.id} seq=${d.seq} attempt=${d.attempt}: ${result.kind}`);
    switch (result.kind) {
      case "committed":
        this.countCommit(order);
        await this.afterCommit(d.msg, order, true);
        return;
      case "exists":
        await this.onOutcomeExists(d, order, result.existing);
        return;
      case "busy":
        // Another delivery of this order is in a transaction now: hand this one back for later.
        // Recorded first, so that the next delivery does not take this one for a crash.
        this.stats.deferred++;
        await this.recordAttempt(d, order, { error: "another delivery of this order held it (deferred)", errorClass: "Deferred", deferred: true });
        d.msg.nak(backoffDelay(d.attempt, this.options.backoff, this.rng));
        return;
      case "failed":
        await this.onHandlerError(d, order, result.error);
        return;
    }
  }

  /** A redelivery of an order with an outcome: committed work is acked, a begun dead-letter move finished. */
  private async onOutcomeExists(d: Delivery, order: Order, existing: Outcome): Promise<void> {
    if (existing.result === "committed") {
      this.stats.suppressedDuplicates++;
      await this.ack(d.msg);
      return;
    }
    // A dead-letter move died between its claim and its ack: finish it as it began.
    await this.toDlq(d, { reason: existing.reason ?? "max-deliveries", lastError: existing.error, validOrderId: order.id });
  }

  private countCommit(order: Order): void {
    this.stats.committed++;
    this.options.counter?.committed(order.source);
  }

  private committedOutcome(d: Delivery): Outcome {
    return {
      result: "committed",
      worker: this.options.workerId,
      attempt: d.attempt,
      streamSeq: d.seq,
      at: isoNow(),
      ...(this.lane === "quarantine" && { lane: "quarantine" as const }),
    };
  }

  private handlerContext(d: Delivery, order: Order, db: DbClient = NO_DB): HandlerContext {
    return new OrderContext(this.contextSource, d.msg, d.attempt, order.id, db);
  }

  /**
   * After the commit: the fault knobs, the ack, and the latency of a commit this delivery made.
   * Returns a promise only for a confirmed ack (`confirmAck`): the usual fire-and-forget ack is sent
   * at once, and not awaiting anything spares the hot path a promise and a microtask per order.
   */
  private afterCommit(msg: JsMsg, order: Order, written: boolean): Promise<void> | undefined {
    const { crashAfterCommitRate, dropAckRate } = this.options.faults;
    if (crashAfterCommitRate > 0 && this.rng() < crashAfterCommitRate) process.kill(process.pid, "SIGKILL");
    if (dropAckRate > 0 && this.rng() < dropAckRate) {
      this.stats.droppedAcks++;
      this.options.trace?.(`drop-ack ${order.id} seq=${msg.info.streamSequence}`);
      return undefined;
    }
    const { observeLatency } = this.options;
    const started = observeLatency && written ? this.inFlight.get(msg)?.started : undefined;
    const observe = started === undefined ? undefined : () => observeLatency?.((performance.now() - started) / 1000);
    if (this.options.confirmAck) return msg.ackAck().then(observe);
    msg.ack();
    observe?.();
    return undefined;
  }

  /**
   * The commit after its first try (begun at `since`, Date.now() ms) failed with `firstError`, retried
   * while the broker is unreachable for up to one ack wait from that first try (the order keeps its
   * lease meanwhile): the handler's work is done, and giving up would spend a delivery — on the last
   * one, a processed order would be dead-lettered. A retry whose earlier try did land finds its own
   * outcome in the ledger, and counts as written (ownWriteAsWritten).
   */
  private async commitRetried(orderId: string, outcome: Outcome, since: number, firstError: unknown): Promise<RecordResult> {
    const deadline = since + this.ackWaitMs;
    let err = firstError;
    for (let pause = 100; ; pause = Math.min(1000, pause * 2)) {
      if (Date.now() + pause > deadline) throw err;
      this.fail(err);
      await sleep(pause);
      try {
        return ownWriteAsWritten(await this.ledger.record(orderId, outcome), outcome);
      } catch (retryErr) {
        err = retryErr;
      }
    }
  }

  private async onHandlerError(d: Delivery, order: Order, err: unknown): Promise<void> {
    const { attempt } = d;
    const error = errorMessage(err);
    const held = this.inFlight.get(d.msg);
    if (held?.leaseLost && held.abort?.signal.reason === held.leaseLost) {
      // The handler gave up on the lost lease's abort. The broker may have handed the order to another
      // worker already, so no nak (it would cut that delivery's lease short) and no dead-letter on the
      // broker's behalf; a record that is not a failure, so the next delivery (here or in the lane)
      // does not take this one for a crash and charges nothing.
      this.options.trace?.(`lease-lost ${order.id} seq=${d.seq} attempt=${attempt}: handler gave up (${error}); left for redelivery`);
      if (!this.handlersAbort.signal.aborted) this.stats.abandoned++; // else the drain timeout counted it
      await this.recordAttempt(d, order, { error: `${held.leaseLost.message} (${error})`, errorClass: "LeaseLost", deferred: true });
      return;
    }
    this.stats.failedAttempts++;
    // Recorded before the nak: the redelivery reads it to tell a failure from a crash (a suspect).
    await this.recordAttempt(d, order, { error, errorClass: err instanceof Error ? err.name : typeof err });
    const retryable = !isNonRetryable(err);
    const attemptsLeft = this.maxDeliver < 0 || attempt < this.maxDeliver;
    if (retryable && attemptsLeft) {
      this.stats.retried++;
      d.msg.nak(backoffDelay(attempt, this.options.backoff, this.rng));
      return;
    }
    await this.toDlq(d, {
      reason: retryable ? "max-deliveries" : "non-retryable",
      lastError: error,
      validOrderId: order.id,
    });
  }

  private async recordAttempt(d: Delivery, order: Order, what: Pick<AttemptRecord, "error" | "errorClass" | "deferred">): Promise<void> {
    await this.dlq.attempts.record({
      orderId: order.id,
      streamSeq: d.seq,
      attempt: d.attempt,
      ...(this.lane === "quarantine" && { lane: "quarantine" as const }),
      worker: this.options.workerId,
      ...what,
      at: new Date().toISOString(),
    });
  }

  /** Copy first, then ack: under work-queue retention an ack (or term) deletes the original. */
  private async toDlq(
    d: Delivery,
    input: Pick<DeadLetterInput, "reason" | "lastError" | "validOrderId" | "displayOrderId" | "crashes">,
    deliveries = d.attempt,
  ): Promise<void> {
    const result = await deadLetter(this.dlq, {
      ...input,
      subject: d.subject,
      streamSeq: d.seq,
      payload: d.msg.data,
      headers: d.headers,
      deliveries,
    });
    if (result === "dead-lettered") this.stats.deadLettered++;
    else this.stats.suppressedDuplicates++;
    await this.ack(d.msg);
  }

  private async ack(msg: JsMsg): Promise<void> {
    if (this.options.confirmAck) await msg.ackAck();
    else msg.ack();
  }
}

/** A create that found `mine` already there (an earlier try of this commit landed) counts as written. */
export function ownWriteAsWritten(result: RecordResult, mine: Outcome): RecordResult {
  return !result.written && result.existing && isOwnWrite(result.existing, mine) ? { written: true } : result;
}

/**
 * Whether the outcome the ledger holds is the one this commit wrote (an earlier try of the same
 * commit landed, and its answer was lost). The result must match too: the DLQ mover of the same
 * process writes its dead-letter claim under the same worker id, stream sequence and delivery, and
 * counting that as a commit would report orders committed that the ledger holds as dead-lettered.
 */
export function isOwnWrite(existing: Outcome, mine: Outcome): boolean {
  return (
    existing.result === mine.result &&
    existing.worker === mine.worker &&
    existing.streamSeq === mine.streamSeq &&
    existing.attempt === mine.attempt &&
    existing.lane === mine.lane
  );
}

/** A change of the settings a worker follows, described for the log; see describeLeaseChange. */
export interface LeaseChange {
  before: LeaseSettings;
  message: string;
  /** Orders in hand whose last lease renewal is older than the new ack wait. */
  atRisk: number;
}

/**
 * Compares the settings a worker held with what the server says now. `held` are the orders in hand
 * (their last renewal, performance.now() ms), `now` the current time on that clock. Undefined when
 * nothing changed. Pure, for the tests.
 */
export function describeLeaseChange(before: LeaseSettings, after: LeaseSettings, held: { contact: number }[], now: number): LeaseChange | undefined {
  const parts: string[] = [];
  let atRisk = 0;
  if (after.ackWaitMs !== before.ackWaitMs) {
    parts.push(
      `ack wait ${formatDuration(before.ackWaitMs)} → ${formatDuration(after.ackWaitMs)} (in-progress acks now every ${formatDuration(Math.max(HEARTBEAT_MIN_MS, Math.floor(after.ackWaitMs / 3)))})`,
    );
    atRisk = held.filter((h) => now - h.contact >= after.ackWaitMs).length;
  }
  if (after.maxDeliver !== before.maxDeliver) parts.push(`max deliver ${before.maxDeliver} → ${after.maxDeliver}`);
  if (parts.length === 0) return undefined;
  const risk =
    atRisk > 0
      ? `; ${atRisk} order(s) in hand last renewed their lease longer ago than the new ack wait: they may be redelivered while their handlers still run (the ledger keeps one commit)`
      : "";
  return { before, atRisk, message: `the consumer's settings changed: ${parts.join(", ")}${risk}` };
}
