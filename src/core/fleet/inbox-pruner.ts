/**
 * Who applies the horizon to the inbox: the top-level `orderq work` process (the supervisor, or the
 * single worker when there is none), once per invocation rather than once per worker process, so N
 * workers do not race over the same old rows. It is off the order path, it already runs as long as
 * orders are processed, and needs no other process to operate. Several `orderq work` invocations on
 * several machines each prune: harmless, the batches skip rows that another one has locked.
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import { errorMessage } from "../base/errors.js";
import { openInboxPool } from "../inbox/connect.js";
import { pruneInbox } from "../inbox/retention.js";
import type { Names } from "../nats/names.js";
import { isNotFound } from "../nats/not-found.js";
import { ledgerRetentionMs } from "../nats/topology.js";

/** The longest wait between two passes; a short horizon is pruned every quarter of it. */
const PRUNE_EVERY_MS = 60_000;

export interface InboxPruner {
  /** Stops the timer, waits for a pass in progress, closes the connection. */
  stop(): Promise<void>;
}

/**
 * Starts pruning `inbox.table` to the horizon in force: the ledger bucket's max age, read again at
 * every pass so a `topology ensure --ledger-retention … --update` takes effect without a restart (no
 * bucket, or no max age: nothing is deleted). Failures are logged, never fatal: the next pass retries.
 */
export function startInboxPruner(
  jsm: JetStreamManager,
  names: Names,
  inbox: { url: string; table: string },
  log: (line: string) => void,
  everyMs = PRUNE_EVERY_MS,
): InboxPruner {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const pool = openInboxPool(inbox.url, 1);
  pool.catch(() => undefined); // a connection failure is reported by the pass that awaits it
  const pass = async (): Promise<void> => {
    let horizonMs = 0;
    try {
      horizonMs = await ledgerRetentionMs(jsm, names);
      const deleted = await pruneInbox(await pool, inbox.table, horizonMs);
      if (deleted > 0) log(`orderq: inbox ${inbox.table}: deleted ${deleted} row(s) older than the horizon`);
    } catch (err) {
      if (!isNotFound(err)) log(`orderq: inbox ${inbox.table}: pruning to the horizon failed (retried later): ${errorMessage(err)}`);
    }
    if (!stopped) timer = setTimeout(() => void (running = pass()), horizonMs > 0 ? Math.min(everyMs, Math.max(1000, horizonMs / 4)) : everyMs);
  };
  running = pass();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
      await (await pool.catch(() => undefined))?.end();
    },
  };
}
