/**
 * Inbox mode across the operator's tools: a handler's NonRetryableError dead-letters an order with a
 * claim in the inbox table, `dlq replay --inbox` releases the claim so the fixed handler commits it
 * once, and `status --inbox` counts the inbox's rows.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { workArgs } from "../../src/core/fleet/work-args.js";
import { json, runCli } from "../support/cli.js";
import { usePostgres } from "../support/postgres.js";
import { useServer } from "../support/server.js";

const EXAMPLE = fileURLToPath(new URL("../../examples/postgres-orders/", import.meta.url));
const ORDERQ = pathToFileURL(fileURLToPath(new URL("../../dist/index.js", import.meta.url))).href;

describe("inbox mode: dead-lettering, replay and status read the inbox table", function () {
  this.timeout(180_000);
  const fx = useServer();
  const db = usePostgres();
  let scratch: string;
  const env = () => ({ ORDERQ_INBOX_URL: db.server.url });
  const count = async (sql: string) => Number((await db.pool.query<{ n: string }>(sql)).rows[0].n);

  before(async () => {
    await db.pool.query(readFileSync(join(EXAMPLE, "schema.sql"), "utf8"));
    scratch = mkdtempSync(join(tmpdir(), "orderq-inbox-dlq-"));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it("dead-letters what the handler refuses, replays it into the fixed handler, and counts every row once", async () => {
    // A handler with a "bug": orders with tea are refused as never processable.
    const buggy = join(scratch, "buggy.mjs");
    writeFileSync(
      buggy,
      `import { NonRetryableError } from ${JSON.stringify(ORDERQ)};\n` +
        `import storeOrder from ${JSON.stringify(join(EXAMPLE, "handler.mjs"))};\n` +
        `export default async (order, ctx) => {\n` +
        `  if (order.items.some((i) => i.sku === "tea-077")) throw new NonRetryableError("tea is not sold here");\n` +
        `  await storeOrder(order, ctx);\n};\n`,
    );
    assert.equal((await runCli(["topology", "ensure", "--server", fx.server.url], env())).code, 0);
    const produced = await runCli(["produce", "--count", "200", "--server", fx.server.url, "--json"]);
    assert.equal(json(produced).accepted, 200, produced.stderr);

    const first = await runCli(workArgs({ server: fx.server.url, handler: buggy, exitWhenIdleMs: 1500, json: true }), env());
    assert.equal(first.code, 0, first.stderr);
    const refused = json(first).deadLettered as number;
    assert.ok(refused > 0, "some orders have tea");
    assert.equal(json(first).committed + refused, 200);
    assert.equal(await count("SELECT count(*) AS n FROM orderq_inbox WHERE outcome = 'dead-lettered'"), refused);
    assert.equal(await count("SELECT count(*) AS n FROM orders"), 200 - refused);

    const status = json(await runCli(["status", "--server", fx.server.url, "--json"], env()));
    assert.deepEqual(status.inbox, { table: "orderq_inbox", committed: 200 - refused, deadLettered: refused });
    assert.equal(status.dlq.byReason["non-retryable"], refused);

    const replayed = await runCli(["dlq", "replay", "--all", "--server", fx.server.url, "--json"], env());
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.equal(json(replayed).replayed, refused);

    const second = await runCli(workArgs({ server: fx.server.url, handler: join(EXAMPLE, "handler.mjs"), exitWhenIdleMs: 1500, json: true }), env());
    assert.equal(second.code, 0, second.stderr);
    assert.equal(json(second).committed, refused);
    assert.equal(await count("SELECT count(*) AS n FROM orders"), 200);
    assert.equal(await count("SELECT count(*) AS n FROM orderq_inbox WHERE outcome = 'committed'"), 200);

    // Replaying again finds nothing; an entry for a committed order would be refused, not re-run.
    const again = json(await runCli(["status", "--server", fx.server.url, "--json"], env()));
    assert.deepEqual(again.inbox, { table: "orderq_inbox", committed: 200, deadLettered: 0 });
    assert.equal(again.dlq.depth, 0);
  });
});
