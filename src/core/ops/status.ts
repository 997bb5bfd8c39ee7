/** What `orderq status` shows: depth and lag of the pipeline, DLQ by reason, ledger size. */
import { millis, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { DlqReason } from "../pipeline/dlq-entry.js";
import { countDlq } from "./dlq-admin.js";
import { EnvironmentError } from "../base/errors.js";
import { kvStreamName, type Names } from "../nats/names.js";
import { isNotFound } from "../nats/not-found.js";
import { InboxStore } from "../inbox/store.js";
import { PAYLOAD_CLAIM_PREFIX } from "../pipeline/outcome-store.js";

export interface Status {
  stream: { name: string; messages: number; bytes: number; firstSeq: number; lastSeq: number };
  consumer: {
    name: string;
    /** Not yet delivered. */
    pending: number;
    /** Delivered, not acked. */
    ackPending: number;
    /** Delivered more than once and not yet acked. */
    redelivered: number;
    waiting: number;
    /** What an external scaler (e.g. KEDA's NATS JetStream scaler) reads as lag. */
    lag: number;
    /**
     * Orders in the stream that are neither pending nor awaiting an ack: delivered max-deliver times,
     * so never delivered again, and still waiting for a DLQ mover. Above 0 for more than a moment, no
     * mover runs or every move fails — and `lag` does not show them. Stream and consumer are read at
     * the same time, not atomically: an order acked in between can count for a moment.
     */
    stuck: number;
  };
  /** `foreign`: messages in the DLQ stream that are not orderq entries. */
  dlq: { name: string; depth: number; byReason: Record<DlqReason, number>; foreign: number };
  /**
   * `orders`: keys that are order ids; `writes`: their writes. `payloadClaims`: keys claiming a payload
   * with no valid order id for the DLQ (payloadClaimKey), left out of both. `retentionMs`: the horizon,
   * the bucket's max age (0: unlimited, a ledger made before the horizon existed).
   */
  ledger: { bucket: string; orders: number; writes: number; payloadClaims: number; retentionMs: number };
  /** Inbox mode: the inbox table's rows by outcome (the ledger of record there). */
  inbox?: { table: string; committed: number; deadLettered: number };
  advisoriesWaiting: number;
}

/**
 * Reads the status; kept across the refreshes of `status --watch`. The DLQ's entries by reason are
 * counted by the server from their subjects (countDlq): no refresh reads the entries themselves.
 */
export class StatusReader {
  private jsm?: JetStreamManager;

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: Names,
    private readonly inbox?: InboxStore,
  ) {}

  /**
   * A reader of the pipeline and, given an inbox (`{ url, table }`), of the inbox table too. Throws as
   * InboxStore.open() when the inbox cannot be read.
   */
  static async open(nc: NatsConnection, names: Names, inbox?: { url: string; table: string }): Promise<StatusReader> {
    return new StatusReader(nc, names, inbox && (await InboxStore.open({ ...inbox, poolSize: 1, maxBatch: 1 })));
  }

  /** Closes the inbox's connection, if any (the NATS connection is the caller's). */
  async close(): Promise<void> {
    await this.inbox?.close();
  }

  async read(): Promise<Status> {
    const { nc, names } = this;
    // Made once: jetstreamManager() asks the server for its account info each time it is called.
    this.jsm ??= await jetstreamManager(nc);
    const jsm = this.jsm;
    const [stream, consumer, dlq, ledger, mover] = await Promise.all([
      found(jsm.streams.info(names.stream), `stream ${names.stream}`),
      found(jsm.consumers.info(names.stream, names.consumer), `consumer ${names.consumer} on ${names.stream}`),
      found(jsm.streams.info(names.dlqStream), `stream ${names.dlqStream}`),
      found(jsm.streams.info(kvStreamName(names.ledgerBucket)), `ledger bucket ${names.ledgerBucket}`),
      found(jsm.consumers.info(names.advisoryStream, names.moverConsumer), `consumer ${names.moverConsumer} on ${names.advisoryStream}`),
    ]);
    const { byReason, foreign } = await countDlq(nc, names);
    const claims = await payloadClaims(jsm, names);
    const inbox = await this.inbox?.counts();
    return {
      stream: {
        name: names.stream,
        messages: stream.state.messages,
        bytes: stream.state.bytes,
        firstSeq: stream.state.first_seq,
        lastSeq: stream.state.last_seq,
      },
      consumer: {
        name: names.consumer,
        pending: consumer.num_pending,
        ackPending: consumer.num_ack_pending,
        redelivered: consumer.num_redelivered,
        waiting: consumer.num_waiting,
        lag: consumer.num_pending + consumer.num_ack_pending,
        stuck: Math.max(0, stream.state.messages - consumer.num_pending - consumer.num_ack_pending),
      },
      dlq: { name: names.dlqStream, depth: dlq.state.messages, byReason, foreign },
      ledger: {
        bucket: names.ledgerBucket,
        orders: (ledger.state.num_subjects ?? 0) - claims.keys,
        writes: ledger.state.messages - claims.writes,
        payloadClaims: claims.keys,
        retentionMs: millis(ledger.config.max_age ?? 0),
      },
      ...(inbox ? { inbox } : {}),
      advisoriesWaiting: mover.num_pending + mover.num_ack_pending,
    };
  }
}

/** The ledger's payload-claim keys and their writes, from the stream's per-subject counts. */
async function payloadClaims(jsm: JetStreamManager, names: Names): Promise<{ keys: number; writes: number }> {
  const filter = `$KV.${names.ledgerBucket}.${PAYLOAD_CLAIM_PREFIX}>`;
  const counts = Object.values((await jsm.streams.info(kvStreamName(names.ledgerBucket), { subjects_filter: filter })).state.subjects ?? {});
  return { keys: counts.length, writes: counts.reduce((a, b) => a + b, 0) };
}

/** A missing stream or consumer is named, with what to do about it. */
async function found<T>(info: Promise<T>, what: string): Promise<T> {
  try {
    return await info;
  } catch (err) {
    if (isNotFound(err)) throw new EnvironmentError(`${what} not found: run \`orderq topology ensure\` (or pass the names this deployment uses)`);
    throw err;
  }
}
