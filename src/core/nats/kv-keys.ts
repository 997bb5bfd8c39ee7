/**
 * Compare-and-set on one KV key, as the ledger (pipeline/ledger.ts) and the gateway's key store
 * (intake/key-store.ts) do it: a write that names the key's expected last subject sequence, the error
 * JetStream answers when the key moved on, and a read of the key's last write from the stream leader.
 */
import { headers, type MsgHdrs } from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import { constantHeaders } from "./client-internals.js";
import { kvStreamName } from "./names.js";

/**
 * The headers of a create-if-absent write (what kv.create() sends first): it succeeds only if the key
 * has never been written, or was purged (its last subject sequence is 0 again). On a clustered stream
 * nats-server 2.9.10 checks an expectation of 0 when it applies the write, in the log's one order, so
 * of racing creates exactly one succeeds; a non-zero expectation it checks before replication, where
 * racing writers can all pass.
 */
export const CREATE_ONLY = constantHeaders({ "Nats-Expected-Last-Subject-Sequence": "0" });

/**
 * The headers of an update of a key read at revision `seq` (what kv.update() sends): it succeeds only
 * if nobody wrote the key since. nats-server 2.9.10 checks this non-zero expectation before
 * replication, so on a clustered stream several racing writers can all pass (see CREATE_ONLY).
 */
export function expectLastSequence(seq: number): MsgHdrs {
  const h = headers();
  h.set("Nats-Expected-Last-Subject-Sequence", String(seq));
  return h;
}

/**
 * JetStream API error codes of a write whose Nats-Expected-Last-Subject-Sequence did not match the
 * key's: 10071 (JSStreamWrongLastSequenceErrF, "wrong last sequence: N", what nats-server 2.9 answers)
 * and 10164 (the client's StreamWrongLastSequenceUnknown, the variant newer servers answer).
 */
const WRONG_LAST_SEQUENCE: readonly number[] = [JetStreamApiCodes.StreamWrongLastSequence, JetStreamApiCodes.StreamWrongLastSequenceUnknown];

/**
 * Whether `err` is JetStream refusing a write because the key's last subject sequence was not the one
 * expected: for a create (expected 0), the key exists already; for an update, another writer won.
 * Decided by API error code (above), never by message text.
 */
export function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && WRONG_LAST_SEQUENCE.includes(err.code);
}

/**
 * The last write of `key` in KV bucket `bucket`, read from the stream leader (a message get with
 * last_by_subj): its stream sequence (the key's revision) and its JSON value, or no value when that
 * write is a delete or purge marker (a KV-Operation header, no data: the key holds nothing now).
 * Undefined when the key has no message (never written, purged, or expired).
 *
 * Not kv.get(): on a replicated bucket (allow_direct) that is a direct get, which nats-server 2.9 lets
 * every replica answer — a follower joins once it is 90% caught up — so a node just back from a crash
 * answers "no such key" for a key written long ago. Throws what the client throws when the stream
 * does not answer (timeout, no connection, the bucket's stream is missing).
 */
export async function lastKeyWrite<T>(jsm: JetStreamManager, bucket: string, key: string): Promise<{ seq: number; value?: T } | undefined> {
  const msg = await jsm.streams.getMessage(kvStreamName(bucket), { last_by_subj: `$KV.${bucket}.${key}` });
  if (!msg) return undefined;
  if (msg.header?.get("KV-Operation") || msg.data.length === 0) return { seq: msg.seq };
  return { seq: msg.seq, value: msg.json<T>() };
}
