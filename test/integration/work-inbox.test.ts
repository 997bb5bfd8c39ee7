/**
 * `orderq work --handler … --inbox …` end to end: a real nats-server and a real PostgreSQL the suite
 * starts, the example handler, worker processes killed mid-run, and the bad inputs and environments
 * a team meets first.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { workArgs } from "../../src/core/fleet/work-args.js";
import { json, runCli, startCli } from "../support/cli.js";
import { usePostgres } from "../support/postgres.js";
import { useServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

const EXAMPLE = fileURLToPath(new URL("../../examples/postgres-orders/", import.meta.url));

describe("orderq work with a handler module and a PostgreSQL inbox", function () {
  this.timeout(180_000);
  const fx = useServer();
  const db = usePostgres();
  let scratch: string;

  before(async () => {
    await db.pool.query(readFileSync(join(EXAMPLE, "schema.sql"), "utf8"));
    scratch = mkdtempSync(join(tmpdir(), "orderq-handlers-"));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  const count = async (sql: string) => Number((await db.pool.query<{ n: string }>(sql)).rows[0].n);

  it("processes every order once into the team's tables, through worker processes killed mid-run", async () => {
    const ensured = await runCli(["topology", "ensure", "--server", fx.server.url, "--json"], { ORDERQ_INBOX_URL: db.server.url });
    assert.equal(ensured.code, 0, ensured.stderr);
    assert.ok(json(ensured).resources.some((r: { kind: string; action: string }) => r.kind === "inbox" && r.action === "created"));

    const produced = await runCli(["produce", "--count", "600", "--server", fx.server.url, "--json"]);
    assert.equal(json(produced).accepted, 600, produced.stderr);

    // Slow handlers (through a wrapper module) so that the kill lands while orders are in transactions.
    const slow = join(scratch, "slow-handler.mjs");
    writeFileSync(
      slow,
      `import storeOrder from ${JSON.stringify(join(EXAMPLE, "handler.mjs"))};\n` +
        `export default async (order, ctx) => { await new Promise((r) => setTimeout(r, 5)); await storeOrder(order, ctx); };\n`,
    );
    const options = { server: fx.server.url, handler: slow, settings: { ackWaitMs: 1000 }, concurrency: 16 };
    const first = startCli(workArgs({ ...options, workerId: "doomed" }), { ORDERQ_INBOX_URL: db.server.url });
    await waitFor("100 orders stored", async () => (await count("SELECT count(*) AS n FROM orders")) >= 100);
    first.child.kill("SIGKILL");
    await first.done;

    const rest = await runCli(workArgs({ ...options, workerId: "survivor", exitWhenIdleMs: 2000, json: true }), { ORDERQ_INBOX_URL: db.server.url });
    assert.equal(rest.code, 0, rest.stderr);
    assert.equal(await count("SELECT count(*) AS n FROM orders"), 600);
    assert.equal(await count("SELECT count(DISTINCT id) AS n FROM orders"), 600);
    assert.equal(await count("SELECT count(*) AS n FROM orderq_inbox WHERE outcome = 'committed'"), 600);
    // Stock went down by exactly the items of the 600 orders.
    const { rows } = await db.pool.query<{ sold: string; moved: string }>(
      `SELECT (SELECT sum((i->>'qty')::bigint) FROM orders, jsonb_array_elements(items) i) AS sold,
              (SELECT sum(1000000 - on_hand) FROM stock) AS moved`,
    );
    assert.equal(rows[0].sold, rows[0].moved);
  });

  it("refuses a handler module that is missing, has no default export, or throws while loading (exit 2, one line naming it)", async () => {
    const noDefault = join(scratch, "no-default.mjs");
    writeFileSync(noDefault, "export const handler = async () => {};\n");
    const throws = join(scratch, "throws.mjs");
    writeFileSync(throws, 'throw new Error("missing API key");\n');
    const cases: Array<[string, RegExp]> = [
      [join(scratch, "nowhere.mjs"), /--handler .*nowhere\.mjs: no such file/],
      [noDefault, /--handler .*no-default\.mjs: no default export/],
      [throws, /--handler .*throws\.mjs: the module threw while loading: missing API key/],
    ];
    for (const [path, message] of cases) {
      const result = await runCli(["work", "--server", fx.server.url, "--handler", path, "--processes", "2"]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    }
  });

  it("says in one line, without the password, that the inbox database cannot be reached (exit 3)", async () => {
    const result = await runCli(["work", "--server", fx.server.url, "--exit-when-idle", "1s"], {
      ORDERQ_INBOX_URL: "postgres://shop:s3cret-pw@127.0.0.1:1/shop",
    });
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /inbox database 127\.0\.0\.1:1\/shop cannot be reached/);
    assert.doesNotMatch(result.stderr + result.stdout, /s3cret-pw/);
  });

  it("refuses an inbox URL that is not postgres:// and a table name that is not an identifier, before connecting (exit 2)", async () => {
    const badUrl = await runCli(["work", "--server", "nats://127.0.0.1:1", "--inbox", "mysql://x/y"]);
    assert.equal(badUrl.code, 2, badUrl.stderr);
    assert.match(badUrl.stderr, /--inbox: mysql:\/\/ is not postgres:\/\//);
    const badTable = await runCli(["work", "--server", "nats://127.0.0.1:1", "--inbox", db.server.url, "--inbox-table", "orders; drop table x"]);
    assert.equal(badTable.code, 2, badTable.stderr);
    assert.match(badTable.stderr, /--inbox-table: .* is not a plain lower-case identifier/);
  });
});
