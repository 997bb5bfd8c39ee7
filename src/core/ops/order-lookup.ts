/**
 * "What happened to order X?": where one order is, from the KV ledger (committed or dead-lettered,
 * with worker, attempt and time), the DLQ (reason, deliveries, last error) and the ORDERS stream
 * (waiting, or delivered and not yet acked). `orderq order X` renders lookupOrder, which reads the KV
 * ledger (not inbox mode's PostgreSQL); the gateway's status lookup reads through OrderLocator with the
 * ledger of record it was given.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager, type MsgRequest } from "@nats-io/jetstream";
import type { Names } from "../nats/names.js";
import { isNotFound } from "../nats/not-found.js";
import { InboxStore } from "../inbox/store.js";
import { Ledger } from "../pipeline/ledger.js";
import { guessOrderId } from "../pipeline/order.js";
import type { Outcome, OutcomeStore } from "../pipeline/outcome-store.js";
import type { DlqReason } from "../pipeline/dlq-entry.js";
import { scanDlq } from "./dlq-admin.js";

/**
 * committed / dead-lettered: the ledger (or the DLQ) holds its outcome; in-flight: delivered to a
 * worker, not yet acked (being worked on, or waiting for a retry), or a suspect's copy in the
 * quarantine lane; waiting: in ORDERS, not delivered yet; unknown: none of these (never accepted, or
 * purged).
 */
export type OrderState = "committed" | "dead-lettered" | "in-flight" | "waiting" | "unknown";

export interface OrderDlqEntry {
  dlqSeq: number;
  reason: DlqReason;
  lastError: string;
  deliveries: number;
  deadLetteredAt: string;
  /** Failed attempts recorded with the entry. */
  attempts: number;
}

export interface OrderInStream {
  /** ORDERS, or the quarantine lane's stream (a suspect's copy). */
  stream: string;
  /** Its sequence in that stream. */
  seq: number;
  subject: string;
  /** Delivered to a worker at least once (the consumer's delivered sequence is at or past it). */
  delivered: boolean;
}

export interface OrderLookup {
  orderId: string;
  state: OrderState;
  /** What the ledger holds for the id (result, worker, attempt, streamSeq, at; reason for a dead-letter claim). */
  outcome?: Outcome;
  /** Its DLQ entries (one, unless something went wrong). */
  dlq: OrderDlqEntry[];
  /** Its messages still in ORDERS. */
  inStream: OrderInStream[];
}

/**
 * The one reader of where an order is: its outcome in a ledger of record, its DLQ entries, its
 * messages still in ORDERS and the quarantine lane's stream. Each caller asks what it needs and says
 * it in its own words: `orderq order X` (lookupOrder: waiting, in-flight, …) and the gateway's
 * `GET /orders/{id}` (intake/order-status.ts: accepted, …). Throws what JetStream or the ledger throws
 * when they do not answer; a missing stream or consumer counts as empty.
 */
export class OrderLocator {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly names: Names,
    private readonly ledger: OutcomeStore | undefined,
  ) {}

  /**
   * `ledger`: where outcomes are read (the KV ledger, or the inbox in inbox mode); undefined when there
   * is none (its bucket does not exist), so no order has an outcome. `timeoutMs`: of each JetStream
   * request (the client's default when absent). The ledger stays the caller's to close.
   */
  static async open(nc: NatsConnection, names: Names, options: { ledger: OutcomeStore | undefined; timeoutMs?: number }): Promise<OrderLocator> {
    const jsm = await jetstreamManager(nc, { checkAPI: false, ...(options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {}) });
    return new OrderLocator(nc, jsm, names, options.ledger);
  }

  /** What the ledger of record holds for the id (committed, or a dead-letter claim); undefined when nothing. */
  async outcome(orderId: string): Promise<Outcome | undefined> {
    return this.ledger?.get(orderId);
  }

  /** Whether `stream` still holds its message `seq` (not yet acked away from a work queue, nor purged). */
  async holds(stream: string, seq: number): Promise<boolean> {
    try {
      return (await this.jsm.streams.getMessage(stream, { seq })) !== null;
    } catch (err) {
      if (isNotFound(err, "message")) return false;
      throw err;
    }
  }

  /** Its DLQ entries (one, unless something went wrong). Reads the whole DLQ (an ordered consumer). */
  async deadLetters(orderId: string): Promise<OrderDlqEntry[]> {
    return ((await unlessNotFound(() => scanDlq(this.nc, this.names)))?.entries ?? [])
      .filter((e) => e.orderId === orderId)
      .map((e) => ({
        dlqSeq: e.dlqSeq,
        reason: e.reason,
        lastError: e.lastError,
        deliveries: e.deliveries,
        deadLetteredAt: e.deadLetteredAt,
        attempts: e.attempts.length,
      }));
  }

  /**
   * The order's messages in ORDERS and in the quarantine lane's stream (a suspect's copy, whose original
   * was acked in ORDERS). Both have work-queue retention, which refuses a second (ordered) consumer, so
   * stored messages are walked one request each with next_by_subj, which skips the gaps acks leave.
   */
  async inStreams(orderId: string): Promise<OrderInStream[]> {
    const n = this.names;
    return [
      ...(await findIn(this.jsm, orderId, n.stream, n.consumer, `${n.subjectPrefix}.>`)),
      ...(await findIn(this.jsm, orderId, n.quarantineStream, n.quarantineConsumer, `${n.quarantineSubjectPrefix}.>`)),
    ];
  }
}

/**
 * Looks order `orderId` up everywhere it can be: its outcome in the ledger of record — the KV ledger,
 * or the PostgreSQL inbox `inbox` names (inbox mode) — the DLQ, ORDERS and the quarantine stream.
 * Reads the whole DLQ and every message still in ORDERS and the quarantine stream (one request each):
 * fine for a backlog of thousands, slow for millions. A missing stream, bucket or consumer counts as
 * empty. Throws EnvironmentError when the inbox cannot be read.
 */
export async function lookupOrder(nc: NatsConnection, names: Names, orderId: string, inbox?: { url: string; table: string }): Promise<OrderLookup> {
  const ledger: OutcomeStore | undefined = inbox
    ? await InboxStore.open({ url: inbox.url, table: inbox.table, poolSize: 1, maxBatch: 1 })
    : await unlessNotFound(() => Ledger.open(nc, names));
  let locator: OrderLocator;
  let outcome: Outcome | undefined;
  try {
    locator = await OrderLocator.open(nc, names, { ledger });
    outcome = await locator.outcome(orderId);
  } finally {
    await ledger?.close();
  }
  const dlq = await locator.deadLetters(orderId);
  const inStream = await locator.inStreams(orderId);
  const state: OrderState = outcome
    ? outcome.result
    : dlq.length > 0
      ? "dead-lettered"
      : inStream.some((m) => m.delivered || m.stream !== names.stream)
        ? "in-flight"
        : inStream.length > 0
          ? "waiting"
          : "unknown";
  return { orderId, state, ...(outcome ? { outcome } : {}), dlq, inStream };
}

/** `fn`'s result, or undefined when what it reads does not exist (a stream, bucket, message). */
async function unlessNotFound<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The order's stored messages in one stream, each marked delivered or not by its consumer. */
async function findIn(jsm: JetStreamManager, orderId: string, stream: string, consumer: string, subjects: string): Promise<OrderInStream[]> {
  let last = 0;
  let deliveredSeq = 0;
  try {
    last = (await jsm.streams.info(stream)).state.last_seq;
    deliveredSeq = (await jsm.consumers.info(stream, consumer)).delivered.stream_seq;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const found: OrderInStream[] = [];
  for (let seq = 1; seq <= last;) {
    // next_by_subj (wildcards allowed) is in nats-server 2.9's message get API; the client's type leaves it out.
    const msg = await unlessNotFound(() => jsm.streams.getMessage(stream, { seq, next_by_subj: subjects } as unknown as MsgRequest));
    if (!msg) break;
    // The publish id is the order id, except for a DLQ replay or a quarantine copy: then the payload says.
    const id = msg.header?.get("Nats-Msg-Id") === orderId ? orderId : guessOrderId(msg.data);
    if (id === orderId) found.push({ stream, seq: msg.seq, subject: msg.subject, delivered: msg.seq <= deliveredSeq });
    seq = msg.seq + 1;
  }
  return found;
}
