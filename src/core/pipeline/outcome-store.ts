/**
 * Where an order's outcome is recorded, as the worker and the DLQ paths see it. Two stores implement
 * it: the KV ledger (the default) and the PostgreSQL inbox (inbox mode, where the outcome row commits
 * in the same transaction as the handler's effects). The pipeline only knows these interfaces, so the
 * inbox room sits above it and is wired in by the process that runs the worker.
 */
import { createHash } from "node:crypto";
import type { DlqReason } from "./dlq-entry.js";

/**
 * Keys of dead-letter claims for payloads with no valid order id start with this. Order ids are
 * `[A-Za-z0-9_-]` only (order.ts), so such a key can never be an order's; readers of the ledger of
 * record that count orders leave these keys out (isPayloadClaim).
 */
export const PAYLOAD_CLAIM_PREFIX = "invalid.";

/**
 * The ledger key that arbitrates the dead-lettering of a payload with no valid order id: `invalid.m.`
 * and the SHA-256 of its Nats-Msg-Id when it has one (a re-send of the same publish carries the same
 * id, whatever the broker forgot), else `invalid.c.` and the SHA-256 of the payload itself. Hex, so it
 * is a valid KV key and inbox key whatever the id contains.
 */
export function payloadClaimKey(payload: Uint8Array, msgId?: string): string {
  const sha = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");
  return msgId ? `${PAYLOAD_CLAIM_PREFIX}m.${sha(msgId)}` : `${PAYLOAD_CLAIM_PREFIX}c.${sha(payload)}`;
}

/** Whether a ledger key is a payload claim (payloadClaimKey), not an order id. */
export function isPayloadClaim(key: string): boolean {
  return key.startsWith(PAYLOAD_CLAIM_PREFIX);
}

/** What the ledger of record holds for one order id. */
export interface Outcome {
  result: "committed" | "dead-lettered";
  worker: string;
  /** The delivery (JetStream's delivery count, from 1) that made the outcome real. */
  attempt: number;
  /** The order's sequence in the ORDERS stream. */
  streamSeq: number;
  /** ISO-8601 time of the write. */
  at: string;
  /** Set when the quarantine lane made it; `attempt` then counts that lane's deliveries. */
  lane?: "quarantine";
  /** For a dead-letter claim: why, so a move interrupted before its copy can be finished as begun. */
  reason?: DlqReason;
  error?: string;
}

/**
 * "written": this call made the outcome real (for the KV ledger, at `seq` of its stream; unknown when
 * a retry found its own earlier write); otherwise the outcome that was there already.
 */
export type RecordResult = { written: true; seq?: number } | { written: false; existing?: Outcome };

/** The ledger of record: one outcome per order id, written create-if-absent. */
export interface OutcomeStore {
  /** The outcome recorded for `orderId`, if any. */
  get(orderId: string): Promise<Outcome | undefined>;
  /** Create-if-absent: the commit of a dead-letter claim (or, for the KV ledger, of a commit). */
  record(orderId: string, outcome: Outcome): Promise<RecordResult>;
  /**
   * Before a DLQ replay: drops a dead-letter claim so the replayed order can be committed. Returns the
   * committed outcome instead when the order was processed (the replay must be refused).
   */
  releaseDeadLetter(orderId: string): Promise<Outcome | undefined>;
  /** Releases connections and timers; what is still waiting fails. */
  close(): Promise<void>;
}

/**
 * A statement as node-postgres' query config. With a `name`, it is a prepared statement: parsed and
 * planned once per connection, then only bound and executed, which for a statement with CTEs can be
 * most of its database CPU. One name must always carry the same `text` (node-postgres refuses a
 * second text); the names orderq uses itself begin with `orderq_`.
 */
export interface DbQuery {
  text: string;
  values?: unknown[];
  name?: string;
}

/** The open transaction a handler writes through in inbox mode (`ctx.db`): node-postgres' `query`. */
export interface DbClient {
  query<Row extends Record<string, unknown> = Record<string, unknown>>(
    query: string | DbQuery,
    values?: unknown[],
  ): Promise<{ rows: Row[]; rowCount: number | null }>;
}

/**
 * What became of one order run through a transactional commit:
 * - `committed`: the handler ran and its effects committed with the outcome row (ack it);
 * - `exists`: the order has an outcome already, so the handler did not run (ack it, or finish its
 *   dead-letter move);
 * - `busy`: another delivery of the same order is in a transaction right now (nak it with a delay);
 * - `failed`: the handler threw, or its database work failed; its effects were rolled back.
 */
export type TransactionResult = { kind: "committed" } | { kind: "exists"; existing: Outcome } | { kind: "busy" } | { kind: "failed"; error: unknown };

/** Inbox mode: the outcome row and the handler's effects in one database transaction. */
export interface TransactionalCommit {
  /**
   * Claims `orderId` with `outcome` and runs `work` in the same transaction. Resolves once the
   * transaction is over (committed, or the order's part rolled back). Throws when the database
   * failed (connection lost, commit refused): nothing of the order was committed, and it is left for
   * redelivery.
   */
  run(orderId: string, outcome: Outcome, work: (db: DbClient) => Promise<void>): Promise<TransactionResult>;
}
