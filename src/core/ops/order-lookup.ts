/**
 * "What happened to order X?": where one order is, from the KV ledger (committed or dead-lettered,
 * with worker, attempt and time), the DLQ (reason, deliveries, last error) and the ORDERS stream
 * (waiting, or delivered and not yet acked). `orderq order X` renders it; an HTTP status lookup can
 * reuse it as it is. Inbox mode's ledger of record (PostgreSQL) is not read here.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import type { Names } from "../nats/names.js";
import { isNotFound } from "../nats/not-found.js";
import { Ledger } from "../pipeline/ledger.js";
import { guessOrderId } from "../pipeline/order.js";
import type { Outcome } from "../pipeline/outcome-store.js";
import type { DlqReason } from "../pipeline/dlq-entry.js";
import { scanDlq } from "./dlq-admin.js";

/**
 * committed / dead-lettered: the ledger (or the DLQ) holds its outcome; in-flight: in ORDERS and
 * delivered to a worker, not yet acked (being worked on, or waiting for a retry); waiting: in ORDERS,
 * not delivered yet; unknown: none of these (never accepted, or purged).
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
  /** Its sequence in ORDERS. */
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
 * Looks order `orderId` up everywhere it can be. Reads the whole DLQ (an ordered consumer) and every
 * message still in ORDERS (one request each): fine for a backlog of thousands, slow for millions. A missing stream
 * or consumer counts as empty.
 */
export async function lookupOrder(nc: NatsConnection, names: Names, orderId: string): Promise<OrderLookup> {
  const ledger = await unlessNotFound(() => Ledger.open(nc, names));
  let outcome: Outcome | undefined;
  try {
    outcome = await ledger?.get(orderId);
  } finally {
    await ledger?.close();
  }
  const dlq = ((await unlessNotFound(() => scanDlq(nc, names)))?.entries ?? [])
    .filter((e) => e.orderId === orderId)
    .map((e) => ({
      dlqSeq: e.dlqSeq,
      reason: e.reason,
      lastError: e.lastError,
      deliveries: e.deliveries,
      deadLetteredAt: e.deadLetteredAt,
      attempts: e.attempts.length,
    }));
  const inStream = await findInStream(nc, names, orderId);
  const state: OrderState = outcome
    ? outcome.result
    : dlq.length > 0
      ? "dead-lettered"
      : inStream.some((m) => m.delivered)
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

/**
 * ORDERS has work-queue retention, which refuses a second (ordered) consumer: its messages are read
 * one by one by sequence, stopping once every stored one was seen (acked ones leave gaps).
 */
async function findInStream(nc: NatsConnection, names: Names, orderId: string): Promise<OrderInStream[]> {
  const jsm = await jetstreamManager(nc);
  let state;
  let deliveredSeq = 0;
  try {
    state = (await jsm.streams.info(names.stream)).state;
    deliveredSeq = (await jsm.consumers.info(names.stream, names.consumer)).delivered.stream_seq;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const found: OrderInStream[] = [];
  if (!state) return found;
  let seen = 0;
  for (let seq = state.first_seq; seen < state.messages && seq <= state.last_seq; seq++) {
    const msg = await unlessNotFound(() => jsm.streams.getMessage(names.stream, { seq }));
    if (!msg) continue;
    seen++;
    // The publish id is the order id, except for a DLQ replay (a fresh id): then the payload says.
    const id = msg.header?.get("Nats-Msg-Id") === orderId ? orderId : guessOrderId(msg.data);
    if (id === orderId) found.push({ seq, subject: msg.subject, delivered: seq <= deliveredSeq });
  }
  return found;
}
