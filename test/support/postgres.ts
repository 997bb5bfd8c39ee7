/** A fresh PostgreSQL per test file (its own cluster in a temp dir, free loopback port), removed afterwards. */
import pg from "pg";
import { PostgresServer, type PostgresOptions } from "../../src/core/fleet/postgres-server.js";

export interface PostgresFixture {
  server: PostgresServer;
  /** A pool on `server.url`; its idle clients' errors (a test that kills the server) are ignored. */
  pool: pg.Pool;
}

/**
 * Call inside a mocha `describe`: `const db = usePostgres();` then `db.pool.query(…)` or `db.server.url`
 * in tests. `options` are the launcher's (e.g. `settings`).
 */
export function usePostgres(options: PostgresOptions = {}): PostgresFixture {
  const fx = {} as PostgresFixture;
  before(async function () {
    this.timeout(60_000);
    fx.server = await PostgresServer.start(options);
    fx.pool = new pg.Pool({ connectionString: fx.server.url, max: 4 });
    fx.pool.on("error", () => {});
  });
  after(async function () {
    this.timeout(30_000);
    await fx.pool?.end();
    await fx.server?.dispose();
  });
  return fx;
}
