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

  it("gives up on handlers that never settle at the drain timeout: their signal is aborted, their transactions rolled back, their orders left", async () => {
    const stream = "HANG";
    const names = { stream, consumer: "hang-workers", dlqStream: "HANG_DLQ", ledgerBucket: "hang_ledger" };
    const topology = ["--stream", stream, "--consumer", names.consumer, "--dlq-stream", names.dlqStream, "--ledger-bucket", names.ledgerBucket];
    const aborted = join(scratch, "aborted.txt");
    const hang = join(scratch, "hang.mjs");
    writeFileSync(
      hang,
      `import { appendFileSync } from "node:fs";
` +
        `export default (order, ctx) => new Promise(() => {
` +
        `  ctx.signal.addEventListener("abort", () => appendFileSync(${JSON.stringify(aborted)}, order.id + "\\n"));
});
`,
    );
    const ensured = await runCli(["topology", "ensure", "--server", fx.server.url, ...topology, "--inbox-table", "hang_inbox"], {
      ORDERQ_INBOX_URL: db.server.url,
    });
    assert.equal(ensured.code, 0, ensured.stderr);
    const produced = await runCli(["produce", "--count", "10", "--server", fx.server.url, ...topology, "--json"]);
    assert.equal(json(produced).accepted, 10, produced.stderr);
    const worker = startCli(
      [
        "work",
        "--server",
        fx.server.url,
        ...topology,
        "--handler",
        hang,
        "--concurrency",
        "4",
        "--drain-timeout",
        "1s",
        "--inbox-table",
        "hang_inbox",
      ],
      { ORDERQ_INBOX_URL: db.server.url },
    );
    await waitFor(
      "4 orders in open transactions",
      async () => (await count("SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'idle in transaction'").catch(() => 0)) >= 4,
    );
    worker.child.kill("SIGTERM");
    const result = await worker.done;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /drain timeout: 4 order\(s\) still being handled/);
    assert.equal(readFileSync(aborted, "utf8").trim().split("\n").length, 4, "each hanging handler saw its signal abort");
    assert.equal(await count("SELECT count(*) AS n FROM hang_inbox"), 0, "their transactions were rolled back");
    const status = json(await runCli(["status", "--server", fx.server.url, ...topology, "--json"]));
    assert.equal(status.stream.messages, 10, "nothing was acked: every order is still there for redelivery");
  });

  it("retries a handler that throws a non-Error value, then dead-letters it with that value as its last error; its ctx.log lines reach stderr under --json", async () => {
    const stream = "ODD";
    const topology = ["--stream", stream, "--consumer", "odd-workers", "--dlq-stream", "ODD_DLQ", "--ledger-bucket", "odd_ledger"];
    const odd = join(scratch, "odd.mjs");
    writeFileSync(odd, `export default async (order, ctx) => { ctx.log("no cheese for " + order.id); throw "out of cheese"; };\n`);
    const ensured = await runCli(["topology", "ensure", "--server", fx.server.url, ...topology, "--max-deliver", "2", "--inbox-table", "odd_inbox"], {
      ORDERQ_INBOX_URL: db.server.url,
    });
    assert.equal(ensured.code, 0, ensured.stderr);
    assert.equal(json(await runCli(["produce", "--count", "3", "--server", fx.server.url, ...topology, "--json"])).accepted, 3);
    const worked = await runCli(
      [
        "work",
        "--server",
        fx.server.url,
        ...topology,
        "--handler",
        odd,
        "--max-deliver",
        "2",
        "--backoff-base",
        "10ms",
        "--inbox-table",
        "odd_inbox",
        "--exit-when-idle",
        "1s",
        "--json",
      ],
      { ORDERQ_INBOX_URL: db.server.url },
    );
    assert.equal(worked.code, 0, worked.stderr);
    assert.deepEqual([json(worked).failedAttempts, json(worked).deadLettered, json(worked).committed], [6, 3, 0]);
    // --json puts the result on stdout; the handler's ctx.log lines still reach stderr, one per attempt.
    assert.equal(worked.stderr.match(/: no cheese for \S+/g)?.length, 6, worked.stderr);
    const listed = json(await runCli(["dlq", "list", "--server", fx.server.url, ...topology, "--json"]));
    assert.deepEqual(
      listed.entries.map((e: { lastError: string }) => e.lastError),
      ["out of cheese", "out of cheese", "out of cheese"],
    );
    assert.equal(await count("SELECT count(*) AS n FROM odd_inbox WHERE outcome = 'dead-lettered'"), 3);
    // `orderq order` reads the outcome from the inbox when given one (the KV ledger holds none in this mode).
    const id: string = listed.entries[0].orderId;
    const lookup = (env: NodeJS.ProcessEnv) =>
      runCli(["order", id, "--server", fx.server.url, ...topology, "--inbox-table", "odd_inbox", "--json"], env);
    const fromInbox = json(await lookup({ ORDERQ_INBOX_URL: db.server.url }));
    assert.deepEqual([fromInbox.state, fromInbox.outcome?.result, fromInbox.outcome?.error], ["dead-lettered", "dead-lettered", "out of cheese"]);
    assert.equal(json(await lookup({})).outcome, undefined, "without --inbox, the KV ledger: nothing there");
    const bad = await runCli(["order", "not an id!", "--server", fx.server.url]);
    assert.deepEqual([bad.code, bad.stderr.trim()], [2, `orderq: "not an id!" is not an order id (1-64 characters of A-Z a-z 0-9 _ -)`]);
  });

  it("prunes inbox rows older than the horizon while it runs (the top-level process, once per invocation)", async () => {
    const names = ["--stream", "PRUNE", "--consumer", "prune-workers", "--dlq-stream", "PRUNE_DLQ", "--ledger-bucket", "prune_ledger"];
    const env = { ORDERQ_INBOX_URL: db.server.url };
    const common = [...names, "--inbox-table", "prune_inbox", "--server", fx.server.url];
    const ensured = await runCli(["topology", "ensure", ...common, "--dup-window", "1m", "--ledger-retention", "30m"], env);
    assert.equal(ensured.code, 0, ensured.stderr);
    const insert =
      "INSERT INTO prune_inbox (order_id, outcome, worker, attempt, stream_seq, at) VALUES ($1, 'committed', 'w', 1, 1, now() - $2::interval)";
    await db.pool.query(insert, ["old-1", "1 hour"]);
    await db.pool.query(insert, ["fresh-1", "1 minute"]);
    const work = await runCli(["work", ...common, "--exit-when-idle", "500ms"], env);
    assert.equal(work.code, 0, work.stderr);
    assert.match(work.stderr, /inbox prune_inbox: deleted 1 row\(s\) older than the horizon/);
    const { rows } = await db.pool.query<{ order_id: string }>("SELECT order_id FROM prune_inbox");
    assert.deepEqual(
      rows.map((r) => r.order_id),
      ["fresh-1"],
    );
  });

  it("refuses a handler module that is missing, has no default export, or throws while loading (exit 2, one line naming it)", async () => {
    const noDefault = join(scratch, "no-default.mjs");
    writeFileSync(noDefault, "export const handler = async () => {};\n");
    const throws = join(scratch, "throws.mjs");
    writeFileSync(throws, 'throw new Error("missing API key");\n');
    const cases: Array<[string, RegExp]> = [
      [join(scratch, "nowhere.mjs"), /--handler .*nowhere\.mjs: no such file/],
      [noDefault, /--handler .*no-default\.mjs: no default export/],
      [throws, /--handler .*throws\.mjs: the module failed to load: missing API key/],
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
