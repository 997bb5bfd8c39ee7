/**
 * The inbox's tables in the team's PostgreSQL database: created idempotently, versioned, and checked
 * for shape before a worker relies on them.
 */
import type pg from "pg";
import { EnvironmentError, InputError } from "../base/errors.js";
import { describeInboxUrl, openInboxPool } from "./connect.js";

/** The inbox table's default name; `--inbox-table` changes it. */
export const DEFAULT_INBOX_TABLE = "orderq_inbox";

/** Version of the inbox schema this orderq writes and reads. */
export const INBOX_SCHEMA_VERSION = 1;

/** Where orderq records the schema version of each inbox table (one row per table). */
const VERSION_TABLE = "orderq_schema";

/**
 * Advisory lock class for orderq (the first key of the two-key form, so orderq's locks never collide
 * with a team's own single-key advisory locks). The second key is 0 for schema changes and the order
 * id's hash for order transactions.
 */
export const ORDERQ_LOCK_CLASS = 0x6f71; // "oq"

/** SQLSTATE of "relation does not exist". */
const UNDEFINED_TABLE = "42P01";

/** Columns and their `information_schema` data types: the shape a worker relies on. */
const COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ["order_id", "text"],
  ["outcome", "text"],
  ["worker", "text"],
  ["attempt", "integer"],
  ["stream_seq", "bigint"],
  ["reason", "text"],
  ["error", "text"],
  ["at", "timestamp with time zone"],
];

/** A plain lower-case identifier: table names are spliced into SQL, so nothing else is accepted. */
export function checkTableName(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new InputError(`--inbox-table: "${name}" is not a plain lower-case identifier (a-z, 0-9, _; at most 63)`);
  }
  return name;
}

/**
 * Creates the inbox table and its version row when missing (under an advisory lock, so concurrent
 * `ensure`s do not race), then checks the shape; says whether the table was created. Throws
 * EnvironmentError (exit 3) for a table of another shape or another schema version.
 */
export async function ensureInboxSchema(pool: pg.Pool, table = DEFAULT_INBOX_TABLE): Promise<"created" | "exists"> {
  checkTableName(table);
  const client = await pool.connect();
  let existed: boolean;
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1, 0)", [ORDERQ_LOCK_CLASS]);
    existed = (await client.query<{ found: boolean }>("SELECT to_regclass($1) IS NOT NULL AS found", [table])).rows[0].found;
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${table} (
         order_id   text PRIMARY KEY,
         outcome    text NOT NULL CHECK (outcome IN ('committed', 'dead-lettered')),
         worker     text NOT NULL,
         attempt    integer NOT NULL,
         stream_seq bigint NOT NULL,
         reason     text,
         error      text,
         at         timestamptz NOT NULL DEFAULT now()
       )`,
    );
    // For the horizon's deletions (retention.ts): without it every batch would scan the whole table.
    // Not part of the checked shape: a table made before it still works, its pruning is only slower.
    await client.query(`CREATE INDEX IF NOT EXISTS ${table}_at ON ${table} (at)`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (table_name text PRIMARY KEY, version integer NOT NULL)`);
    await client.query(`INSERT INTO ${VERSION_TABLE} (table_name, version) VALUES ($1, $2) ON CONFLICT (table_name) DO NOTHING`, [
      table,
      INBOX_SCHEMA_VERSION,
    ]);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  await checkInboxSchema(pool, table);
  return existed ? "exists" : "created";
}

/**
 * Checks that the inbox table exists with the shape and version this orderq expects. Throws
 * EnvironmentError naming the table and the first difference (missing table, missing column, other
 * type, unknown version).
 */
export async function checkInboxSchema(pool: pg.Pool, table = DEFAULT_INBOX_TABLE): Promise<void> {
  checkTableName(table);
  const { rows } = await pool.query<{ column_name: string; data_type: string }>(
    `SELECT column_name, data_type FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = $1`,
    [table],
  );
  if (rows.length === 0) {
    const named = table === DEFAULT_INBOX_TABLE ? "" : ` --inbox-table ${table}`;
    throw new EnvironmentError(`inbox table ${table} does not exist: run \`orderq topology ensure --inbox …${named}\``);
  }
  const types = new Map(rows.map((r) => [r.column_name, r.data_type]));
  for (const [column, type] of COLUMNS) {
    const actual = types.get(column);
    if (actual === undefined) throw new EnvironmentError(`inbox table ${table} has no column ${column} (${type}): not an orderq inbox`);
    if (actual !== type) throw new EnvironmentError(`inbox table ${table}: column ${column} is ${actual}, expected ${type}`);
  }
  const version = await pool
    .query<{ version: number }>(`SELECT version FROM ${VERSION_TABLE} WHERE table_name = $1`, [table])
    .then((r) => r.rows[0]?.version)
    .catch((err: unknown) => {
      if ((err as { code?: string }).code === UNDEFINED_TABLE) return undefined;
      throw err;
    });
  if (version === undefined) throw new EnvironmentError(`inbox table ${table} has no schema version in ${VERSION_TABLE}: not made by orderq`);
  if (version !== INBOX_SCHEMA_VERSION) {
    throw new EnvironmentError(`inbox table ${table} has schema version ${version}; this orderq knows version ${INBOX_SCHEMA_VERSION}`);
  }
}

/** What `topology ensure --inbox` did to the inbox table. */
export interface InboxReport {
  kind: "inbox";
  /** `table @ host:port/database`: no credentials. */
  name: string;
  action: "created" | "exists";
  settings: { schema: number };
}

/**
 * `topology ensure --inbox`: connects, creates or checks the inbox table, disconnects. Throws as
 * openInboxPool() and ensureInboxSchema().
 */
export async function ensureInbox(url: string, table = DEFAULT_INBOX_TABLE): Promise<InboxReport> {
  const pool = await openInboxPool(url, 1);
  try {
    const action = await ensureInboxSchema(pool, table);
    return { kind: "inbox", name: `${table} @ ${describeInboxUrl(url)}`, action, settings: { schema: INBOX_SCHEMA_VERSION } };
  } finally {
    await pool.end();
  }
}
