/**
 * A DLQ entry: the original payload, unchanged, with everything needed to understand it in headers.
 * encode/decode are pure and round-trip (property-tested).
 */
import { headers, type MsgHdrs } from "@nats-io/transport-node";
import { PubHeaders } from "@nats-io/jetstream";
import type { AttemptRecord } from "./attempts.js";

/** crashed-worker: a suspect that crashed (or lost the lease of) its quarantine lane max-deliver times. */
export const DLQ_REASONS = ["invalid-payload", "non-retryable", "max-deliveries", "crashed-worker"] as const;
export type DlqReason = (typeof DLQ_REASONS)[number];

export interface DlqEntry {
  reason: DlqReason;
  /** Why, in one line: the validation error, the handler error, or what the advisory said. */
  lastError: string;
  orderId?: string;
  source: string;
  originalStream: string;
  originalSubject: string;
  originalSeq: number;
  originalHeaders: Record<string, string[]>;
  consumer: string;
  deliveries: number;
  /**
   * Reason crashed-worker: the quarantine lane's deliveries of the order that ended with no recorded
   * failure (the lane process died or lost its lease while holding it alone). Kept apart from
   * `attempts`, the failures its handler reported.
   */
  crashes?: number;
  attempts: AttemptRecord[];
  firstAttemptAt?: string;
  lastAttemptAt?: string;
  deadLetteredAt: string;
}

/** A DLQ entry as stored: its own sequence in the DLQ stream and the original payload. */
export interface StoredDlqEntry extends DlqEntry {
  dlqSeq: number;
  payload: Uint8Array;
}

const H = {
  reason: "Orderq-Reason",
  lastError: "Orderq-Last-Error",
  orderId: "Orderq-Order-Id",
  source: "Orderq-Source",
  stream: "Orderq-Original-Stream",
  subject: "Orderq-Original-Subject",
  seq: "Orderq-Original-Seq",
  headers: "Orderq-Original-Headers",
  consumer: "Orderq-Consumer",
  deliveries: "Orderq-Deliveries",
  crashes: "Orderq-Crashes",
  attempts: "Orderq-Attempts",
  first: "Orderq-First-Attempt",
  last: "Orderq-Last-Attempt",
  at: "Orderq-Dead-Lettered-At",
} as const;

/**
 * Header values are one line, and the wire trims them; JSON (escaped newlines) carries anything
 * structured. What encode does to free text, so that decode(encode(e)) equals e after this.
 */
export function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ").trim();
}

/** Header names as MsgHdrs yields them (the client keeps the case it was given). */
export function headersToRecord(hdrs?: MsgHdrs): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!hdrs) return out;
  for (const [key, values] of hdrs) out[key] = [...values];
  return out;
}

/**
 * `msgId` becomes the entry's Nats-Msg-Id, and it must be the first header: nats-server 2.9 looks a
 * header up by the first occurrence of its name anywhere in the header block and gives up when that
 * one does not start a line. The original headers (JSON, in a value) contain "Nats-Msg-Id", so a
 * Nats-Msg-Id after them is not seen and the copy is silently not de-duplicated.
 */
export function encodeDlqHeaders(entry: DlqEntry, msgId?: string): MsgHdrs {
  const h = headers();
  if (msgId !== undefined) h.set(PubHeaders.MsgIdHdr, msgId);
  h.set(H.reason, entry.reason);
  h.set(H.lastError, oneLine(entry.lastError));
  if (entry.orderId !== undefined) h.set(H.orderId, oneLine(entry.orderId));
  h.set(H.source, oneLine(entry.source));
  h.set(H.stream, entry.originalStream);
  h.set(H.subject, entry.originalSubject);
  h.set(H.seq, String(entry.originalSeq));
  h.set(H.headers, JSON.stringify(entry.originalHeaders));
  h.set(H.consumer, entry.consumer);
  h.set(H.deliveries, String(entry.deliveries));
  if (entry.crashes !== undefined) h.set(H.crashes, String(entry.crashes));
  h.set(H.attempts, JSON.stringify(entry.attempts));
  if (entry.firstAttemptAt !== undefined) h.set(H.first, entry.firstAttemptAt);
  if (entry.lastAttemptAt !== undefined) h.set(H.last, entry.lastAttemptAt);
  h.set(H.at, entry.deadLetteredAt);
  return h;
}

export class MalformedDlqEntryError extends Error {}

export function decodeDlqEntry(h: MsgHdrs | undefined, payload: Uint8Array, dlqSeq: number): StoredDlqEntry {
  const need = (name: string): string => {
    const v = h?.get(name);
    if (!v) throw new MalformedDlqEntryError(`DLQ message ${dlqSeq} has no ${name} header`);
    return v;
  };
  const optional = (name: string): string | undefined => (h?.has(name) ? h.get(name) : undefined);
  const reason = need(H.reason) as DlqReason;
  if (!DLQ_REASONS.includes(reason)) throw new MalformedDlqEntryError(`DLQ message ${dlqSeq}: unknown reason ${reason}`);
  return {
    dlqSeq,
    payload,
    reason,
    lastError: h?.get(H.lastError) ?? "",
    orderId: optional(H.orderId),
    source: need(H.source),
    originalStream: need(H.stream),
    originalSubject: need(H.subject),
    originalSeq: Number(need(H.seq)),
    originalHeaders: JSON.parse(optional(H.headers) ?? "{}") as Record<string, string[]>,
    consumer: h?.get(H.consumer) ?? "",
    deliveries: Number(need(H.deliveries)),
    ...(h?.has(H.crashes) && { crashes: Number(h.get(H.crashes)) }),
    attempts: JSON.parse(optional(H.attempts) ?? "[]") as AttemptRecord[],
    firstAttemptAt: optional(H.first),
    lastAttemptAt: optional(H.last),
    deadLetteredAt: need(H.at),
  };
}
