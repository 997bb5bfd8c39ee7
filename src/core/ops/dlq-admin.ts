/**
 * The DLQ as people use it: list, show, replay, purge. A message orderq did not write (a foreign
 * message) is listed, shown and purged like an entry, and never replayed.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type MsgRequest } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/transport-node";
import { decodeDlqEntry, DLQ_REASONS, headersToRecord, MalformedDlqEntryError, type DlqReason, type StoredDlqEntry } from "../pipeline/dlq-entry.js";
import { EnvironmentError, InputError, errorMessage } from "../base/errors.js";
import { InboxStore } from "../inbox/store.js";
import { Ledger } from "../pipeline/ledger.js";
import type { Outcome, OutcomeStore } from "../pipeline/outcome-store.js";
import { dlqSubject, orderSubject, type Names } from "../nats/names.js";
import { deleteIfPresent, isNotFound } from "../nats/not-found.js";
import { readStream } from "../nats/stream-reader.js";
import { ledgerRetentionMs } from "../nats/topology.js";
import { formatDuration } from "../base/duration.js";

/** jetstreamManager() otherwise asks the server for its account info first: one more round trip per read. */
const NO_API_CHECK = { checkAPI: false };

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
  /** Messages in the DLQ stream that are not orderq entries (published there by hand), by sequence. */
  foreign: ForeignDlqMessage[];
}

/**
 * A message in the DLQ stream that orderq did not write, or cannot read as an entry: published to a
 * DLQ subject by hand or by another tool, with no orderq headers or with ones that do not parse.
 * Listed, shown and purged like an entry; never replayed: nothing in it says which order it is or
 * where it came from.
 */
export interface ForeignDlqMessage {
  foreign: true;
  dlqSeq: number;
  subject: string;
  /** Why it is not an orderq entry, one line (e.g. "has no Orderq-Reason header"). */
  problem: string;
  headers: Record<string, string[]>;
  payload: Uint8Array;
  /** When the server stored it, ISO 8601. */
  storedAt: string;
}

/** Decodes a DLQ message: an orderq entry, or a ForeignDlqMessage saying why it is not one. */
function decodeDlqMessage(m: { seq: number; subject: string; headers?: MsgHdrs; data: Uint8Array; time: Date }): StoredDlqEntry | ForeignDlqMessage {
  try {
    return decodeDlqEntry(m.headers, m.data, m.seq);
  } catch (err) {
    if (!(err instanceof MalformedDlqEntryError)) throw err;
    return {
      foreign: true,
      dlqSeq: m.seq,
      subject: m.subject,
      problem: err.message.replace(/^DLQ message \d+:? /, ""), // the sequence is beside it

      headers: headersToRecord(m.headers),
      payload: m.data,
      storedAt: m.time.toISOString(),
    };
  }
}

/** Whether a decoded DLQ message is a foreign one. */
export function isForeign(m: StoredDlqEntry | ForeignDlqMessage): m is ForeignDlqMessage {
  return "foreign" in m;
}

/**
 * The subjects that can hold entries matching `filter` (undefined: the whole stream): the entry's
 * `<source>.<reason>` subject, and `<source>` alone, where an older orderq wrote its entries.
 */
function filterSubjects(names: Names, filter: DlqFilter): Array<string | undefined> {
  if (!filter.source && !filter.reason) return [undefined];
  const source = filter.source ?? "*";
  return [dlqSubject(names, source), dlqSubject(names, source, filter.reason ?? "*")];
}

/**
 * Every entry that passes the filter, in sequence order; a foreign message is set aside, never a
 * reason to fail. With `toSeq`, reads no further than that many sequences from `fromSeq` (a window of
 * the stream costs the window, not the rest of the stream).
 */
export async function scanDlq(nc: NatsConnection, names: Names, filter: DlqFilter = {}): Promise<DlqScan> {
  const out: DlqScan = { entries: [], foreign: [] };
  for (const subject of filterSubjects(names, filter)) await scanSubject(nc, names, subject, filter, out);
  out.entries.sort((a, b) => a.dlqSeq - b.dlqSeq);
  out.foreign.sort((a, b) => a.dlqSeq - b.dlqSeq);
  return out;
}

/** Adds the entries of one subject (undefined: every subject) that pass the filter to `out`. */
async function scanSubject(nc: NatsConnection, names: Names, subject: string | undefined, filter: DlqFilter, out: DlqScan): Promise<void> {
  const limit = filter.toSeq === undefined ? undefined : filter.toSeq - (filter.fromSeq ?? 1) + 1;
  if (subject !== undefined && filter.toSeq !== undefined) {
    // A window with no message on the subject: an ordered consumer would wait for its fetch to
    // expire (1 s) to learn that; the first match at or after the window's start says it at once.
    // next_by_subj (wildcards allowed) is in nats-server 2.9's message get API; the client's type for it leaves it out.
    const next = { seq: filter.fromSeq ?? 1, next_by_subj: subject } as unknown as MsgRequest;
    const first = await (await jetstreamManager(nc, NO_API_CHECK)).streams.getMessage(names.dlqStream, next).catch((err: unknown) => {
      if (isNotFound(err)) return null;
      throw err;
    });
    if (!first || first.seq > filter.toSeq) return;
  }
  for await (const msg of readDlqStream(nc, names, subject, filter.fromSeq, limit)) {
    if (filter.toSeq !== undefined && msg.seq > filter.toSeq) break; // past the window
    const entry = decodeDlqMessage(msg);
    if (isForeign(entry)) {
      out.foreign.push(entry);
      continue;
    }
    const at = Date.parse(entry.deadLetteredAt);
    if (filter.reason && entry.reason !== filter.reason) continue;
    if (filter.sinceMs !== undefined && at < filter.sinceMs) continue;
    if (filter.beforeMs !== undefined && at >= filter.beforeMs) continue;
    out.entries.push(entry);
  }
}

export async function listDlq(nc: NatsConnection, names: Names, filter: DlqFilter = {}): Promise<StoredDlqEntry[]> {
  return (await scanDlq(nc, names, filter)).entries;
}

/**
 * The newest `limit` entries that pass the filter (all of them since `filter.sinceMs` when that is
 * set), read backwards from the end of the stream in windows of sequences that double, so the cost
 * follows the page (and, for a filter, how rare its matches are), not the size of the DLQ.
 */
export async function pageDlq(nc: NatsConnection, names: Names, filter: DlqFilter, limit = Number.POSITIVE_INFINITY): Promise<DlqScan> {
  const { state } = await dlqInfo(await jetstreamManager(nc), names);
  const out: DlqScan = { entries: [], foreign: [] };
  const { sinceMs, ...rest } = filter;
  let to = state.last_seq;
  let window = Number.isFinite(limit) ? Math.max(limit, 20) : 1000;
  while (state.messages > 0 && to >= state.first_seq && (sinceMs !== undefined || out.entries.length < limit)) {
    const from = Math.max(state.first_seq, to - window + 1);
    const part = await scanDlq(nc, names, { ...rest, fromSeq: from, toSeq: to });
    const recent = sinceMs === undefined ? part.entries : part.entries.filter((e) => Date.parse(e.deadLetteredAt) >= sinceMs);
    out.entries.unshift(...recent);
    out.foreign.unshift(...part.foreign);
    // Entries are appended in time order: one older than `since` means every earlier one is too.
    if (recent.length < part.entries.length) break;
    to = from - 1;
    window *= 2;
  }
  if (sinceMs === undefined && out.entries.length > limit) out.entries = out.entries.slice(-limit);
  return out;
}

/**
 * The foreign messages in the DLQ (see ForeignDlqMessage), oldest first: those stored since `sinceMs`
 * (epoch ms) when given, the newest `limit` when given. Reads the whole DLQ: a foreign message is known
 * only by reading it.
 */
export async function listForeign(nc: NatsConnection, names: Names, sinceMs?: number, limit?: number): Promise<ForeignDlqMessage[]> {
  const recent = (await scanDlq(nc, names)).foreign.filter((m) => sinceMs === undefined || Date.parse(m.storedAt) >= sinceMs);
  return limit === undefined ? recent : recent.slice(-limit);
}

/**
 * What a DLQ subject says: its source, and its reason when it is `<prefix>.<source>.<reason>` with a
 * reason orderq writes (none on an older orderq's `<prefix>.<source>`); `foreign` for any other shape.
 */
function dlqSubjectParts(names: Names, subject: string): { source: string; reason?: DlqReason; foreign: boolean } {
  const [source, reason, ...more] = subject.slice(names.dlqSubjectPrefix.length + 1).split(".");
  if (reason === undefined) return { source, foreign: false };
  if (more.length > 0 || !DLQ_REASONS.includes(reason as DlqReason)) return { source, foreign: true };
  return { source, reason: reason as DlqReason, foreign: false };
}

/** Entries by reason, counted by the server (stream info's per-subject counts). */
export interface DlqCounts {
  /** Entries matching the filter. */
  total: number;
  byReason: Record<DlqReason, number>;
  /** Messages that are not orderq entries (on no DLQ subject of orderq's, or unreadable on a `<source>` one). */
  foreign: number;
}

/**
 * Counts the entries matching `filter` by reason without reading them: the reason is the last token
 * of an entry's subject. Only entries on a `<source>` subject (written by an orderq before the reason
 * was in the subject) are read, to learn their reason. A message on a `<source>.<reason>` subject is
 * counted as that reason whatever it holds. Throws EnvironmentError when the DLQ stream is missing.
 */
export async function countDlq(nc: NatsConnection, names: Names, filter: Pick<DlqFilter, "source" | "reason"> = {}): Promise<DlqCounts> {
  const info = await dlqInfo(await jetstreamManager(nc), names, { subjects_filter: `${names.dlqSubjectPrefix}.>` });
  const byReason = countByReason([]);
  let foreign = 0;
  let onSubjects = 0;
  const legacy: string[] = [];
  for (const [subject, n] of Object.entries(info.state.subjects ?? {})) {
    onSubjects += n;
    const { source, reason, foreign: notOurs } = dlqSubjectParts(names, subject);
    if (filter.source && source !== filter.source) continue;
    if (notOurs) foreign += n;
    else if (reason === undefined) legacy.push(source);
    else if (!filter.reason || reason === filter.reason) byReason[reason] += n;
  }
  const scan: DlqScan = { entries: [], foreign: [] };
  for (const source of legacy) await scanSubject(nc, names, dlqSubject(names, source), { reason: filter.reason }, scan);
  for (const e of scan.entries) byReason[e.reason]++;
  foreign += scan.foreign.length;
  if (!filter.source) foreign += info.state.messages - onSubjects;
  if (filter.reason) foreign = 0; // a filtered count says nothing about messages of no reason
  return { total: Object.values(byReason).reduce((a, b) => a + b, 0), byReason, foreign };
}

/**
 * `counts` (countDlq's, made from subjects) less the foreign messages a reader has since read: a
 * message published by hand on a `<source>.<reason>` subject is counted as that reason until it is
 * read, and a page that shows it as foreign must not count it among the entries as well. Pure.
 */
export function withoutForeign(counts: DlqCounts, read: readonly Pick<ForeignDlqMessage, "subject">[], names: Names): DlqCounts {
  const byReason = { ...counts.byReason };
  let moved = 0;
  for (const { subject } of read) {
    const { reason } = dlqSubjectParts(names, subject);
    if (reason === undefined || byReason[reason] === 0) continue;
    byReason[reason]--;
    moved++;
  }
  return { total: counts.total - moved, byReason, foreign: counts.foreign + moved };
}

/** The message at a DLQ sequence, with a direct get: an entry, a foreign message, or undefined when there is none. */
export async function getDlqMessage(nc: NatsConnection, names: Names, seq: number): Promise<StoredDlqEntry | ForeignDlqMessage | undefined> {
  const jsm = await jetstreamManager(nc, NO_API_CHECK);
  await dlqInfo(jsm, names); // names a missing stream as the other readers do
  let msg;
  try {
    msg = await jsm.streams.getMessage(names.dlqStream, { seq });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  if (!msg) return undefined;
  return decodeDlqMessage({ seq: msg.seq, subject: msg.subject, headers: msg.header, data: msg.data, time: msg.time });
}

async function dlqInfo(jsm: JetStreamManager, names: Names, opts?: { subjects_filter: string }) {
  try {
    return await jsm.streams.info(names.dlqStream, opts);
  } catch (err) {
    if (isNotFound(err, "stream")) {
      throw new EnvironmentError(`stream ${names.dlqStream} not found: run \`orderq topology ensure\` or pass --dlq-stream`);
    }
    throw err;
  }
}

async function* readDlqStream(nc: NatsConnection, names: Names, subject?: string, fromSeq?: number, limit?: number) {
  try {
    yield* readStream(jetstream(nc), names.dlqStream, subject, fromSeq, limit);
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
    // Above 2^53 a number no longer holds the sequence (the server's are 64-bit): refused like any other.
    if (!/^[1-9]\d*$/.test(digits) || !Number.isSafeInteger(Number(digits))) {
      throw new InputError(`${text}: a DLQ sequence is a whole number from 1 to ${Number.MAX_SAFE_INTEGER} (e.g. seq:42)`);
    }
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

/**
 * select() against the server: a `seq:N` selector is looked up by a direct get (one request, whatever
 * the DLQ holds), and may name a foreign message; order ids need one read of the DLQ, since an entry's
 * order id is not in its subject. Throws as select(), an unknown `seq:N` included.
 */
export async function findDlqEntries(nc: NatsConnection, names: Names, selectors: string[]): Promise<DlqScan> {
  const chosen = new Map<number, StoredDlqEntry>();
  const foreign = new Map<number, ForeignDlqMessage>();
  const byId: string[] = [];
  const unknown: string[] = [];
  for (const text of selectors) {
    const sel = parseSelector(text);
    if (!("seq" in sel)) {
      byId.push(text);
      continue;
    }
    const found = await getDlqMessage(nc, names, sel.seq);
    if (!found) unknown.push(text);
    else if (isForeign(found)) foreign.set(found.dlqSeq, found);
    else chosen.set(found.dlqSeq, found);
  }
  if (unknown.length) throw new InputError(`not in the DLQ: ${unknown.join(", ")}`);
  if (byId.length > 0) for (const e of select(await listDlq(nc, names), byId)) chosen.set(e.dlqSeq, e);
  return {
    entries: [...chosen.values()].sort((a, b) => a.dlqSeq - b.dlqSeq),
    foreign: [...foreign.values()].sort((a, b) => a.dlqSeq - b.dlqSeq),
  };
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
 * Why an entry dead-lettered at `deadLetteredAt` (ISO time) is past the horizon at `nowMs`, or
 * undefined when it is within it (or the horizon is 0, unlimited). Past the horizon the ledger of
 * record has forgotten the order — its dead-letter claim, and any commit made since, e.g. of a re-send
 * after the duplicate window — so "not committed" can no longer be checked: a replay might process
 * the order a second time.
 */
export function pastHorizon(deadLetteredAt: string, horizonMs: number, nowMs: number): string | undefined {
  const at = Date.parse(deadLetteredAt);
  if (!horizonMs || !Number.isFinite(at) || nowMs - at <= horizonMs) return undefined;
  return (
    `dead-lettered ${roughAge(nowMs - at)} ago, past the ledger's horizon of ${formatDuration(horizonMs)}: ` +
    "the ledger no longer remembers whether this order was processed since; --force replays it anyway"
  );
}

/** An age in its largest whole unit, from two of it: `10d`, `5h`, `3m`, `40s`. */
function roughAge(ms: number): string {
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
  ] as const)
    if (ms >= 2 * size) return `${Math.floor(ms / size)}${unit}`;
  return `${Math.floor(ms / 1000)}s`;
}

/** How a replay runs, beyond which entries it gets. */
export interface ReplayOptions {
  /** Report what would happen; publish and remove nothing. */
  dryRun: boolean;
  /** Replay entries past the ledger's horizon too. */
  force?: boolean;
  /** Inbox mode: the inbox's URL and table are the ledger of record. */
  inbox?: { url: string; table: string };
  /** "Now" for the horizon check, epoch ms (tests); default Date.now(). */
  nowMs?: number;
  /** Entries per second at most, paced from the first entry (see replayDueMs); 0 or absent: unlimited. */
  ratePerSec?: number;
  /**
   * Stops the replay between entries: the entry in progress is finished (replayed, refused or
   * failed, never published without its removal being attempted) and the rest are not attempted,
   * so they stay in the DLQ. The outcomes returned are then fewer than the entries given.
   */
  signal?: AbortSignal;
  /** Called after each entry with its outcome (for a progress bar). */
  onOutcome?(outcome: ReplayOutcome): void;
}

/**
 * When entry `index` (0-based) of a replay started at `startedMs` (epoch ms) may begin, in epoch ms,
 * at `ratePerSec` entries per second (0: at once). Paced from the start, as the producer's --rate is,
 * so a slow entry does not slow the ones after it below the rate.
 */
export function replayDueMs(startedMs: number, index: number, ratePerSec: number): number {
  return ratePerSec > 0 ? startedMs + (index * 1000) / ratePerSec : startedMs;
}

/**
 * Publishes entries back to `orders.<source>` with a fresh message id and removes each from the DLQ
 * only after its PubAck. An order the ledger of record holds as committed is refused: it would not be
 * processed. So is an entry older than the horizon (the ledger bucket's max age, see pastHorizon),
 * unless `opts.force`. In inbox mode (`opts.inbox`: the inbox's URL and table) that ledger is the
 * inbox table, whose dead-letter claim must be released for the replayed order to be processed.
 * Returns one outcome per entry attempted, in order: all of them unless `opts.signal` stopped it.
 */
export async function replay(nc: NatsConnection, names: Names, entries: StoredDlqEntry[], opts: ReplayOptions): Promise<ReplayOutcome[]> {
  const jsm = await jetstreamManager(nc);
  // The inbox is pruned to the same horizon; a ledger bucket that is missing sets none.
  const horizonMs = await ledgerRetentionMs(jsm, names).catch((err: unknown) => {
    if (isNotFound(err)) return 0;
    throw err;
  });
  const ledger = opts.inbox ? await InboxStore.open({ ...opts.inbox, poolSize: 1, maxBatch: 1 }) : await Ledger.open(nc, names);
  const ctx: ReplayContext = {
    names,
    js: jetstream(nc),
    jsm,
    ledger,
    horizonMs: opts.force ? 0 : horizonMs,
    nowMs: opts.nowMs ?? Date.now(),
  };
  const out: ReplayOutcome[] = [];
  const startedMs = Date.now();
  try {
    for (const [index, entry] of entries.entries()) {
      if (!(await waitUntil(replayDueMs(startedMs, index, opts.ratePerSec ?? 0), opts.signal))) break;
      let outcome: ReplayOutcome;
      try {
        outcome = await replayOne(ctx, entry, opts.dryRun);
      } catch (err) {
        // One broken entry must not hide the outcome of the others.
        outcome = { dlqSeq: entry.dlqSeq, orderId: entry.orderId, result: "failed", reason: errorMessage(err) };
      }
      out.push(outcome);
      opts.onOutcome?.(outcome);
    }
  } finally {
    await ctx.ledger.close();
  }
  return out;
}

/** Waits until `dueMs` (epoch ms); false, at once, when `signal` is or becomes aborted. */
async function waitUntil(dueMs: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return false;
  const waitMs = dueMs - Date.now();
  if (waitMs <= 0) return true;
  try {
    await sleep(waitMs, undefined, { signal });
    return true;
  } catch (err) {
    if (signal?.aborted) return false;
    throw err;
  }
}

interface ReplayContext {
  names: Names;
  js: JetStreamClient;
  jsm: JetStreamManager;
  ledger: OutcomeStore;
  /** 0: no horizon check (none set, or --force). */
  horizonMs: number;
  nowMs: number;
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
  const expired = pastHorizon(entry.deadLetteredAt, ctx.horizonMs, ctx.nowMs);
  if (expired) return { ...base, result: "refused", reason: expired };
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

/**
 * Why foreign messages are never replayed, one line naming their DLQ sequences and the commands that
 * show and remove them: what `dlq replay` says when they are selected by seq:N (exit 2), and, one by
 * one, the reason of their refusal in a bulk replay.
 */
export function foreignRefusal(foreign: Pick<ForeignDlqMessage, "dlqSeq" | "subject">[]): string {
  const seqs = foreign.map((m) => `seq:${m.dlqSeq}`).join(", ");
  const one = foreign.length === 1;
  const subjects = [...new Set(foreign.map((m) => m.subject))].join(", ");
  return (
    `${seqs} ${one ? "is not an orderq DLQ entry" : "are not orderq DLQ entries"} (on ${subjects}, not written by orderq): ` +
    `nothing says which order ${one ? "it is" : "they are"} or where ${one ? "it" : "they"} came from, so ${one ? "it is" : "they are"} never replayed; ` +
    `\`orderq dlq show ${one ? seqs : "seq:N"}\` shows ${one ? "it" : "one"}, \`orderq dlq purge ${seqs.replaceAll(",", "")}\` removes ${one ? "it" : "them"}`
  );
}

/** The outcome of a bulk replay for each foreign message it met: refused, with foreignRefusal's reason. */
export function refuseForeign(foreign: ForeignDlqMessage[]): ReplayOutcome[] {
  return foreign.map((m) => ({ dlqSeq: m.dlqSeq, result: "refused", reason: foreignRefusal([m]) }));
}

/** Deletes entries (or foreign messages) by DLQ sequence; returns how many were still there to delete. */
export async function purge(nc: NatsConnection, names: Names, entries: { dlqSeq: number }[]): Promise<number> {
  const jsm = await jetstreamManager(nc);
  let purged = 0;
  for (const entry of entries) {
    if (await deleteIfPresent(jsm, names.dlqStream, entry.dlqSeq)) purged++;
  }
  return purged;
}

/** Entries (or their reasons) counted by reason, every reason present. */
export function countByReason(entries: Iterable<{ reason: DlqReason } | DlqReason>): Record<DlqReason, number> {
  const counts: Record<DlqReason, number> = { "invalid-payload": 0, "non-retryable": 0, "max-deliveries": 0, "crashed-worker": 0 };
  for (const e of entries) counts[typeof e === "string" ? e : e.reason]++;
  return counts;
}
