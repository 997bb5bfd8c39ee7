/** What `orderq status` shows: depth and lag of the pipeline, DLQ by reason, ledger size. */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { DlqReason } from "../pipeline/dlq-entry.js";
import { countByReason, scanDlq } from "./dlq-admin.js";
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
   * with no valid order id for the DLQ (payloadClaimKey), left out of both.
   */
  ledger: { bucket: string; orders: number; writes: number; payloadClaims: number };
  /** Inbox mode: the inbox table's rows by outcome (the ledger of record there). */
  inbox?: { table: string; committed: number; deadLettered: number };
  advisoriesWaiting: number;
}

/**
 * Reads the status; kept across the refreshes of `status --watch`, where the DLQ tally reads only the
 * entries added since the last refresh instead of the whole DLQ every second.
 */
export class StatusReader {
  private readonly tally = new DlqTally();
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
    const reasons = await this.tally.update(nc, names, dlq);
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
      dlq: { name: names.dlqStream, depth: dlq.state.messages, ...reasons },
      ledger: {
        bucket: names.ledgerBucket,
        orders: (ledger.state.num_subjects ?? 0) - claims.keys,
        writes: ledger.state.messages - claims.writes,
        payloadClaims: claims.keys,
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

/**
 * The DLQ's entries by reason, updated from the stream's info: entries below its first sequence are
 * dropped, new ones are read. A re-created stream (another creation time) is read from the start; when
 * the result disagrees with the depth (an entry in the middle was replayed or purged) everything is
 * read again.
 */
export class DlqTally {
  /** DLQ sequence → reason; "foreign" for a message that is not an orderq entry. */
  private readonly bySeq = new Map<number, DlqReason | "foreign">();
  private nextSeq = 1;
  private created?: string;

  /** `scan` reads a range of DLQ sequences (a test passes one that records the ranges). */
  constructor(private readonly scan: typeof scanDlq = scanDlq) {}

  async update(
    nc: NatsConnection,
    names: Names,
    info: { created: string; state: { messages: number; first_seq: number; last_seq: number } },
  ): Promise<Pick<Status["dlq"], "byReason" | "foreign">> {
    const { state } = info;
    if (info.created !== this.created) this.reset();
    this.created = info.created;
    for (const seq of this.bySeq.keys()) if (seq < state.first_seq) this.bySeq.delete(seq);
    if (state.messages > 0 && state.last_seq >= this.nextSeq) await this.read(nc, names, Math.max(this.nextSeq, state.first_seq), state.last_seq);
    if (this.bySeq.size !== state.messages) {
      this.reset();
      if (state.messages > 0) await this.read(nc, names, state.first_seq, state.last_seq);
    }
    this.nextSeq = state.last_seq + 1;
    const reasons = [...this.bySeq.values()].filter((r): r is DlqReason => r !== "foreign");
    return { byReason: countByReason(reasons), foreign: this.bySeq.size - reasons.length };
  }

  private async read(nc: NatsConnection, names: Names, fromSeq: number, toSeq: number): Promise<void> {
    const scan = await this.scan(nc, names, { fromSeq, toSeq });
    for (const entry of scan.entries) this.bySeq.set(entry.dlqSeq, entry.reason);
    for (const seq of scan.foreign) this.bySeq.set(seq, "foreign");
  }

  private reset(): void {
    this.bySeq.clear();
    this.nextSeq = 1;
  }
}
