/** What `orderq status` shows: depth and lag of the pipeline, DLQ by reason, ledger size. */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import type { DlqReason } from "./dlq-entry.js";
import { countByReason, scanDlq } from "./dlq.js";
import { kvStreamName, type Names } from "./names.js";

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
  };
  /** `foreign`: messages in the DLQ stream that are not orderq entries. */
  dlq: { name: string; depth: number; byReason: Record<DlqReason, number>; foreign: number };
  ledger: { bucket: string; orders: number; writes: number };
  advisoriesWaiting: number;
}

export async function readStatus(nc: NatsConnection, names: Names): Promise<Status> {
  const jsm = await jetstreamManager(nc);
  const [stream, consumer, dlq, ledger, mover] = await Promise.all([
    jsm.streams.info(names.stream),
    jsm.consumers.info(names.stream, names.consumer),
    jsm.streams.info(names.dlqStream),
    jsm.streams.info(kvStreamName(names.ledgerBucket)),
    jsm.consumers.info(names.advisoryStream, names.moverConsumer),
  ]);
  const scan = dlq.state.messages > 0 ? await scanDlq(nc, names) : { entries: [], foreign: [] };
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
    },
    dlq: { name: names.dlqStream, depth: dlq.state.messages, byReason: countByReason(scan.entries), foreign: scan.foreign.length },
    ledger: { bucket: names.ledgerBucket, orders: ledger.state.num_subjects ?? 0, writes: ledger.state.messages },
    advisoriesWaiting: mover.num_pending + mover.num_ack_pending,
  };
}
