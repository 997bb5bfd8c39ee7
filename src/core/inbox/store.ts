/**
 * The PostgreSQL inbox: the ledger of record in inbox mode. Each order's outcome row is inserted in
 * the same transaction as the handler's effects, so the effects commit exactly once with it.
 *
 * Orders waiting for a transaction are grouped: when a pooled connection frees up, it takes up to
 * `maxBatch` waiting orders into one transaction, claims all their rows in one statement and runs each
 * handler in turn, so a busy worker pays one commit (one WAL flush) for many orders, while a quiet one
 * still runs each order at once in a transaction of its own. A batch in which an order fails is rolled
 * back and run again with a savepoint per order: the failed order rolls back to its savepoint and its
 * row is deleted; the rest commit together.
 * Nothing is reported before the commit: the worker acks an order only after its row is durable.
 */
import pg from "pg";
import {
  isPayloadClaim,
  type DbClient,
  type Outcome,
  type OutcomeStore,
  type RecordResult,
  type TransactionalCommit,
  type TransactionResult,
} from "../pipeline/outcome-store.js";
import { openInboxPool } from "./connect.js";
import { checkInboxSchema, checkTableName, DEFAULT_INBOX_TABLE, ORDERQ_LOCK_CLASS } from "./schema.js";

export interface InboxOptions {
  /** postgres:// URL of the team's database. */
  url: string;
  /** Inbox table name (a plain identifier). */
  table?: string;
  /** Connections in the pool: at most this many order transactions are open at once. */
  poolSize: number;
  /** Most orders in one transaction (1 = a transaction per order). */
  maxBatch: number;
}

/** The database row, as `pg` returns it. */
interface InboxRow {
  order_id: string;
  outcome: Outcome["result"];
  worker: string;
  attempt: number;
  stream_seq: string;
  reason: string | null;
  error: string | null;
  at: Date;
}

interface Waiting {
  orderId: string;
  outcome: Outcome;
  work: (db: DbClient) => Promise<void>;
  resolve: (result: TransactionResult) => void;
  reject: (err: unknown) => void;
}

/** The savepoint each order of a batch runs in (released before the next order's is taken). */
const SAVEPOINT = "orderq_order";

export class InboxStore implements OutcomeStore, TransactionalCommit {
  private readonly waiting: Waiting[] = [];
  private openTransactions = 0;
  /** Connections lent to a transaction right now: close() ends them rather than wait for them. */
  private readonly lent = new Set<pg.PoolClient>();
  private readonly table: string;
  /** The claim, as one statement: try the order's lock, insert its row, and read what was there. */
  private readonly claim: string;
  /** The claim of a whole batch, one row per order: the columns of the rows to insert as arrays. */
  private readonly claimBatch: string;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly options: InboxOptions,
  ) {
    this.table = checkTableName(options.table ?? DEFAULT_INBOX_TABLE);
    // `existing` is read from the statement's snapshot, so it never sees the row `ins` adds. The lock
    // keeps two deliveries of one order out of each other's way: the second is told "busy" at once
    // instead of waiting on the first one's uncommitted row.
    this.claim = `WITH lock AS (SELECT pg_try_advisory_xact_lock(${ORDERQ_LOCK_CLASS}, hashtext($1)) AS got),
      ins AS (
        INSERT INTO ${this.table} (order_id, outcome, worker, attempt, stream_seq, reason, error, at)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM lock WHERE lock.got
        ON CONFLICT (order_id) DO NOTHING RETURNING 1)
      SELECT (SELECT got FROM lock) AS locked, EXISTS (SELECT 1 FROM ins) AS inserted,
             (SELECT row_to_json(t) FROM ${this.table} t WHERE t.order_id = $1) AS existing`;
    // The lock CTE calls a volatile function, so it is evaluated once, one lock per order.
    this.claimBatch = `WITH input AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::bigint[], $6::text[], $7::text[], $8::timestamptz[])
          AS i (order_id, outcome, worker, attempt, stream_seq, reason, error, at)),
      lock AS (SELECT order_id, pg_try_advisory_xact_lock(${ORDERQ_LOCK_CLASS}, hashtext(order_id)) AS got FROM input),
      ins AS (
        INSERT INTO ${this.table} (order_id, outcome, worker, attempt, stream_seq, reason, error, at)
        SELECT input.* FROM input JOIN lock USING (order_id) WHERE lock.got
        ON CONFLICT (order_id) DO NOTHING RETURNING order_id)
      SELECT lock.order_id, lock.got AS locked, EXISTS (SELECT 1 FROM ins WHERE ins.order_id = lock.order_id) AS inserted,
             (SELECT row_to_json(t) FROM ${this.table} t WHERE t.order_id = lock.order_id) AS existing
      FROM lock`;
  }

  /**
   * Connects and checks the inbox table's shape and version. Throws EnvironmentError when the
   * database cannot be reached or the table is missing or of another shape; InputError for a bad URL.
   */
  static async open(options: InboxOptions): Promise<InboxStore> {
    const pool = await openInboxPool(options.url, options.poolSize);
    try {
      await checkInboxSchema(pool, options.table ?? DEFAULT_INBOX_TABLE);
    } catch (err) {
      await pool.end();
      throw err;
    }
    return new InboxStore(pool, options);
  }

  /**
   * Ends the pool. A transaction still open (a handler the worker gave up on at its drain timeout) is
   * cut off, which rolls it back: its order was not acked and will be redelivered.
   */
  async close(): Promise<void> {
    for (const client of this.lent) {
      this.lent.delete(client);
      client.release(true);
    }
    await this.pool.end();
  }

  async get(orderId: string): Promise<Outcome | undefined> {
    const { rows } = await this.pool.query<InboxRow>(`SELECT * FROM ${this.table} WHERE order_id = $1`, [orderId]);
    return rows[0] && toOutcome(rows[0]);
  }

  /** Create-if-absent in a transaction of its own; waits for a concurrent order transaction to end. */
  async record(orderId: string, outcome: Outcome): Promise<RecordResult> {
    const { rowCount } = await this.pool.query(
      `INSERT INTO ${this.table} (order_id, outcome, worker, attempt, stream_seq, reason, error, at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (order_id) DO NOTHING`,
      rowValues(orderId, outcome),
    );
    if (rowCount === 1) return { written: true };
    return { written: false, existing: await this.get(orderId) };
  }

  async releaseDeadLetter(orderId: string): Promise<Outcome | undefined> {
    const { rowCount } = await this.pool.query(`DELETE FROM ${this.table} WHERE order_id = $1 AND outcome = 'dead-lettered'`, [orderId]);
    if (rowCount === 1) return undefined;
    const existing = await this.get(orderId);
    return existing?.result === "committed" ? existing : undefined;
  }

  /** Rows by outcome, for `orderq status`. */
  async counts(): Promise<{ table: string; committed: number; deadLettered: number }> {
    const { rows } = await this.pool.query<{ outcome: string; n: string }>(`SELECT outcome, count(*) AS n FROM ${this.table} GROUP BY outcome`);
    const count = (outcome: string) => Number(rows.find((r) => r.outcome === outcome)?.n ?? 0);
    return { table: this.table, committed: count("committed"), deadLettered: count("dead-lettered") };
  }

  /**
   * Every order's row: the chaos checker's and the effect checker's view of the inbox. The claims of
   * payloads without an order id (isPayloadClaim) are left out: they are no order's outcome.
   */
  async rows(): Promise<Array<{ orderId: string; outcome: Outcome }>> {
    const { rows } = await this.pool.query<InboxRow>(`SELECT * FROM ${this.table} ORDER BY at, order_id`);
    return rows.filter((row) => !isPayloadClaim(row.order_id)).map((row) => ({ orderId: row.order_id, outcome: toOutcome(row) }));
  }

  run(orderId: string, outcome: Outcome, work: (db: DbClient) => Promise<void>): Promise<TransactionResult> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ orderId, outcome, work, resolve, reject });
      this.startTransactions();
    });
  }

  /** One transaction per free connection, each taking the orders waiting at that moment. */
  private startTransactions(): void {
    while (this.openTransactions < this.options.poolSize && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.options.maxBatch);
      this.openTransactions++;
      void this.transaction(batch).finally(() => {
        this.openTransactions--;
        this.startTransactions();
      });
    }
  }

  /** Runs a batch in one transaction; every order's result is told only after the commit. */
  private async transaction(batch: Waiting[]): Promise<void> {
    let client: pg.PoolClient | undefined;
    let failure: unknown;
    // Orders of the batch that did not run (runWithSavepoints() moves them here): back in line only
    // once this transaction is over, since until then it holds their locks and another connection
    // taking them would find them busy and spend a delivery of each.
    const putBack: Waiting[] = [];
    // A connection lost between queries is reported as an event: without a listener it would crash
    // the process; the next query on it fails anyway, and that failure is what the batch reports.
    const ignore = () => undefined;
    try {
      client = await this.pool.connect();
      this.lent.add(client);
      client.on("error", ignore);
      const results = batch.length === 1 ? [await this.runAlone(client, batch[0])] : await this.runBatch(client, batch, putBack);
      batch.forEach((order, i) => order.resolve(results[i]));
    } catch (err) {
      failure = err;
      await client?.query("ROLLBACK").catch(() => undefined);
      for (const order of batch) order.reject(err);
    } finally {
      if (client && this.lent.delete(client)) {
        client.off("error", ignore);
        // A connection that failed mid-transaction is not given back to the pool.
        client.release(failure !== undefined);
      }
      this.waiting.unshift(...putBack);
    }
  }

  /**
   * One order in a transaction of its own: the transaction is the order's, so no savepoint is needed
   * (four statements: BEGIN, the claim, the handler's, COMMIT). Throws only when the connection or
   * the transaction itself failed.
   */
  private async runAlone(client: pg.PoolClient, order: Waiting): Promise<TransactionResult> {
    await client.query("BEGIN");
    const found = await this.claimRow(client, order);
    if (found) {
      await client.query("ROLLBACK");
      return found;
    }
    try {
      await order.work(transactionView(client));
    } catch (error) {
      await client.query("ROLLBACK");
      return { kind: "failed", error };
    }
    // A handler that swallowed a failed query returns normally, yet the transaction is aborted:
    // PostgreSQL answers its COMMIT with a ROLLBACK, and the order fails like any attempt.
    const { command } = await client.query("COMMIT");
    return command === "COMMIT" ? { kind: "committed" } : { kind: "failed", error: new Error(ABORTED) };
  }

  /**
   * Several orders in one transaction, optimistically first: most batches fail no order, and then
   * each order costs only its handler's round trips, with no savepoint (a subtransaction, and a round
   * trip of its own). When an order fails — its handler throws (a lock conflict included), or one
   * swallowed a failed query so the COMMIT is answered ROLLBACK — nothing of the batch is kept, and
   * the batch runs again with a savepoint per order (runWithSavepoints), where the failure is charged
   * to its order alone. Handlers of such a batch run twice; their first writes are rolled back.
   * Resolves with a result per order of `batch`, after the commit; orders not run are moved from
   * `batch` to `putBack`. Throws only when the connection or the transaction itself failed.
   */
  private async runBatch(client: pg.PoolClient, batch: Waiting[], putBack: Waiting[]): Promise<TransactionResult[]> {
    await client.query("BEGIN");
    const claims = await this.claimRows(client, batch);
    for (const [i, order] of batch.entries()) {
      if (claims[i]) continue;
      try {
        await order.work(transactionView(client));
      } catch {
        await client.query("ROLLBACK");
        return this.runWithSavepoints(client, batch, putBack);
      }
    }
    const { command } = await client.query("COMMIT");
    if (command !== "COMMIT") return this.runWithSavepoints(client, batch, putBack);
    return claims.map((claim) => claim ?? { kind: "committed" });
  }

  /**
   * A batch again, each handler in its own savepoint (two round trips an order: the handler's
   * statement, and the release of its savepoint sent with the next order's). A failed order rolls
   * back to its savepoint and its row is deleted before the commit. When one loses a lock conflict,
   * the batch ends there: the orders not yet run are moved from `batch` to `putBack`. Resolves with
   * the results of the orders that ran, after the commit. Throws only when the connection or the
   * transaction itself failed, or the COMMIT was refused.
   */
  private async runWithSavepoints(client: pg.PoolClient, batch: Waiting[], putBack: Waiting[]): Promise<TransactionResult[]> {
    await client.query("BEGIN");
    const claims = await this.claimRows(client, batch);
    await client.query(`SAVEPOINT ${SAVEPOINT}`);
    const results: TransactionResult[] = [];
    const unclaim: string[] = [];
    for (const [i, order] of batch.entries()) {
      const claim = claims[i];
      if (claim) {
        results.push(claim);
        continue;
      }
      const result = await this.runInSavepoint(client, order);
      results.push(result);
      if (result.kind === "failed") unclaim.push(order.orderId);
      // Orders of one batch keep their row locks until the commit, so a batch that lost a lock
      // conflict (deadlock, serialization failure) ends here: what is done commits and releases its
      // locks, and the orders not yet run wait for the next transaction.
      if (result.kind === "failed" && isLockConflict(result.error)) break;
    }
    const notRun = batch.splice(results.length);
    putBack.push(...notRun);
    unclaim.push(...notRun.filter((_, i) => !claims[results.length + i]).map((order) => order.orderId));
    if (unclaim.length > 0) await client.query(`DELETE FROM ${this.table} WHERE order_id = ANY($1)`, [unclaim]);
    const { command } = await client.query("COMMIT");
    if (command !== "COMMIT") throw new Error(`inbox: a batch's COMMIT was answered with ${command}`);
    return results;
  }

  /**
   * One claimed order of a batch, in the savepoint open when it starts; that savepoint is open and
   * empty again when it ends. Throws only when the connection or the transaction failed.
   */
  private async runInSavepoint(client: pg.PoolClient, order: Waiting): Promise<TransactionResult> {
    try {
      await order.work(transactionView(client));
      // A handler that swallowed a failed query returns normally, yet the transaction is aborted:
      // the release then fails, and the order is rolled back like any failed attempt. One simple
      // query, two statements: the next order's savepoint costs no round trip of its own.
      await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}; SAVEPOINT ${SAVEPOINT}`);
      return { kind: "committed" };
    } catch (error) {
      await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
      return { kind: "failed", error };
    }
  }

  /**
   * Claims the rows of a batch in one statement: for each order, undefined when this transaction
   * inserted its row (run the handler), otherwise what stopped it, as claimRow(). A second delivery of
   * an order earlier in the batch is "busy": the lock is this transaction's own, so the statement
   * would not stop it.
   */
  private async claimRows(client: pg.PoolClient, batch: Waiting[]): Promise<Array<TransactionResult | undefined>> {
    const first = new Map<string, number>();
    batch.forEach((order, i) => first.has(order.orderId) || first.set(order.orderId, i));
    const unique = [...first.values()].map((i) => batch[i]);
    const columns = unique.map((order) => rowValues(order.orderId, order.outcome));
    const { rows } = await client.query<ClaimRow & { order_id: string }>({
      name: `orderq_claim_batch_${this.table}`,
      text: this.claimBatch,
      values: columns[0].map((_, c) => columns.map((row) => row[c])),
    });
    const byId = new Map(rows.map((row) => [row.order_id, row]));
    return batch.map((order, i) => (first.get(order.orderId) === i ? claimResult(order.orderId, byId.get(order.orderId)) : { kind: "busy" }));
  }

  /**
   * Claims the order's row: undefined when this transaction inserted it (run the handler), otherwise
   * what stopped it — an outcome already there, or another delivery holding the order's lock.
   */
  private async claimRow(client: pg.PoolClient, order: Waiting): Promise<TransactionResult | undefined> {
    const claim = await client.query<ClaimRow>({
      name: `orderq_claim_${this.table}`,
      text: this.claim,
      values: rowValues(order.orderId, order.outcome),
    });
    return claimResult(order.orderId, claim.rows[0]);
  }
}

/** What a claim statement answers for one order. */
interface ClaimRow {
  locked: boolean;
  inserted: boolean;
  existing: Record<string, unknown> | null;
}

/** A claim's answer as a result: undefined when the row was inserted (run the handler). */
function claimResult(orderId: string, row: ClaimRow | undefined): TransactionResult | undefined {
  if (row?.inserted) return undefined;
  if (row?.existing) return { kind: "exists", existing: toOutcome(row.existing as unknown as InboxRow) };
  if (row && !row.locked) return { kind: "busy" };
  throw new Error(`inbox: the row of order ${orderId} was neither inserted nor found`);
}

/** Why an order failed whose handler returned normally after a failed query. */
const ABORTED = "the order's transaction was aborted by a failed query that the handler caught: its writes are rolled back";

/** SQLSTATEs of losing a conflict with another transaction: serialization failure, deadlock, lock timeout. */
const LOCK_CONFLICTS = new Set(["40001", "40P01", "55P03"]);

function isLockConflict(err: unknown): boolean {
  return LOCK_CONFLICTS.has((err as { code?: string } | undefined)?.code ?? "");
}

/** The handler's `ctx.db`: queries only, so it cannot end or release the transaction it is lent. */
function transactionView(client: pg.PoolClient): DbClient {
  return { query: (query, values) => client.query(query, values) };
}

function rowValues(orderId: string, outcome: Outcome): unknown[] {
  return [orderId, outcome.result, outcome.worker, outcome.attempt, outcome.streamSeq, outcome.reason ?? null, outcome.error ?? null, outcome.at];
}

/** A row from `SELECT *` (Date, bigint as string) or from `row_to_json` (ISO string, number). */
function toOutcome(row: InboxRow): Outcome {
  const outcome: Outcome = {
    result: row.outcome,
    worker: row.worker,
    attempt: Number(row.attempt),
    streamSeq: Number(row.stream_seq),
    at: row.at instanceof Date ? row.at.toISOString() : new Date(row.at).toISOString(),
  };
  if (row.reason) outcome.reason = row.reason as Outcome["reason"];
  if (row.error) outcome.error = row.error;
  return outcome;
}
