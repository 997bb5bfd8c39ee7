/** The DLQ as people use it: list, show, replay, purge. */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { decodeDlqEntry, type DlqReason, type StoredDlqEntry } from "./dlq-entry.js";
import { InputError } from "./errors.js";
import { Ledger, type Outcome } from "./ledger.js";
import { dlqSubject, orderSubject, type Names } from "./names.js";
import { readStream } from "./stream-reader.js";

export interface DlqFilter {
  source?: string;
  reason?: DlqReason;
  /** Dead-lettered at or after this time (ms since epoch). */
  sinceMs?: number;
  /** Dead-lettered before this time (for purge --older-than). */
  beforeMs?: number;
}

export async function listDlq(nc: NatsConnection, names: Names, filter: DlqFilter = {}): Promise<StoredDlqEntry[]> {
  const subject = filter.source ? dlqSubject(names, filter.source) : undefined;
  const out: StoredDlqEntry[] = [];
  for await (const msg of readStream(jetstream(nc), names.dlqStream, subject)) {
    const entry = decodeDlqEntry(msg.headers, msg.data, msg.seq);
    const at = Date.parse(entry.deadLetteredAt);
    if (filter.reason && entry.reason !== filter.reason) continue;
    if (filter.sinceMs !== undefined && at < filter.sinceMs) continue;
    if (filter.beforeMs !== undefined && at >= filter.beforeMs) continue;
    out.push(entry);
  }
  return out;
}

/**
 * Resolves selectors — a DLQ sequence number or an order id — to entries. An unknown selector is an
 * InputError naming it, raised before anything is changed.
 */
export function select(entries: StoredDlqEntry[], selectors: string[]): StoredDlqEntry[] {
  const chosen = new Map<number, StoredDlqEntry>();
  const unknown: string[] = [];
  for (const sel of selectors) {
    const bySeq = /^\d+$/.test(sel) ? entries.filter((e) => e.dlqSeq === Number(sel)) : [];
    const matches = bySeq.length ? bySeq : entries.filter((e) => e.orderId === sel);
    if (matches.length === 0) unknown.push(sel);
    for (const m of matches) chosen.set(m.dlqSeq, m);
  }
  if (unknown.length) throw new InputError(`not in the DLQ: ${unknown.join(", ")}`);
  return [...chosen.values()].sort((a, b) => a.dlqSeq - b.dlqSeq);
}

export interface ReplayOutcome {
  dlqSeq: number;
  orderId?: string;
  result: "replayed" | "refused" | "would-replay";
  reason?: string;
  /** Sequence of the new message in the orders stream. */
  newSeq?: number;
}

/**
 * Publishes entries back to `orders.<source>` with a fresh message id and removes each from the DLQ
 * only after its PubAck. An order the ledger holds as committed is refused: it would not be processed.
 */
export async function replay(
  nc: NatsConnection,
  names: Names,
  entries: StoredDlqEntry[],
  opts: { dryRun: boolean },
): Promise<ReplayOutcome[]> {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const ledger = await Ledger.open(nc, names);
  const out: ReplayOutcome[] = [];
  for (const entry of entries) {
    const base = { dlqSeq: entry.dlqSeq, orderId: entry.orderId };
    if (entry.reason === "invalid-payload") {
      out.push({ ...base, result: "refused", reason: "invalid payload: it would only be dead-lettered again" });
      continue;
    }
    if (!entry.orderId) {
      out.push({ ...base, result: "refused", reason: "entry has no order id" });
      continue;
    }
    const committed: Outcome | undefined = opts.dryRun
      ? await ledger.get(entry.orderId).then((o) => (o?.result === "committed" ? o : undefined))
      : await ledger.releaseDeadLetter(entry.orderId);
    if (committed) {
      out.push({ ...base, result: "refused", reason: `already committed by ${committed.worker} at ${committed.at}` });
      continue;
    }
    if (opts.dryRun) {
      out.push({ ...base, result: "would-replay" });
      continue;
    }
    const ack = await js.publish(orderSubject(names, entry.source), entry.payload, {
      // A fresh id: the original id may still be inside the orders stream's duplicate window.
      msgID: `replay:${names.dlqStream}:${entry.dlqSeq}`,
    });
    await jsm.streams.deleteMessage(names.dlqStream, entry.dlqSeq, false);
    out.push({ ...base, result: "replayed", newSeq: ack.seq });
  }
  return out;
}

export async function purge(nc: NatsConnection, names: Names, entries: StoredDlqEntry[]): Promise<number> {
  const jsm = await jetstreamManager(nc);
  let purged = 0;
  for (const entry of entries) {
    if (await jsm.streams.deleteMessage(names.dlqStream, entry.dlqSeq, false)) purged++;
  }
  return purged;
}

export function countByReason(entries: StoredDlqEntry[]): Record<DlqReason, number> {
  const counts: Record<DlqReason, number> = { "invalid-payload": 0, "non-retryable": 0, "max-deliveries": 0 };
  for (const e of entries) counts[e.reason]++;
  return counts;
}
