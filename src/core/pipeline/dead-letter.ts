/**
 * The one way into the DLQ, shared by workers (invalid payload, non-retryable error, last attempt
 * failed) and the advisory-driven mover. Claim in the ledger, then copy; both steps are idempotent.
 * Every path claims: a valid order by its id, a payload without one by payloadClaimKey, so a re-send
 * that the broker stored again (its duplicate window forgotten on a restart) finds the claim and is
 * not copied a second time. The copy is bounded (boundDlqCopy), so it always fits.
 */
import type { MsgHdrs } from "@nats-io/transport-node";
import type { JetStreamClient } from "@nats-io/jetstream";
import { ackedWriteLine } from "./acked-writes.js";
import type { AttemptLog } from "./attempts.js";
import { boundDlqCopy, DEFAULT_MAX_PAYLOAD, encodeDlqHeaders, headersToRecord, type DlqEntry, type DlqReason } from "./dlq-entry.js";
import { payloadClaimKey, type OutcomeStore } from "./outcome-store.js";
import { dlqMsgId, dlqSubject, type Names } from "../nats/names.js";

export interface DeadLetterContext {
  js: JetStreamClient;
  names: Names;
  ledger: OutcomeStore;
  attempts: AttemptLog;
  worker: string;
  /** See WorkerOptions.trace. */
  trace?: (line: string) => void;
  /** The server's max_payload in bytes (the connection's INFO); DEFAULT_MAX_PAYLOAD when absent. */
  maxPayload?: number;
  /** Told of each entry this process wrote (not of a duplicate copy): see OutcomeCounter. */
  counter?: OutcomeCounter;
}

/**
 * Counts of outcomes by the order's source and, for dead-letters, the reason: what the labelled
 * order counters of `orderq work --metrics-port` read (fleet/metrics.ts implements it). Called once
 * per outcome on the hot path, so an implementation must not allocate. `source` is what the order
 * says (a valid order) or the last token of its subject (a payload that is not one): unbounded.
 */
export interface OutcomeCounter {
  committed(source: string): void;
  deadLettered(source: string, reason: DlqReason): void;
}

export interface DeadLetterInput {
  subject: string;
  streamSeq: number;
  payload: Uint8Array;
  headers?: MsgHdrs;
  deliveries: number;
  reason: DlqReason;
  /** Reason crashed-worker: the quarantine lane's deliveries that ended with no recorded failure. */
  crashes?: number;
  /** The error of this attempt; otherwise the last recorded attempt's. */
  lastError?: string;
  /** Id of a valid order: its ledger key is claimed so it cannot also be committed. */
  validOrderId?: string;
  /** Best-effort id of an invalid payload, for people reading the DLQ (the claim is by payloadClaimKey). */
  displayOrderId?: string;
}

/**
 * "already-dead-lettered": the order id was dead-lettered from another stream message (it was
 * published twice, outside the duplicate window); this copy is a duplicate, not a second entry.
 */
export type DeadLetterResult = "dead-lettered" | "already-committed" | "already-dead-lettered";

export async function deadLetter(ctx: DeadLetterContext, input: DeadLetterInput): Promise<DeadLetterResult> {
  const result = await deadLetterOnce(ctx, input);
  ctx.trace?.(`dead-letter ${input.validOrderId ?? input.displayOrderId ?? "?"} seq=${input.streamSeq} ${input.reason}: ${result}`);
  return result;
}

async function deadLetterOnce(ctx: DeadLetterContext, input: DeadLetterInput): Promise<DeadLetterResult> {
  const now = new Date().toISOString();
  const msgId = input.headers?.get("Nats-Msg-Id") || undefined;
  const key = input.validOrderId ?? payloadClaimKey(input.payload, msgId);
  const claim = await ctx.ledger.record(key, {
    result: "dead-lettered",
    worker: ctx.worker,
    attempt: input.deliveries,
    streamSeq: input.streamSeq,
    at: now,
    reason: input.reason,
    error: input.lastError,
  });
  if (claim.written && claim.seq !== undefined) ctx.trace?.(ackedWriteLine("ledger", claim.seq, key));
  if (!claim.written)
    ctx.trace?.(
      `dead-letter ${key} seq=${input.streamSeq}: ledger has ${claim.existing ? `${claim.existing.result} by ${claim.existing.worker} seq=${claim.existing.streamSeq}` : "a key it could not read back"}`,
    );
  // Held, but by what is unknown: a copy now could dead-letter a committed order. Retry later.
  if (!claim.written && !claim.existing) throw new Error(`the ledger holds ${key} but its outcome could not be read`);
  // A committed order is done; a dead-letter claim left by a move of this same message that
  // died before its copy is finished below.
  if (!claim.written && claim.existing?.result === "committed") return "already-committed";
  if (!claim.written && claim.existing && claim.existing.streamSeq !== input.streamSeq) return "already-dead-lettered";
  const attempts = await ctx.attempts.list(input.streamSeq);
  const source = input.subject.split(".").pop() ?? "unknown";
  const entry: DlqEntry = {
    reason: input.reason,
    lastError: input.lastError ?? attempts.at(-1)?.error ?? "no attempt reported an error: the worker crashed or hung on it",
    orderId: input.validOrderId ?? input.displayOrderId,
    source,
    originalStream: ctx.names.stream,
    originalSubject: input.subject,
    originalSeq: input.streamSeq,
    originalHeaders: headersToRecord(input.headers),
    consumer: ctx.names.consumer,
    deliveries: input.deliveries,
    ...(input.crashes !== undefined && { crashes: input.crashes }),
    attempts,
    firstAttemptAt: attempts[0]?.at,
    lastAttemptAt: attempts.at(-1)?.at,
    deadLetteredAt: now,
  };
  // The copy's Nats-Msg-Id (see dlqMsgId) is set by the codec, which must put it first.
  const copyId = dlqMsgId(ctx.names, input.streamSeq, msgId);
  const copy = boundDlqCopy(entry, input.payload, ctx.maxPayload ?? DEFAULT_MAX_PAYLOAD, copyId);
  const ack = await ctx.js.publish(dlqSubject(ctx.names, source, copy.entry.reason), copy.payload, { headers: encodeDlqHeaders(copy.entry, copyId) });
  if (!ack.duplicate) ctx.trace?.(ackedWriteLine("dlq", ack.seq, copy.entry.orderId ?? `seq:${input.streamSeq}`));
  if (!ack.duplicate) ctx.counter?.deadLettered(source, copy.entry.reason);
  // Another mover (or the worker) copied it first: the stream kept one entry, and so do the counts.
  return ack.duplicate ? "already-dead-lettered" : "dead-lettered";
}
