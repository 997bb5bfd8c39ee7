/** The DLQ as people use it: list, show, replay, purge. */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { decodeDlqEntry, MalformedDlqEntryError, type DlqReason, type StoredDlqEntry } from "../pipeline/dlq-entry.js";
import { EnvironmentError, InputError, errorMessage } from "../base/errors.js";
import { InboxStore } from "../inbox/store.js";
import { Ledger } from "../pipeline/ledger.js";
import type { Outcome, OutcomeStore } from "../pipeline/outcome-store.js";
import { dlqSubject, orderSubject, type Names } from "../nats/names.js";
import { deleteIfPresent, isNotFound } from "../nats/not-found.js";
import { readStream } from "../nats/stream-reader.js";

export interface DlqFilter {
  source?: string;
  reason?: DlqReason;
  /** Dead-lettered at or after this time (ms since epoch). */
  sinceMs?: number;
  /** Dead-lettered before this time (for purge --older-than). */
  beforeMs?: number;
  /** Only entries at or after this DLQ sequence (and at or before `toSeq`). */
  fromSeq?: number;
  toSeq?: number;
}

export interface DlqScan {
  entries: StoredDlqEntry[];
  /** Sequences of messages in the DLQ stream that are not orderq entries (published there by hand). */
  foreign: number[];
}

/** Every entry that passes the filter; a foreign message is set aside, never a reason to fail. */
export async function scanDlq(nc: NatsConnection, names: Names, filter: DlqFilter = {}): Promise<DlqScan> {
  const subject = filter.source ? dlqSubject(names, filter.source) : undefined;
  const out: DlqScan = { entries: [], foreign: [] };
  for await (const msg of readDlqStream(nc, names, subject, filter.fromSeq)) {
    if (filter.toSeq !== undefined && msg.seq > filter.toSeq) continue; // read on: the reader ends itself
    let entry: StoredDlqEntry;
    try {
      entry = decodeDlqEntry(msg.headers, msg.data, msg.seq);
    } catch (err) {
      if (!(err instanceof MalformedDlqEntryError)) throw err;
      out.foreign.push(msg.seq);
      continue;
    }
    const at = Date.parse(entry.deadLetteredAt);
    if (filter.reason && entry.reason !== filter.reason) continue;
    if (filter.sinceMs !== undefined && at < filter.sinceMs) continue;
    if (filter.beforeMs !== undefined && at >= filter.beforeMs) continue;
    out.entries.push(entry);
  }
  return out;
}

export async function listDlq(nc: NatsConnection, names: Names, filter: DlqFilter = {}): Promise<StoredDlqEntry[]> {
  return (await scanDlq(nc, names, filter)).entries;
}

async function* readDlqStream(nc: NatsConnection, names: Names, subject?: string, fromSeq?: number) {
  try {
    yield* readStream(jetstream(nc), names.dlqStream, subject, fromSeq);
  } catch (err) {
    if (isNotFound(err, "stream")) {
      throw new EnvironmentError(`stream ${names.dlqStream} not found: run \`orderq topology ensure\` or pass --dlq-stream`);
    }
    throw err;
  }
}

/**
 * How an operator names a DLQ entry: `seq:42` is the entry at DLQ sequence 42, `id:X` every entry of
 * order X, and a bare argument is always an order id — never a sequence, so `dlq purge 1` cannot reach
 * another order's entry that happens to sit at sequence 1. (An order id that starts with `seq:` or
 * `id:` is written with the `id:` prefix: `id:seq:7`.)
 */
export type DlqSelector = { seq: number; text: string } | { orderId: string; text: string };

/** A selector from its text. Throws InputError for `seq:` without a positive whole number, or an empty id. */
export function parseSelector(text: string): DlqSelector {
  if (text.startsWith("seq:")) {
    const digits = text.slice(4);
    if (!/^[1-9]\d*$/.test(digits)) throw new InputError(`${text}: a DLQ sequence is a whole number from 1 (e.g. seq:42)`);
    return { seq: Number(digits), text };
  }
  const orderId = text.startsWith("id:") ? text.slice(3) : text;
  if (orderId === "") throw new InputError(`${text}: an empty order id (write id:<order id> or seq:<DLQ sequence>)`);
  return { orderId, text };
}

/**
 * Resolves selectors (parseSelector) to entries, each entry once, in DLQ order. An unknown selector is
 * an InputError naming it, raised before anything is changed; a bare number that is no order's id but
 * is a DLQ sequence is named with the `seq:` spelling that selects it.
 */
export function select(entries: StoredDlqEntry[], selectors: string[]): StoredDlqEntry[] {
  const parsed = selectors.map(parseSelector);
  const chosen = new Map<number, StoredDlqEntry>();
  const unknown: string[] = [];
  for (const sel of parsed) {
    const matches = "seq" in sel ? entries.filter((e) => e.dlqSeq === sel.seq) : entries.filter((e) => e.orderId === sel.orderId);
    if (matches.length === 0) {
      const asSeq = "orderId" in sel && sel.text === sel.orderId && /^\d+$/.test(sel.text) && entries.some((e) => e.dlqSeq === Number(sel.text));
      unknown.push(asSeq ? `${sel.text} (no order has that id; the entry at DLQ sequence ${sel.text} is seq:${sel.text})` : sel.text);
    }
    for (const m of matches) chosen.set(m.dlqSeq, m);
  }
  if (unknown.length) throw new InputError(`not in the DLQ: ${unknown.join(", ")}`);
  return [...chosen.values()].sort((a, b) => a.dlqSeq - b.dlqSeq);
}

export interface ReplayOutcome {
  dlqSeq: number;
  orderId?: string;
  /** "failed": an error (broker unreachable, timeout); the entry stays in the DLQ, replay it again. */
  result: "replayed" | "refused" | "would-replay" | "failed";
  reason?: string;
  /** Sequence of the new message in the orders stream. */
  newSeq?: number;
}

/**
 * Publishes entries back to `orders.<source>` with a fresh message id and removes each from the DLQ
 * only after its PubAck. An order the ledger of record holds as committed is refused: it would not be
 * processed. In inbox mode (`opts.inbox`: the inbox's URL and table) that ledger is the inbox table,
 * whose dead-letter claim must be released for the replayed order to be processed.
 */
export async function replay(
  nc: NatsConnection,
  names: Names,
  entries: StoredDlqEntry[],
  opts: { dryRun: boolean; inbox?: { url: string; table: string } },
): Promise<ReplayOutcome[]> {
  const ledger = opts.inbox ? await InboxStore.open({ ...opts.inbox, poolSize: 1, maxBatch: 1 }) : await Ledger.open(nc, names);
  const ctx: ReplayContext = { names, js: jetstream(nc), jsm: await jetstreamManager(nc), ledger };
  const out: ReplayOutcome[] = [];
  for (const entry of entries) {
    try {
      out.push(await replayOne(ctx, entry, opts.dryRun));
    } catch (err) {
      // One broken entry must not hide the outcome of the others.
      out.push({ dlqSeq: entry.dlqSeq, orderId: entry.orderId, result: "failed", reason: errorMessage(err) });
    }
  }
  await ctx.ledger.close();
  return out;
}

interface ReplayContext {
  names: Names;
  js: JetStreamClient;
  jsm: JetStreamManager;
  ledger: OutcomeStore;
}

async function replayOne(ctx: ReplayContext, entry: StoredDlqEntry, dryRun: boolean): Promise<ReplayOutcome> {
  const base = { dlqSeq: entry.dlqSeq, orderId: entry.orderId };
  if (entry.reason === "invalid-payload") {
    return { ...base, result: "refused", reason: "invalid payload: it would only be dead-lettered again" };
  }
  if (!entry.orderId) return { ...base, result: "refused", reason: "entry has no order id" };
  if (entry.payloadOmitted) {
    return { ...base, result: "refused", reason: `the payload was not kept (${entry.payloadOmitted.bytes} bytes, too large for a DLQ copy)` };
  }
  const committed: Outcome | undefined = dryRun
    ? await ctx.ledger.get(entry.orderId).then((o) => (o?.result === "committed" ? o : undefined))
    : await ctx.ledger.releaseDeadLetter(entry.orderId);
  if (committed) {
    return { ...base, result: "refused", reason: `already committed by ${committed.worker} at ${committed.at}` };
  }
  if (dryRun) return { ...base, result: "would-replay" };
  const ack = await ctx.js.publish(orderSubject(ctx.names, entry.source), entry.payload, {
    // A fresh id: the original id may still be inside the orders stream's duplicate window. Stable
    // per DLQ entry, so a replay retried after a lost PubAck is stored once.
    msgID: `replay:${ctx.names.dlqStream}:${entry.dlqSeq}`,
  });
  await deleteIfPresent(ctx.jsm, ctx.names.dlqStream, entry.dlqSeq);
  return { ...base, result: "replayed", newSeq: ack.seq };
}

export async function purge(nc: NatsConnection, names: Names, entries: StoredDlqEntry[]): Promise<number> {
  const jsm = await jetstreamManager(nc);
  let purged = 0;
  for (const entry of entries) {
    if (await deleteIfPresent(jsm, names.dlqStream, entry.dlqSeq)) purged++;
  }
  return purged;
}

/** Entries (or their reasons) counted by reason, every reason present. */
export function countByReason(entries: Iterable<{ reason: DlqReason } | DlqReason>): Record<DlqReason, number> {
  const counts: Record<DlqReason, number> = { "invalid-payload": 0, "non-retryable": 0, "max-deliveries": 0 };
  for (const e of entries) counts[typeof e === "string" ? e : e.reason]++;
  return counts;
}
