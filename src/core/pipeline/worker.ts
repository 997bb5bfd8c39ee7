/**
 * One worker process's pipeline, following DESIGN.md's protocol step by step:
 * pull → validate → (redelivery?) ledger check → handler with heartbeats → commit → ack,
 * and on failure: record the attempt → nak with backoff, or dead-letter then ack.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, type Consumer, type ConsumerMessages, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { ackedWriteLine } from "./acked-writes.js";
import { AttemptLog } from "./attempts.js";
import { backoffDelay, type BackoffPolicy } from "./backoff.js";
import { deadLetter, type DeadLetterContext, type DeadLetterInput } from "./dead-letter.js";
import { DlqMover } from "./dlq-mover.js";
import { errorMessage } from "../base/errors.js";
import { isNonRetryable, NonRetryableError, type DbClient, type HandlerContext, type OrderHandler } from "./handler.js";
import { Ledger } from "./ledger.js";
import type { Outcome, OutcomeStore, RecordResult, TransactionalCommit } from "./outcome-store.js";
import type { Names } from "../nats/names.js";
import { guessOrderId, parseOrder, type Order } from "./order.js";
import type { Rng } from "../base/random.js";
import { setTimeout as sleep } from "node:timers/promises";
import { withdrawPull } from "../nats/client-internals.js";
import { HEARTBEAT_MIN_MS, PULL_EXPIRES_MS, SERVER_ACK_WAIT_MS } from "../base/defaults.js";
import { consumerAckWaitMs } from "../nats/topology.js";

export interface WorkerOptions {
  names: Names;
  /** Refuse orders with fields the order schema does not name (invalid-payload) instead of passing them on. */
  strictOrders?: boolean;
  workerId: string;
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
  /** Told of every outcome decision (commit, ack, dead-letter, move, sweep): chaos evidence. */
  trace?: (line: string) => void;
  /** Called with the seconds from receiving an order to acking it, for each committed order. */
  observeLatency?: (seconds: number) => void;
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
  /** Acks deliberately not sent (fault knob). */
  droppedAcks: number;
  /** Infrastructure errors (broker down, timeouts); the message is left for redelivery. */
  errors: number;
  inFlight: number;
  /** Orders still being handled when the drain timeout gave up on them (left for redelivery). */
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

export class Worker {
  readonly stats = emptyStats();
  private readonly js: JetStreamClient;
  /** Pulls in progress (withdrawn on stop()) and the slots they have reserved but not yet filled. */
  private readonly openPulls = new Set<ConsumerMessages>();
  private reserved = 0;
  private mover?: DlqMover;
  private stopping = false;
  /** Start time (performance.now()) of each message in flight, for heartbeats and latency. */
  private readonly inFlight = new Map<JsMsg, number>();
  private slotFreed?: () => void;
  private heartbeat?: NodeJS.Timeout;
  private ackWaitMs = SERVER_ACK_WAIT_MS;
  private maxDeliver = -1;
  private ledger!: OutcomeStore;
  private dlq!: DeadLetterContext;
  /** Every handler's `ctx.signal`: aborted when the drain timeout gives up on them. */
  private readonly handlersAbort = new AbortController();
  private drainTimer?: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly options: WorkerOptions,
    private readonly handler: OrderHandler,
    private readonly rng: Rng,
  ) {
    this.js = jetstream(nc);
  }

  /** Runs until stop() and every order in flight is finished. */
  async run(): Promise<void> {
    const { names } = this.options;
    ({ ackWaitMs: this.ackWaitMs, maxDeliver: this.maxDeliver } = await consumerAckWaitMs(this.nc, names));
    this.ledger = this.options.inbox ?? (await Ledger.open(this.nc, names, this.options.unsafe));
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
      // One timer for all messages: in-progress acks every ack-wait/3 keep a slow order's lease,
      // while a dead process stops sending them and loses it within one ack wait.
      const beat = Math.max(HEARTBEAT_MIN_MS, Math.floor(this.ackWaitMs / 3));
      this.heartbeat = setInterval(() => this.sendHeartbeats(beat), beat);

      const consumer = await this.js.consumers.get(names.stream, names.consumer);
      await this.pullLoop(consumer);
      while (this.inFlight.size > 0 && !this.handlersAbort.signal.aborted) await this.slotFree();
      await this.mover?.stop();
    } finally {
      // Also on a failed run: a pending drain timer would keep the process alive for its full length.
      clearTimeout(this.drainTimer);
      clearInterval(this.heartbeat);
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
    const { concurrency } = this.options;
    // Small pulls cost a request each, so wait for an eighth of the slots (unless nothing is held):
    // a quarter leaves the pipeline too empty, a sixteenth is no faster (README, Performance).
    const minBatch = Math.max(1, Math.floor(concurrency / 8));
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
      batch = await consumer.fetch({ max_messages: count, expires: PULL_EXPIRES_MS });
      this.openPulls.add(batch);
      if (this.stopping) withdrawPull(batch);
      for await (const msg of batch) {
        received++;
        this.reserved--;
        this.start(msg);
      }
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
    this.inFlight.set(msg, performance.now());
    this.stats.inFlight = this.inFlight.size;
    void this.process(msg).finally(() => {
      this.inFlight.delete(msg);
      this.stats.inFlight = this.inFlight.size;
      this.wake();
    });
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
   * Graceful stop: no new pulls; the open ones are withdrawn (see pull-withdrawal.ts), and every order
   * they deliver meanwhile is processed. run() resolves after them — or, once `drainTimeoutMs` has
   * passed, gives up on the handlers still running: their `ctx.signal` is aborted and their orders are
   * left unacked, to be redelivered after the ack wait.
   */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    for (const pull of this.openPulls) withdrawPull(pull);
    this.drainTimer = setTimeout(() => {
      this.stats.abandoned = this.inFlight.size;
      this.options.onError?.(
        `drain timeout: ${this.inFlight.size} order(s) still being handled after ${this.options.drainTimeoutMs} ms; their handlers are aborted`,
      );
      this.handlersAbort.abort(new Error("the worker stopped waiting for its handlers (drain timeout)"));
      this.wake();
    }, this.options.drainTimeoutMs);
    this.wake();
  }

  private sendHeartbeats(olderThanMs: number): void {
    const now = performance.now();
    for (const [msg, started] of this.inFlight) {
      if (now - started >= olderThanMs) msg.working();
    }
  }

  private fail(err: unknown): void {
    this.stats.errors++;
    this.options.onError?.(errorMessage(err));
  }

  private async process(msg: JsMsg): Promise<void> {
    try {
      const parsed = parseOrder(msg.data, this.options.strictOrders);
      if (!parsed.ok) {
        await this.toDlq(msg, {
          reason: "invalid-payload",
          lastError: `invalid-payload: ${parsed.reason}`,
          displayOrderId: guessOrderId(msg.data),
        });
        this.stats.invalid++;
        return;
      }
      await this.processOrder(msg, parsed.order);
    } catch (err) {
      // Broker unreachable, a timeout...: leave the message unacked; its redelivery is absorbed.
      this.fail(err);
    }
  }

  private async processOrder(msg: JsMsg, order: Order): Promise<void> {
    const { inbox } = this.options;
    if (inbox) {
      await this.processInInbox(msg, order, inbox);
      return;
    }
    const attempt = msg.info.deliveryCount;
    // A first delivery cannot be committed yet (publishing is de-duplicated), so only a
    // redelivery pays for this read; the create-if-absent below guards every case anyway.
    // The unsafe negative control skips it too, so a redelivery of committed work is written again
    // (with a plain put) and the chaos checker must see the duplicate.
    const existing = attempt > 1 && !this.options.unsafe ? await this.ledger.get(order.id) : undefined;
    if (existing) {
      this.options.trace?.(`ledger-has ${order.id} seq=${msg.info.streamSequence} attempt=${attempt}: ${describe(existing)}`);
      await this.onOutcomeExists(msg, order, existing);
      return;
    }
    try {
      await this.handler(order, this.handlerContext(msg, order));
    } catch (err) {
      await this.onHandlerError(msg, order, err);
      return;
    }
    const commit = await this.commit(order.id, this.committedOutcome(msg));
    if (!commit.written && commit.existing?.result === "dead-lettered") {
      // A DLQ move (the advisory's mover, the orphan sweep) claimed the order while this delivery
      // ran, and may have died or failed before its copy: an ack now would delete an order that is
      // neither committed nor in the DLQ. Finish the move as it began; its copy is de-duplicated.
      this.options.trace?.(
        `commit ${order.id} seq=${msg.info.streamSequence} attempt=${attempt}: claimed by a DLQ move, ${describe(commit.existing)}`,
      );
      await this.toDlq(msg, { reason: commit.existing.reason ?? "max-deliveries", lastError: commit.existing.error, validOrderId: order.id });
      return;
    }
    // The key exists but its outcome could not be read: it may be an unfinished DLQ move. Leave the
    // order unacked; its redelivery reads the ledger again.
    if (!commit.written && !commit.existing) throw new Error(`the ledger holds ${order.id} but its outcome could not be read`);
    if (commit.written) this.stats.committed++;
    else this.stats.suppressedDuplicates++; // another delivery won the race
    if (commit.written && commit.seq !== undefined) this.options.trace?.(ackedWriteLine("ledger", commit.seq, order.id));
    this.options.trace?.(
      `commit ${order.id} seq=${msg.info.streamSequence} attempt=${attempt}: ${commit.written ? "written" : `exists, ${commit.existing ? describe(commit.existing) : "not read back"}`}`,
    );
    await this.afterCommit(msg, order, commit.written);
  }

  /**
   * Inbox mode: the inbox row is inserted first, in the transaction the handler then writes through;
   * the ack comes after the commit. A crash between the two is a redelivery that finds the row.
   */
  private async processInInbox(msg: JsMsg, order: Order, inbox: TransactionalCommit): Promise<void> {
    const result = await inbox.run(order.id, this.committedOutcome(msg), (db) => this.handler(order, this.handlerContext(msg, order, db)));
    this.options.trace?.(`inbox ${order.id} seq=${msg.info.streamSequence} attempt=${msg.info.deliveryCount}: ${result.kind}`);
    switch (result.kind) {
      case "committed":
        this.stats.committed++;
        await this.afterCommit(msg, order, true);
        return;
      case "exists":
        await this.onOutcomeExists(msg, order, result.existing);
        return;
      case "busy":
        // Another delivery of this order is in a transaction now: hand this one back for later.
        this.stats.deferred++;
        msg.nak(backoffDelay(msg.info.deliveryCount, this.options.backoff, this.rng));
        return;
      case "failed":
        await this.onHandlerError(msg, order, result.error);
        return;
    }
  }

  /** A redelivery of an order with an outcome: committed work is acked, a begun dead-letter move finished. */
  private async onOutcomeExists(msg: JsMsg, order: Order, existing: Outcome): Promise<void> {
    if (existing.result === "committed") {
      this.stats.suppressedDuplicates++;
      await this.ack(msg);
      return;
    }
    // A dead-letter move died between its claim and its ack: finish it as it began.
    await this.toDlq(msg, { reason: existing.reason ?? "max-deliveries", lastError: existing.error, validOrderId: order.id });
  }

  private committedOutcome(msg: JsMsg): Outcome {
    return {
      result: "committed",
      worker: this.options.workerId,
      attempt: msg.info.deliveryCount,
      streamSeq: msg.info.streamSequence,
      at: new Date().toISOString(),
    };
  }

  private handlerContext(msg: JsMsg, order: Order, db: DbClient = NO_DB): HandlerContext {
    const { onHandlerLog } = this.options;
    return {
      attempt: msg.info.deliveryCount,
      idempotencyKey: order.id,
      signal: this.handlersAbort.signal,
      log: (message) => onHandlerLog?.(order.id, message),
      db,
    };
  }

  /** After the commit: the fault knobs, the ack, and the latency of a commit this delivery made. */
  private async afterCommit(msg: JsMsg, order: Order, written: boolean): Promise<void> {
    const { crashAfterCommitRate, dropAckRate } = this.options.faults;
    if (crashAfterCommitRate > 0 && this.rng() < crashAfterCommitRate) process.kill(process.pid, "SIGKILL");
    if (dropAckRate > 0 && this.rng() < dropAckRate) {
      this.stats.droppedAcks++;
      this.options.trace?.(`drop-ack ${order.id} seq=${msg.info.streamSequence}`);
      return;
    }
    await this.ack(msg);
    const { observeLatency } = this.options;
    const started = observeLatency && written ? this.inFlight.get(msg) : undefined;
    if (started !== undefined) observeLatency?.((performance.now() - started) / 1000);
  }

  /**
   * The commit, retried while the broker is unreachable for up to one ack wait (the order keeps its
   * lease meanwhile): the handler's work is done, and giving up would spend a delivery — on the last
   * one, a processed order would be dead-lettered. A retry whose first try did land finds its own
   * outcome in the ledger, and counts as written.
   */
  private async commit(orderId: string, outcome: Outcome): Promise<RecordResult> {
    const deadline = Date.now() + this.ackWaitMs;
    for (let pause = 100; ; pause = Math.min(1000, pause * 2)) {
      try {
        const result = await this.ledger.record(orderId, outcome);
        const ours =
          !result.written &&
          result.existing?.worker === outcome.worker &&
          result.existing.streamSeq === outcome.streamSeq &&
          result.existing.attempt === outcome.attempt;
        return ours ? { written: true } : result;
      } catch (err) {
        if (Date.now() + pause > deadline) throw err;
        this.fail(err);
        await sleep(pause);
      }
    }
  }

  private async onHandlerError(msg: JsMsg, order: Order, err: unknown): Promise<void> {
    const attempt = msg.info.deliveryCount;
    const error = errorMessage(err);
    this.stats.failedAttempts++;
    await this.dlq.attempts.record({
      orderId: order.id,
      streamSeq: msg.info.streamSequence,
      attempt,
      worker: this.options.workerId,
      error,
      errorClass: err instanceof Error ? err.name : typeof err,
      at: new Date().toISOString(),
    });
    const retryable = !isNonRetryable(err);
    const attemptsLeft = this.maxDeliver < 0 || attempt < this.maxDeliver;
    if (retryable && attemptsLeft) {
      this.stats.retried++;
      msg.nak(backoffDelay(attempt, this.options.backoff, this.rng));
      return;
    }
    await this.toDlq(msg, {
      reason: retryable ? "max-deliveries" : "non-retryable",
      lastError: error,
      validOrderId: order.id,
    });
  }

  /** Copy first, then ack: under work-queue retention an ack (or term) deletes the original. */
  private async toDlq(msg: JsMsg, input: Pick<DeadLetterInput, "reason" | "lastError" | "validOrderId" | "displayOrderId">): Promise<void> {
    const result = await deadLetter(this.dlq, {
      ...input,
      subject: msg.subject,
      streamSeq: msg.info.streamSequence,
      payload: msg.data,
      headers: msg.headers,
      deliveries: msg.info.deliveryCount,
    });
    if (result === "dead-lettered") this.stats.deadLettered++;
    else this.stats.suppressedDuplicates++;
    await this.ack(msg);
  }

  private async ack(msg: JsMsg): Promise<void> {
    if (this.options.confirmAck) await msg.ackAck();
    else msg.ack();
  }
}
