/**
 * A DLQ entry: the original payload, unchanged, with everything needed to understand it in headers.
 * encode/decode are pure and round-trip (property-tested).
 */
import { createHash } from "node:crypto";
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
  /**
   * The original payload did not fit in the copy (boundDlqCopy): the entry's payload is empty and
   * this says what it was — its size in bytes and its SHA-256 (hex).
   */
  payloadOmitted?: { bytes: number; sha256: string };
  /** Fields whose text was cut to MAX_VALUE_CHARS to keep the copy's headers bounded (boundDlqCopy). */
  truncated?: string[];
  /** The oldest attempts left out of `attempts` to keep the headers bounded. */
  attemptsOmitted?: number;
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
  payloadOmitted: "Orderq-Payload-Omitted",
  truncated: "Orderq-Truncated",
  attemptsOmitted: "Orderq-Attempts-Omitted",
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
  if (entry.payloadOmitted) h.set(H.payloadOmitted, `bytes=${entry.payloadOmitted.bytes} sha256=${entry.payloadOmitted.sha256}`);
  if (entry.truncated?.length) h.set(H.truncated, entry.truncated.join(","));
  if (entry.attemptsOmitted) h.set(H.attemptsOmitted, String(entry.attemptsOmitted));
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
  // A header that does not parse makes the message foreign too, not a crash of whoever reads the DLQ.
  const json = (name: string, absent: string): unknown => {
    try {
      return JSON.parse(optional(name) ?? absent);
    } catch {
      throw new MalformedDlqEntryError(`DLQ message ${dlqSeq}: its ${name} header is not JSON`);
    }
  };
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
    originalHeaders: json(H.headers, "{}") as Record<string, string[]>,
    consumer: h?.get(H.consumer) ?? "",
    deliveries: Number(need(H.deliveries)),
    ...(h?.has(H.crashes) && { crashes: Number(h.get(H.crashes)) }),
    attempts: json(H.attempts, "[]") as AttemptRecord[],
    firstAttemptAt: optional(H.first),
    lastAttemptAt: optional(H.last),
    deadLetteredAt: need(H.at),
    ...omitted(optional(H.payloadOmitted)),
    ...(h?.has(H.truncated) ? { truncated: h.get(H.truncated).split(",") } : {}),
    ...(h?.has(H.attemptsOmitted) ? { attemptsOmitted: Number(h.get(H.attemptsOmitted)) } : {}),
  };
}

function omitted(value: string | undefined): Pick<DlqEntry, "payloadOmitted"> {
  const m = value === undefined ? null : /^bytes=(\d+) sha256=([0-9a-f]{64})$/.exec(value);
  return m ? { payloadOmitted: { bytes: Number(m[1]), sha256: m[2] } } : {};
}

/**
 * The most characters any one free-text value of a copy keeps (an id, an error, an original header).
 * Order ids are at most 64 characters and errors are one line: what is longer is garbage or a stack,
 * and 1,024 characters say what it was.
 */
export const MAX_VALUE_CHARS = 1024;
/**
 * Most bytes of a copy's header block. nats-server refuses a message whose headers pass 64 KiB
 * (DESIGN.md, "Facts about nats-server 2.9.x"); half of it leaves room for a relay's own headers.
 */
export const MAX_HEADER_BYTES = 32 * 1024;
/** nats-server's default max_payload (1 MiB), for a connection that did not say. */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/**
 * Bounds what a DLQ copy adds to the original, so that every message can be copied and leave ORDERS:
 * free text longer than MAX_VALUE_CHARS is cut (named in `truncated`), the oldest attempts are dropped
 * while the headers pass MAX_HEADER_BYTES (counted in `attemptsOmitted`), and when the payload and the
 * headers together pass `maxPayload` (bytes: the server's max_payload, headers included) the payload is
 * left out and `payloadOmitted` keeps its size and SHA-256. Pure; the returned entry round-trips through
 * encode/decode like any other.
 */
export function boundDlqCopy(entry: DlqEntry, payload: Uint8Array, maxPayload: number, msgId?: string): { entry: DlqEntry; payload: Uint8Array } {
  const truncated: string[] = [];
  const cut = (field: string, text: string): string => {
    if (text.length <= MAX_VALUE_CHARS) return text;
    if (!truncated.includes(field)) truncated.push(field);
    return `${text.slice(0, MAX_VALUE_CHARS)}… [${text.length} characters, cut]`;
  };
  const originalHeaders = Object.fromEntries(
    Object.entries(entry.originalHeaders).map(([k, vs]) => [cut("originalHeaders", k), vs.map((v) => cut("originalHeaders", v))]),
  );
  let attempts = entry.attempts.map((a) => ({
    ...a,
    ...(a.orderId !== undefined ? { orderId: cut("attempts", a.orderId) } : {}),
    error: cut("attempts", a.error),
  }));
  const bounded: DlqEntry = {
    ...entry,
    lastError: cut("lastError", entry.lastError),
    ...(entry.orderId !== undefined ? { orderId: cut("orderId", entry.orderId) } : {}),
    source: cut("source", entry.source),
    originalHeaders,
    attempts,
  };
  if (truncated.length) bounded.truncated = truncated;
  let omittedAttempts = 0;
  while (headerBytes(encodeDlqHeaders(bounded, msgId)) > MAX_HEADER_BYTES && attempts.length > 0) {
    attempts = attempts.slice(1);
    omittedAttempts++;
    bounded.attempts = attempts;
    bounded.attemptsOmitted = (entry.attemptsOmitted ?? 0) + omittedAttempts;
  }
  // Room for the payload-omitted header itself (~90 bytes) is kept whatever is decided.
  if (headerBytes(encodeDlqHeaders(bounded, msgId)) + 128 + payload.length <= maxPayload) return { entry: bounded, payload };
  bounded.payloadOmitted = { bytes: payload.length, sha256: createHash("sha256").update(payload).digest("hex") };
  return { entry: bounded, payload: new Uint8Array() };
}

/** Size of a header block as NATS sends it: `NATS/1.0\r\n`, `Name: value\r\n` each, `\r\n`. */
export function headerBytes(h: MsgHdrs): number {
  let bytes = "NATS/1.0\r\n\r\n".length;
  for (const [key, values] of h) for (const v of values) bytes += Buffer.byteLength(`${key}: ${v}\r\n`);
  return bytes;
}
