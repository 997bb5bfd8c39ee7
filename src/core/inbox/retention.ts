/**
 * The horizon applied to the inbox: rows older than it are deleted in small batches, each its own
 * statement and so its own short transaction. One unbounded `DELETE` would hold a snapshot and locks
 * on every old row for as long as it runs, and write its whole WAL at once, beside the workers' order
 * transactions.
 */
import type pg from "pg";
import { checkTableName } from "./schema.js";

/** Rows per DELETE: small enough that one batch takes milliseconds with the `at` index. */
export const PRUNE_BATCH = 1000;

/**
 * Deletes the rows of `table` whose `at` (the outcome's time) is older than `horizonMs` by the
 * database's clock, `batch` at a time, until a batch comes back short. Rows locked by an order
 * transaction are skipped (a redelivery's claim is running on it) and left for the next pass.
 * Returns the number of rows deleted. Throws pg's error when a statement fails; what was deleted by
 * earlier batches stays deleted.
 */
export async function pruneInbox(pool: pg.Pool, table: string, horizonMs: number, batch = PRUNE_BATCH): Promise<number> {
  checkTableName(table);
  if (horizonMs <= 0) return 0;
  let deleted = 0;
  for (;;) {
    const { rowCount } = await pool.query(
      `DELETE FROM ${table} WHERE order_id IN (
         SELECT order_id FROM ${table} WHERE at < now() - make_interval(secs => $1) LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [horizonMs / 1000, batch],
    );
    deleted += rowCount ?? 0;
    if ((rowCount ?? 0) < batch) return deleted;
  }
}
