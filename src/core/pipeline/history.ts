/**
 * The producers' history, Jepsen style: every publish is an `invoke` followed by exactly one
 * completion — `ok` (PubAck received), `fail` (certainly not stored) or `indeterminate` (may be
 * stored: timed out or the connection dropped before the PubAck). The chaos checker's input.
 */
import { createWriteStream, openSync, readFileSync, type WriteStream } from "node:fs";
import { InputError, errorMessage } from "../base/errors.js";

/** What the producer meant to send: the checker derives each order's expected outcome from it. */
export type OpKind = "order" | "poison" | "fatal" | "crash" | "invalid";

export type HistoryEvent =
  | { type: "invoke"; id: string; kind: OpKind; source: string; resend: boolean; time: number }
  | { type: "ok"; id: string; seq: number; duplicate: boolean; tries: number; time: number }
  | { type: "fail"; id: string; error: string; tries: number; time: number }
  | { type: "indeterminate"; id: string; error: string; tries: number; time: number };

export interface HistorySink {
  record(event: HistoryEvent): void;
}

/** Collects events in memory (chaos runs) and optionally appends them to a JSON-lines file. */
export class History implements HistorySink {
  readonly events: HistoryEvent[] = [];
  private file?: WriteStream;

  /**
   * Opens `path` at once, so an unwritable one is an InputError (exit 2) naming it before anything
   * starts, not an asynchronous stream error later.
   */
  constructor(path?: string) {
    if (!path) return;
    let fd: number;
    try {
      fd = openSync(path, "w");
    } catch (err) {
      throw new InputError(`--history: cannot write ${path}: ${errorMessage(err)}`);
    }
    this.file = createWriteStream(path, { fd });
  }

  record(event: HistoryEvent): void {
    this.events.push(event);
    this.file?.write(JSON.stringify(event) + "\n");
  }

  async close(): Promise<void> {
    const file = this.file;
    if (!file) return;
    await new Promise<void>((resolve, reject) => file.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

export function readHistoryFile(path: string): HistoryEvent[] {
  const lines = readFileSync(path, "utf8").split("\n");
  const events: HistoryEvent[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    try {
      events.push(JSON.parse(line) as HistoryEvent);
    } catch {
      throw new InputError(`${path}:${i + 1}: not a JSON history event`);
    }
  });
  return events;
}
