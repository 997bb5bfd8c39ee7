/**
 * The quarantine lane's copies (DESIGN.md, Crash isolation). A suspect — an order whose previous
 * delivery ended with no recorded failure: the worker died or lost its lease while holding it — is
 * copied to the quarantine stream and then acked in ORDERS. Lane workers take one copy at a time in a
 * process of their own, so a crash there charges only the order that caused it; in the main lane a
 * crash takes every order in flight beside it down too, which is why none of them is charged there.
 *
 * A copy carries the original's headers, with its Nats-Msg-Id replaced by quarantineMsgId (a copy
 * retried after a crash between copy and ack stays single) and the original's identity in
 * Orderq-Original-* headers, so the lane records outcomes, attempts and DLQ entries under the ORDERS
 * message they stand for: the ledger key stays the order id, and exactly-once holds across the lanes.
 */
import { headers, type MsgHdrs } from "@nats-io/transport-node";
import { PubHeaders, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { quarantineMsgId, quarantineSubject, type Names } from "../nats/names.js";

const ORIGINAL_SEQ = "Orderq-Original-Seq";
const ORIGINAL_SUBJECT = "Orderq-Original-Subject";
const ORIGINAL_MSG_ID = "Orderq-Original-Msg-Id";

/** The ORDERS message a delivery stands for. */
export interface OriginalMessage {
  /** Its sequence in ORDERS. */
  seq: number;
  subject: string;
  /** Its own headers (Nats-Msg-Id included), as the producer sent them. */
  headers?: MsgHdrs;
}

/**
 * Publishes the quarantine copy of `original` (payload unchanged). Resolves on the PubAck; a
 * duplicate PubAck means an earlier try stored it already, which is just as good. Throws when the
 * stream cannot be reached: the caller then leaves the original unacked.
 */
export async function copyToQuarantine(js: JetStreamClient, names: Names, original: OriginalMessage, payload: Uint8Array): Promise<void> {
  const msgId = original.headers?.get(PubHeaders.MsgIdHdr) || undefined;
  const h = headers();
  // First, as in encodeDlqHeaders: nats-server 2.9 only sees a Nats-Msg-Id that starts the header block's first match.
  h.set(PubHeaders.MsgIdHdr, quarantineMsgId(names, original.seq, msgId));
  for (const [key, values] of original.headers ?? []) {
    if (key.toLowerCase() === PubHeaders.MsgIdHdr.toLowerCase()) continue;
    for (const value of values) h.append(key, value);
  }
  h.set(ORIGINAL_SEQ, String(original.seq));
  h.set(ORIGINAL_SUBJECT, original.subject);
  if (msgId !== undefined) h.set(ORIGINAL_MSG_ID, msgId);
  const source = original.subject.split(".").pop() ?? "unknown";
  await js.publish(quarantineSubject(names, source), payload, { headers: h });
}

/** The ORDERS message a quarantine copy stands for; throws when the copy lacks the headers copyToQuarantine sets. */
export function originalOf(copy: JsMsg): OriginalMessage {
  const seq = Number(copy.headers?.get(ORIGINAL_SEQ));
  const subject = copy.headers?.get(ORIGINAL_SUBJECT);
  if (!Number.isInteger(seq) || seq < 1 || !subject) {
    throw new Error(`quarantine message ${copy.info.streamSequence} has no ${ORIGINAL_SEQ}/${ORIGINAL_SUBJECT} headers`);
  }
  const h = headers();
  const msgId = copy.headers?.get(ORIGINAL_MSG_ID);
  if (msgId) h.set(PubHeaders.MsgIdHdr, msgId);
  for (const [key, values] of copy.headers ?? []) {
    if ([PubHeaders.MsgIdHdr, ORIGINAL_SEQ, ORIGINAL_SUBJECT, ORIGINAL_MSG_ID].some((k) => k.toLowerCase() === key.toLowerCase())) continue;
    for (const value of values) h.append(key, value);
  }
  return { seq, subject, headers: h };
}
