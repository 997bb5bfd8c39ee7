/**
 * What the `orderq dlq` commands share: a connection scoped to one command, filter flags, the
 * selection rules (entries by sequence / order id, or --all), and JSON views of entries.
 * (It lives here, not in commands/dlq/, because oclif loads every file there as a command.)
 */
import { Flags } from "@oclif/core";
import type { NatsConnection } from "@nats-io/transport-node";
import { DLQ_REASONS, type DlqEntry, type DlqReason, type StoredDlqEntry } from "../core/pipeline/dlq-entry.js";
import { findDlqEntries, parseSelector, scanDlq, type DlqFilter, type DlqScan, type ForeignDlqMessage } from "../core/ops/dlq-admin.js";
import { parseDuration } from "../core/base/duration.js";
import { InputError } from "../core/base/errors.js";
import { SOURCES, type Names } from "../core/nats/names.js";
import { OrderqCommand, namesFrom } from "./base.js";

type ConnectFlags = Parameters<OrderqCommand["connect"]>[0];
type NameFlags = Parameters<typeof namesFrom>[0];

export abstract class DlqCommand extends OrderqCommand {
  /** Connects, runs `fn`, and always closes the connection. */
  protected async withDlq<T>(flags: ConnectFlags & NameFlags, fn: (nc: NatsConnection, names: Names) => Promise<T>): Promise<T> {
    const nc = await this.connect(flags);
    try {
      return await fn(nc, namesFrom(flags));
    } finally {
      await nc.close();
    }
  }
}

export const filterFlags = {
  source: Flags.string({ summary: "Only entries from this source.", options: [...SOURCES] }),
  reason: Flags.string({ summary: "Only entries dead-lettered for this reason.", options: [...DLQ_REASONS] }),
};

export function filterFrom(flags: { source?: string; reason?: string }): DlqFilter {
  return { source: flags.source, reason: flags.reason as DlqReason | undefined };
}

/** `--since`: a duration back from now (`1h`) or an ISO time (`2024-05-01T12:00:00Z`). */
export function parseSince(text: string, now = Date.now()): number {
  if (/^\d{4}-\d{2}-\d{2}/.test(text.trim())) {
    const ms = Date.parse(text);
    if (Number.isFinite(ms)) return ms;
  } else if (/^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$/.test(text)) {
    return now - parseDuration(text, "--since");
  }
  throw new InputError(`--since: "${text}" is neither a duration (e.g. 30m, 1h, 7d) nor an ISO time (e.g. 2024-05-01T12:00:00Z)`);
}

/** What --help says about naming entries, the same in show, replay and purge. */
export const SELECTOR_HELP =
  "Name an entry by order id (a bare argument is always an order id, also when it is all digits; id:X says so " +
  "explicitly) or by its DLQ sequence, the first column of `orderq dlq list`, written seq:N.";

export interface SelectionInput {
  /** Order ids (bare or id:X) and DLQ sequences (seq:N) given as arguments. */
  selectors: string[];
  /** Flags that select entries without naming them (--all, --older-than), by name, when given. */
  bulk: string[];
  /** Filter flags given (--source, --reason): they narrow a bulk selection only. */
  narrowing: string[];
}

/** Checks a selection before anything is read or changed; the message says what to write instead. */
export function validateSelection(verb: string, sel: SelectionInput): void {
  sel.selectors.forEach(parseSelector);
  if (sel.selectors.length > 0 && sel.bulk.length > 0) {
    throw new InputError(`${verb}: name entries or use ${sel.bulk.join("/")}, not both`);
  }
  if (sel.selectors.length > 0 && sel.narrowing.length > 0) {
    throw new InputError(`${verb}: ${sel.narrowing.join(" and ")} narrow --all; they cannot be combined with named entries`);
  }
  if (sel.selectors.length === 0 && sel.bulk.length === 0) {
    throw new InputError(`${verb}: nothing selected: name entries by order id or seq:<DLQ sequence> (see \`orderq dlq list\`), or pass --all`);
  }
}

/**
 * The entries and foreign messages a validated selection means; an unknown order id or sequence is an
 * InputError. A bulk selection takes the foreign messages only when nothing narrows it: they have no
 * source, reason or dead-letter time to match.
 */
export async function loadSelection(nc: NatsConnection, names: Names, selectors: string[], filter: DlqFilter): Promise<DlqScan> {
  if (selectors.length > 0) return findDlqEntries(nc, names, selectors);
  const scan = await scanDlq(nc, names, filter);
  const narrowed = filter.source !== undefined || filter.reason !== undefined || filter.beforeMs !== undefined;
  return narrowed ? { entries: scan.entries, foreign: [] } : scan;
}

/** Flag names among `candidates` that were given a value. */
export function given(flags: Record<string, unknown>, candidates: string[]): string[] {
  return candidates.filter((name) => flags[name] !== undefined && flags[name] !== false).map((name) => `--${name}`);
}

/** An entry for --json, without payload or history: what `dlq list` shows. */
export type DlqSummaryView = Omit<DlqEntry, "attempts" | "originalHeaders"> & { dlqSeq: number; attemptsRecorded: number };

export function summaryView(entry: StoredDlqEntry): DlqSummaryView {
  const { payload: _payload, attempts, originalHeaders: _headers, ...rest } = entry;
  return { ...rest, attemptsRecorded: attempts.length };
}

/** A whole entry for --json: the payload as JSON when it is JSON, else as text. */
export type DlqFullView = Omit<StoredDlqEntry, "payload"> & { payload: unknown; payloadIsJson: boolean };

export function fullView(entry: StoredDlqEntry): DlqFullView {
  return { ...entry, ...payloadView(entry.payload) };
}

/** A foreign message for --json: the payload as JSON when it is JSON, else as text. */
export type ForeignView = Omit<ForeignDlqMessage, "payload"> & { payload: unknown; payloadIsJson: boolean; bytes: number };

export function foreignView(m: ForeignDlqMessage): ForeignView {
  return { ...m, ...payloadView(m.payload), bytes: m.payload.length };
}

/** What `dlq list --json` says of a foreign message: where and when, not its payload. */
export type ForeignSummaryView = Pick<ForeignDlqMessage, "dlqSeq" | "subject" | "problem" | "storedAt"> & { bytes: number };

export function foreignSummaryView(m: ForeignDlqMessage): ForeignSummaryView {
  return { dlqSeq: m.dlqSeq, subject: m.subject, problem: m.problem, storedAt: m.storedAt, bytes: m.payload.length };
}

function payloadView(payload: Uint8Array): { payload: unknown; payloadIsJson: boolean } {
  const text = new TextDecoder().decode(payload);
  try {
    return { payload: JSON.parse(text) as unknown, payloadIsJson: true };
  } catch {
    return { payload: text, payloadIsJson: false };
  }
}

/** `2024-05-01 12:00:03Z (5m ago)`: exact for the incident log, relative for the reader. */
export function when(iso: string | undefined, now = Date.now()): string {
  if (!iso) return "-";
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return iso;
  return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")}Z (${age(now - ms)} ago)`;
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

export function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(1, width - 1))}…`;
}

export function describeReasons(counts: Record<string, number>): string {
  const parts = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${reason} ${n}`);
  return parts.length ? parts.join(", ") : "none";
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
