/**
 * The inbox side of a chaos run (a scenario with `inbox:`): a private PostgreSQL started for the run
 * (never the machine's shared one), the scenario's SQL schema and orderq's inbox table in it, the
 * workers' handler and inbox options, and after the run the inbox rows as the checker's ledger plus,
 * with `effects: true`, the effect checker's verdict on the handler's tables.
 */
import { readFileSync } from "node:fs";
import pg from "pg";
import { EnvironmentError, errorMessage, InputError } from "../base/errors.js";
import { PostgresServer } from "../fleet/postgres-server.js";
import type { WorkOptions } from "../fleet/work-args.js";
import { INBOX_URL_ENV, openInboxPool } from "../inbox/connect.js";
import { DEFAULT_INBOX_TABLE, ensureInboxSchema } from "../inbox/schema.js";
import { InboxStore } from "../inbox/store.js";
import { loadHandlerModule } from "../pipeline/handler-module.js";
import type { HistoryEvent } from "../pipeline/history.js";
import type { LedgerWrite } from "../pipeline/ledger.js";
import { checkEffects, type EffectsResult, type StockLevel } from "./effects.js";
import { readEffects } from "./effects-reader.js";
import type { Scenario } from "./scenario.js";

/** What the inbox showed after the run; part of the chaos result. */
export interface InboxRunResult {
  table: string;
  /** The handler module the workers ran (absolute path), or "simulated". */
  handler: string;
  /** Inbox rows: the ledger of record in this mode (one per order at most: the primary key). */
  committed: number;
  deadLettered: number;
  /** The effect checker's verdict on the handler's tables, when the scenario asks for it. */
  effects?: EffectsResult;
}

/** What InboxRun needs of a scenario: where it came from (for messages) and its inbox settings. */
export type InboxScenario = Pick<Scenario, "file" | "inbox">;

export class InboxRun {
  readonly table = DEFAULT_INBOX_TABLE;
  private stockBefore: StockLevel[] = [];
  private progressPool?: pg.Pool;

  private constructor(
    readonly database: PostgresServer,
    private readonly scenario: InboxScenario & { inbox: NonNullable<Scenario["inbox"]> },
    private readonly handler: string | undefined,
  ) {}

  /**
   * Starts the run's PostgreSQL and prepares it: the scenario's schema file, the inbox table, the
   * stock before any order. Undefined when the scenario has no inbox. Chaos runs pass their scenario;
   * the model-based test passes only these two fields.
   * @param handler the workers' handler module (absolute), when not the simulated one.
   * @throws EnvironmentError (exit 3): PostgreSQL missing or not starting, the schema file failing.
   */
  static async start(scenario: InboxScenario, handler: string | undefined): Promise<InboxRun | undefined> {
    const inbox = scenario.inbox;
    if (!inbox) return undefined;
    const database = await PostgresServer.start();
    const run = new InboxRun(database, { ...scenario, inbox }, handler);
    try {
      await run.prepare();
    } catch (err) {
      await database.dispose();
      throw err;
    }
    return run;
  }

  private async prepare(): Promise<void> {
    const { schema, effects } = this.scenario.inbox;
    const pool = await openInboxPool(this.database.url, 1);
    try {
      if (schema) {
        try {
          await pool.query(readFileSync(schema, "utf8"));
        } catch (err) {
          throw new EnvironmentError(`${this.scenario.file}: inbox.schema ${schema} failed: ${errorMessage(err)}`);
        }
      }
      await ensureInboxSchema(pool, this.table);
    } finally {
      await pool.end();
    }
    if (effects) {
      try {
        // Every table the checker reads, not only `stock`: a missing one is found before any order is sent.
        this.stockBefore = (await readEffects(this.database.url, { inboxTable: this.table })).stock;
      } catch (err) {
        // The effect checker reads examples/postgres-orders' tables: say so before any order is sent.
        throw new EnvironmentError(
          `${this.scenario.file}: inbox.effects reads the tables orders, stock_movements and stock (examples/postgres-orders/schema.sql), which the schema did not make: ${errorMessage(err)}`,
        );
      }
    }
  }

  /** Inbox rows so far, for live progress; undefined when the database does not answer (a db-restart). */
  async rowCount(): Promise<number | undefined> {
    if (!this.progressPool) {
      this.progressPool = new pg.Pool({ connectionString: this.database.url, max: 1, connectionTimeoutMillis: 1_000 });
      this.progressPool.on("error", () => undefined); // the database killed under an idle connection
    }
    try {
      const { rows } = await this.progressPool.query<{ n: string }>(`SELECT count(*) AS n FROM ${this.table}`);
      return Number(rows[0].n);
    } catch {
      return undefined;
    }
  }

  /** The workers' environment: the database URL never goes on a command line. */
  get env(): Record<string, string> {
    return { [INBOX_URL_ENV]: this.database.url };
  }

  /** The workers' handler and inbox options, for workArgs(). */
  get workOptions(): Pick<WorkOptions, "handler" | "inbox"> {
    const { maxBatch, poolSize } = this.scenario.inbox;
    return { handler: this.handler, inbox: { table: this.table, maxBatch, poolSize } };
  }

  /**
   * Reads the inbox once the workers have stopped: its rows as ledger writes (the checker's input in
   * place of the KV ledger's), and the effect check when the scenario asks for it.
   * @param accepted ids with a PubAck, from the producers' history.
   */
  async finish(accepted: Iterable<string>): Promise<{ ledger: LedgerWrite[]; result: InboxRunResult }> {
    const ledger = inboxLedger(await this.readRows());
    const result: InboxRunResult = {
      table: this.table,
      handler: this.handler ?? "simulated",
      committed: ledger.filter((w) => w.outcome.result === "committed").length,
      deadLettered: ledger.filter((w) => w.outcome.result === "dead-lettered").length,
    };
    if (this.scenario.inbox.effects) {
      const tables = await readEffects(this.database.url, { inboxTable: this.table });
      result.effects = checkEffects({
        inbox: tables.inbox,
        orders: tables.orders,
        movements: tables.movements,
        stockBefore: this.stockBefore,
        stockAfter: tables.stock,
        accepted,
      });
    }
    return { ledger, result };
  }

  private async readRows(): Promise<Awaited<ReturnType<InboxStore["rows"]>>> {
    const store = await InboxStore.open({ url: this.database.url, table: this.table, poolSize: 1, maxBatch: 1 });
    try {
      return await store.rows();
    } finally {
      await store.close();
    }
  }

  async dispose(): Promise<void> {
    await this.progressPool?.end().catch(() => undefined);
    await this.database.dispose();
  }
}

/** Inbox rows in the shape of KV ledger writes: `seq` is the row's place in commit-time order. */
export function inboxLedger(rows: Awaited<ReturnType<InboxStore["rows"]>>): LedgerWrite[] {
  return rows.map((row, i) => ({ orderId: row.orderId, seq: i + 1, outcome: row.outcome, time: Date.parse(row.outcome.at) }));
}

/**
 * Ids the producers got a PubAck for, of orders: an invalid payload never reaches a handler (it goes
 * to the DLQ as it is, with no inbox row), so no effect of it is expected, and counting it would make
 * each one a lost effect.
 */
export function acceptedIds(history: readonly HistoryEvent[]): Set<string> {
  const invalid = new Set(history.filter((e) => e.type === "invoke" && e.kind === "invalid").map((e) => e.id));
  return new Set(history.filter((e) => e.type === "ok" && !invalid.has(e.id)).map((e) => e.id));
}

/**
 * Loads the workers' handler module once in this process, before any worker starts (as `orderq work`
 * does): a module that is missing, throws while loading or has no default export is one InputError
 * line naming where it came from, not workers failing in a loop. `env` (the inbox URL) is set while
 * it loads, since a module may read it at load time, as the workers will see it.
 */
export async function checkHandlerModule(path: string, source: string, env: Record<string, string>): Promise<void> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    await loadHandlerModule(path);
  } catch (err) {
    if (err instanceof InputError) throw new InputError(`${source}: ${err.message.replace(/^--handler \S+: /, "")} (${path})`);
    throw err;
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
