/**
 * `orderq bench --inbox`: orderq's PostgreSQL inbox against its own floor, on a PostgreSQL the bench
 * starts (like its nats-server) with the example's schema loaded.
 *
 * - inbox floor: consume, one `INSERT … ON CONFLICT DO NOTHING` of the inbox row in a transaction of
 *   its own (autocommit), ack — nothing else; through a pool as large as a worker's `--inbox-pool`.
 * - inbox work: `orderq work --handler examples/postgres-orders/handler.mjs` with the inbox, as the
 *   work phase runs the simulated handler; verified from the inbox and the example's tables (one
 *   `orders` row per order, each order's stock movements and stock down by exactly its items).
 *
 * The work phase is timed from PostgreSQL's own commit timestamps (`track_commit_timestamp` is on in
 * the bench's server), as the KV work phase is from the ledger's server timestamps.
 */
import { readFileSync } from "node:fs";
import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import pg from "pg";
import { PostgresServer } from "../fleet/postgres-server.js";
import type { InboxWorkOptions } from "../fleet/work-args.js";
import { INBOX_URL_ENV } from "../inbox/connect.js";
import { ensureInboxSchema } from "../inbox/schema.js";
import type { Names } from "../nats/names.js";
import { checkEffects, type EffectsResult } from "../chaos/effects.js";
import { readEffects, readStock } from "../chaos/effects-reader.js";
import { checkCounts, consumeTimed } from "./baseline.js";
import { steadyWindowOf } from "./commits.js";
import { Meter } from "./meter.js";
import { settledStreamMessages } from "./topology.js";
import { perSecond, type PhaseResult, type Verification } from "./types.js";
import { runWorkersUntil, workersResult, type WorkerPhaseContext } from "./work.js";

/** The inbox table of each phase: dropped and made again in every run, so every run starts empty. */
const FLOOR_TABLE = "orderq_inbox_floor";
const WORK_TABLE = "orderq_inbox";
/** Drifting SKUs named in a failed verdict's detail. */
const DRIFT_SHOWN = 3;
/** The database's processes are listed again at most this often (a /proc scan each time). */
const PIDS_REFRESH_MS = 1_000;

export interface InboxBenchFiles {
  /** The example's handler module (examples/postgres-orders/handler.mjs). */
  handler: string;
  /** Its schema (examples/postgres-orders/schema.sql). */
  schema: string;
}

/** The bench's own PostgreSQL, with the example's tables. */
export class InboxDatabase {
  private pidCache: { at: number; pids: number[] } = { at: 0, pids: [] };

  private constructor(
    private readonly server: PostgresServer,
    /** The example's schema (SQL text): run again to seed the emptied tables. */
    private readonly schema: string,
    /** A small pool of the bench's own, for setting up and reading back; not used by any measured loop. */
    readonly pool: pg.Pool,
    readonly files: InboxBenchFiles,
  ) {}

  /** @throws EnvironmentError (exit 3) when PostgreSQL cannot be started, as PostgresServer.start(). */
  static async start(files: InboxBenchFiles): Promise<InboxDatabase> {
    const schema = readFileSync(files.schema, "utf8");
    const server = await PostgresServer.start({ settings: { track_commit_timestamp: "on" } });
    const pool = new pg.Pool({ connectionString: server.url, max: 2 });
    pool.on("error", () => undefined);
    try {
      await pool.query(schema);
      return new InboxDatabase(server, schema, pool, files);
    } catch (err) {
      await pool.end().catch(() => undefined);
      await server.dispose();
      throw err;
    }
  }

  get url(): string {
    return this.server.url;
  }

  get pid(): number | undefined {
    return this.server.pid;
  }

  /** The postmaster and its children, listed again at most once a second: for the meter. */
  readonly pids = (): readonly number[] => {
    const now = Date.now();
    if (now - this.pidCache.at > PIDS_REFRESH_MS) this.pidCache = { at: now, pids: this.server.processes() };
    return this.pidCache.pids;
  };

  /** Drops the inbox table `table` if it exists and makes it again, empty, with orderq's own schema code. */
  async freshInbox(table: string): Promise<void> {
    await this.pool.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(table)}`);
    await ensureInboxSchema(this.pool, table);
  }

  /**
   * Empties the example's tables and seeds them again with its schema (which is safe to run again):
   * every run starts from the same stock, and the effect checker sees only this run's orders' movements
   * (an earlier run's, under other ids, would be movements of orders never committed here).
   */
  async freshExampleTables(): Promise<void> {
    await this.pool.query("TRUNCATE orders, stock_movements");
    await this.pool.query(this.schema);
  }

  async countRows(table: string, where = "TRUE"): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${pg.escapeIdentifier(table)} WHERE ${where}`);
    return Number(rows[0].n);
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
    await this.server.dispose();
  }
}

/**
 * The inbox floor: `count` messages, each one INSERT … ON CONFLICT DO NOTHING of its inbox row (keyed by
 * stream sequence, like the ledger floor) in its own transaction, then a plain ack; at most `batch`
 * messages in flight and `poolSize` connections. The pool is connected before the clock starts.
 */
export async function inboxFloorPhase(
  nc: NatsConnection,
  jsm: JetStreamManager,
  names: Names,
  db: InboxDatabase,
  o: { count: number; batch: number; poolSize: number; stallMs: number },
  meter: Meter,
): Promise<PhaseResult> {
  await db.freshInbox(FLOOR_TABLE);
  const pool = new pg.Pool({ connectionString: db.url, max: o.poolSize });
  pool.on("error", () => undefined);
  let failed = 0;
  let timed: { received: number; t0: number; t1: number };
  try {
    const clients = await Promise.all(Array.from({ length: o.poolSize }, () => pool.connect()));
    for (const client of clients) client.release();
    const insert = {
      name: "orderq_bench_floor",
      text: `INSERT INTO ${FLOOR_TABLE} (order_id, outcome, worker, attempt, stream_seq, at)
             VALUES ($1, 'committed', 'floor', $2, $3, $4) ON CONFLICT (order_id) DO NOTHING`,
    };
    timed = await consumeTimed(nc, names, { count: o.count, batch: o.batch, meter, stallMs: o.stallMs }, async (msg) => {
      try {
        await pool.query({ ...insert, values: [String(msg.seq), msg.info.deliveryCount, msg.seq, new Date().toISOString()] });
        msg.ack(); // inserted, or already there (a redelivery): ack either way
      } catch {
        failed++; // left unacked: it shows in the count of what is left below
      }
    });
  } finally {
    await pool.end();
  }
  const left = await settledStreamMessages(jsm, names.stream);
  const rows = await db.countRows(FLOOR_TABLE);
  const counts = checkCounts(o.count, rows, 0, `${rows} inbox rows, ${failed} inserts failed, ${left} left unacked in the stream`);
  const elapsedMs = timed.t1 - timed.t0;
  return {
    phase: "inbox-floor",
    count: timed.received,
    elapsedMs: Math.round(elapsedMs),
    rate: perSecond(timed.received, elapsedMs),
    window: "consume start → last ack processed (flush)",
    cpu: meter.cpu(timed.t0, timed.t1),
    verification: { ...counts, ok: counts.ok && left === 0 && failed === 0 },
  };
}

/** An inbox row as the work phase reads it back: commit time in ms since the epoch. */
export interface InboxCommit {
  orderId: string;
  outcome: "committed" | "dead-lettered";
  worker: string;
  time: number;
}

/**
 * orderq's inbox mode with the example handler: real `orderq work` processes drain a pre-filled stream
 * into the example's tables. Timed from the inbox rows' commit timestamps, every worker's first commit
 * → the last one; verified from the inbox and the example's tables.
 */
export async function inboxWorkPhase(
  ctx: WorkerPhaseContext,
  db: InboxDatabase,
  inbox: Omit<InboxWorkOptions, "table">,
  expectedIds: readonly string[],
): Promise<PhaseResult> {
  await db.freshInbox(WORK_TABLE);
  await db.freshExampleTables();
  const stockBefore = await readStock(db.url);
  const phaseCtx: WorkerPhaseContext = {
    ...ctx,
    launch: { ...ctx.launch, handler: db.files.handler, inbox: { ...inbox, table: WORK_TABLE }, env: { ...ctx.launch.env, [INBOX_URL_ENV]: db.url } },
    inbox: { committed: () => db.countRows(WORK_TABLE, "outcome = 'committed'"), databasePids: db.pids },
  };
  const run = await runWorkersUntil(phaseCtx, () => expectedIds.length, "inbox work");
  const left = await settledStreamMessages(ctx.jsm, ctx.names.stream);
  // The commit time of the transaction that wrote the row (a savepoint's too); `at` (the claim) when unknown.
  const { rows } = await db.pool.query<{ order_id: string; outcome: InboxCommit["outcome"]; worker: string; t: number }>(
    `SELECT order_id, outcome, worker, (extract(epoch FROM coalesce(pg_xact_commit_timestamp(xmin), at)) * 1000)::float8 AS t
     FROM ${WORK_TABLE}`,
  );
  const commits = rows.map((r) => ({ orderId: r.order_id, outcome: r.outcome, worker: r.worker, time: r.t }));
  const window = steadyWindowOf(commits.filter((c) => c.outcome === "committed"));
  const tables = await readEffects(db.url, { inboxTable: WORK_TABLE });
  const effects = checkEffects({ ...tables, stockBefore, stockAfter: tables.stock, accepted: expectedIds });
  return workersResult("inbox-work", window, run, "PostgreSQL commit timestamps", verifyInbox(commits, expectedIds, left, effects));
}

/**
 * Every expected order committed once in the inbox, nothing else there, and its effects exactly once:
 * one `orders` row per committed order, its stock movements and stock down by exactly its items (the
 * effect checker's verdict). The inbox's primary key makes a doubled inbox row impossible: `duplicated`
 * counts doubled effects, as the checker does — an order doubled is its id and each of its SKUs.
 */
export function verifyInbox(
  rows: ReadonlyArray<Pick<InboxCommit, "orderId" | "outcome">>,
  expectedIds: readonly string[],
  leftInStream: number,
  effects: EffectsResult,
): Verification {
  const expected = new Set(expectedIds);
  const committed = new Set(rows.filter((r) => r.outcome === "committed").map((r) => r.orderId));
  const deadLettered = rows.length - committed.size;
  const lost = expectedIds.filter((id) => !committed.has(id)).length;
  const unexpected = rows.filter((r) => !expected.has(r.orderId)).length + effects.categories.unexpectedEffects.count;
  const duplicated = effects.categories.duplicatedEffects.count;
  const lostEffects = effects.categories.lostEffects.count;
  const ok = lost + duplicated + unexpected === 0 && effects.valid;
  // The first few drifting SKUs, by SKU (padded orders, --payload-bytes, list dozens of padding SKUs), and orders' SKUs.
  const drift =
    effects.stock
      .slice(0, DRIFT_SHOWN)
      .map((d) => `${d.sku} down ${d.actual}, expected ${d.expected}`)
      .join("; ") + (effects.stock.length > DRIFT_SHOWN ? `; ${effects.stock.length - DRIFT_SHOWN} more SKUs` : "");
  const orderDrift =
    effects.movements
      .slice(0, DRIFT_SHOWN)
      .map((d) => `${d.orderId} took ${d.actual} ${d.sku}, expected ${d.expected}`)
      .join("; ") + (effects.movements.length > DRIFT_SHOWN ? `; ${effects.movements.length - DRIFT_SHOWN} more` : "");
  const detail =
    `${committed.size} committed, ${lost} lost, ${unexpected} unexpected` +
    (deadLettered ? `, ${deadLettered} dead-lettered` : "") +
    (leftInStream ? `, ${leftInStream} left unacked in the stream` : "") +
    `; effects: ${effects.categories.ok.count} orders once (row and stock movements), ${lostEffects} lost, ${duplicated} duplicated, ${effects.categories.unexpectedEffects.count} unexpected` +
    (orderDrift ? `; order drift: ${orderDrift}` : "") +
    (drift ? `; stock drift: ${drift}` : ", stock down by exactly the committed items");
  return { ok, detail, expected: expectedIds.length, lost, duplicated, unexpected };
}
