/**
 * Names of every JetStream resource orderq uses. The defaults come from DESIGN.md so that separate
 * orderq processes agree without configuration; every one can be overridden.
 */
export interface Names {
  /** Work-queue stream holding orders, subjects `<subjectPrefix>.<source>`. */
  stream: string;
  subjectPrefix: string;
  /** Durable pull consumer shared by every worker. */
  consumer: string;
  /** Dead-letter stream, subjects `<dlqSubjectPrefix>.<source>.<reason>` (`<dlqSubjectPrefix>.<source>` before the reason was added). */
  dlqStream: string;
  dlqSubjectPrefix: string;
  /** Stream that makes MAX_DELIVERIES advisories durable, and the mover's consumer on it. */
  advisoryStream: string;
  moverConsumer: string;
  /**
   * The quarantine lane (DESIGN.md, Crash isolation): a work-queue stream, subjects
   * `<quarantineSubjectPrefix>.<source>`, holding copies of suspects, and the consumer its
   * one-order-at-a-time worker processes pull from.
   */
  quarantineStream: string;
  quarantineSubjectPrefix: string;
  quarantineConsumer: string;
  /** KV bucket: order id → committed outcome. */
  ledgerBucket: string;
  /** KV bucket: stream sequence → failed attempts (history keeps one revision per attempt). */
  attemptsBucket: string;
  /** KV bucket of the HTTP gateway: idempotency key (the order id) → payload fingerprint and answer. */
  intakeBucket: string;
}

export const DEFAULT_NAMES: Names = {
  stream: "ORDERS",
  subjectPrefix: "orders",
  consumer: "workers",
  dlqStream: "ORDERS_DLQ",
  dlqSubjectPrefix: "dlq.orders",
  advisoryStream: "ORDERQ_ADVISORIES",
  moverConsumer: "dlq_mover",
  quarantineStream: "ORDERS_QUARANTINE",
  quarantineSubjectPrefix: "quarantine.orders",
  quarantineConsumer: "quarantine",
  ledgerBucket: "orderq_ledger",
  attemptsBucket: "orderq_attempts",
  intakeBucket: "orderq_intake",
};

/**
 * Names from the four that can be chosen. A stream other than the default also renames its subjects,
 * advisory stream, attempts bucket and intake bucket, and, unless one is chosen, its DLQ stream
 * (`<stream>_DLQ`), so a second orderq on the same server shares nothing with the first. (The DLQ
 * stream holds `<dlqSubjectPrefix>.>`: the default one cannot hold a second stream's dead letters.)
 */
export function namesFor(chosen: Pick<Names, "stream" | "consumer" | "ledgerBucket"> & { dlqStream?: string }): Names {
  const otherStream = chosen.stream !== DEFAULT_NAMES.stream;
  const dlqStream = chosen.dlqStream ?? (otherStream ? `${chosen.stream}_DLQ` : DEFAULT_NAMES.dlqStream);
  const names = { ...DEFAULT_NAMES, ...chosen, dlqStream };
  if (otherStream) {
    const lower = chosen.stream.toLowerCase();
    names.subjectPrefix = lower;
    names.dlqSubjectPrefix = `dlq.${lower}`;
    names.advisoryStream = `ORDERQ_ADVISORIES_${chosen.stream}`;
    names.quarantineStream = `${chosen.stream}_QUARANTINE`;
    names.quarantineSubjectPrefix = `quarantine.${lower}`;
    names.attemptsBucket = `orderq_attempts_${lower}`;
    names.intakeBucket = `orderq_intake_${lower}`;
  }
  return names;
}

export const SOURCES = ["web", "mobile", "api"] as const;
export type Source = (typeof SOURCES)[number];

export function orderSubject(names: Names, source: string): string {
  return `${names.subjectPrefix}.${source}`;
}

/**
 * Subject of a DLQ entry: `<prefix>.<source>.<reason>`. The reason is in the subject so that the
 * server counts entries by reason (stream info's per-subject counts): `status` and `dlq list` need not
 * read every entry. Without a reason: the subject entries had before (still read, never written).
 */
export function dlqSubject(names: Names, source: string, reason?: string): string {
  return reason ? `${names.dlqSubjectPrefix}.${source}.${reason}` : `${names.dlqSubjectPrefix}.${source}`;
}

/** The subject JetStream publishes MAX_DELIVERIES advisories on for our consumer. */
export function maxDeliveriesAdvisorySubject(names: Names): string {
  return `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${names.stream}.*`;
}

export function quarantineSubject(names: Names, source: string): string {
  return `${names.quarantineSubjectPrefix}.${source}`;
}

/**
 * Message id of a suspect's copy in the quarantine lane: like dlqMsgId, so a copy retried after a
 * crash between copy and ack stays single (within the quarantine stream's duplicate window).
 */
export function quarantineMsgId(names: Names, streamSeq: number, originalMsgId?: string): string {
  return originalMsgId ? `quarantine:${names.stream}:${streamSeq}:${originalMsgId}` : `quarantine:${names.stream}:${streamSeq}`;
}

/**
 * Message id of a DLQ copy, so a retried or raced move of the same stream message stays single:
 * DESIGN.md's `dlq:<stream>:<seq>`, followed by the message's own Nats-Msg-Id when it has one.
 * Sequences start again at 1 in a re-created stream, and the DLQ remembers ids for 24 h: by sequence
 * alone, a new message dead-lettered there would be taken for an old entry's duplicate, acked, and lost.
 * Not by the id alone either: two different messages may carry one id (an invalid payload and, later,
 * a valid order under the same id).
 */
export function dlqMsgId(names: Names, streamSeq: number, originalMsgId?: string): string {
  return originalMsgId ? `dlq:${names.stream}:${streamSeq}:${originalMsgId}` : `dlq:${names.stream}:${streamSeq}`;
}

/** Subject of the KV stream behind a bucket, for reading every write of a key. */
export function kvStreamName(bucket: string): string {
  return `KV_${bucket}`;
}
