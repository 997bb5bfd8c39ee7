/**
 * Inbox mode under chaos, through the real CLI: each run starts its own nats-server and its own
 * PostgreSQL. The example handler under worker kills and database restarts is VALID with its effects
 * checked; the unsafe example under the same faults must be INVALID with duplicated effects (a checker
 * that cannot fail proves nothing).
 *
 * Both handlers run wrapped so that every tenth order fails once after its writes (a transient error
 * after the effect, as a payment call that times out): the kills and restarts hit the unsafe handler's
 * window between its own commit and orderq's only by chance (a CI run once missed it 10 times out of
 * 10), the transient error hits it on every run.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChaosResult } from "../../src/core/chaos/runner.js";
import { json, runCli } from "../support/cli.js";

const EXAMPLES = new URL("../../examples/postgres-orders/", import.meta.url);

/** Every tenth order (by its id's characters) fails its first attempt after the example's writes. */
function writeFlakyAfterWrites(dir: string, example: "handler.mjs" | "unsafe-handler.mjs"): string {
  const file = join(dir, `flaky-${example}`);
  writeFileSync(
    file,
    `import example from ${JSON.stringify(new URL(example, EXAMPLES).href)};
export default async function flakyAfterWrites(order, ctx) {
  await example(order, ctx);
  const tenth = [...order.id].reduce((sum, c) => sum + c.charCodeAt(0), 0) % 10 === 0;
  if (tenth && ctx.attempt === 1) throw new Error(\`order \${order.id} failed after its writes (attempt 1)\`);
}
`,
  );
  return file;
}

async function chaos(args: string[]): Promise<{ code: number | null; stderr: string; result: ChaosResult }> {
  const out = await runCli(["chaos", ...args, "--json"]);
  return { code: out.code, stderr: out.stderr, result: json<ChaosResult>(out) };
}

function counts(r: ChaosResult): string {
  if (!r.check) return JSON.stringify(r);
  const of = (cats: Record<string, { count: number }>) => Object.fromEntries(Object.entries(cats).map(([k, v]) => [k, v.count]));
  return JSON.stringify({
    ledger: of(r.check.categories),
    effects: r.inbox?.effects && of(r.inbox.effects.categories),
    stock: r.inbox?.effects?.stock,
    orders: r.inbox?.effects?.movements.slice(0, 5),
    failed: r.check.expectations.filter((e) => !e.ok),
    faults: r.faults.byKind,
  });
}

describe("orderq chaos with the PostgreSQL inbox", function () {
  this.timeout(240_000);
  let handlers: string;
  before(() => (handlers = mkdtempSync(join(tmpdir(), "orderq-inbox-handlers-"))));
  after(() => rmSync(handlers, { recursive: true, force: true }));

  it("inbox-worker-crash with the example handler: VALID, every order committed once in the inbox, effects once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "orderq-inbox-report-"));
    try {
      const handler = writeFlakyAfterWrites(handlers, "handler.mjs");
      const { code, result } = await chaos(["inbox-worker-crash", "--seed", "11", "--orders", "600", "--report", dir, "--handler", handler]);
      assert.equal(result.valid, true, counts(result));
      assert.equal(code, 0);
      for (const bad of ["lost", "duplicated", "unexpected", "stuck"] as const) assert.equal(result.check.categories[bad].count, 0, bad);
      const inbox = result.inbox;
      assert.ok(inbox?.effects, "effects checked");
      assert.equal(inbox.handler, handler);
      assert.equal(inbox.committed, 600, "committed in the inbox = orders");
      assert.equal(inbox.effects.committed, 600);
      assert.equal(inbox.effects.categories.ok.count, 600);
      for (const bad of ["lostEffects", "duplicatedEffects", "unexpectedEffects"] as const) assert.equal(inbox.effects.categories[bad].count, 0, bad);
      assert.deepEqual(inbox.effects.stock, []);
      assert.deepEqual(inbox.effects.movements, [], "every order's movements are exactly its items");
      // Both fault kinds really happened: workers died and the database was killed and restarted.
      assert.ok((result.faults.byKind["kill-worker"]?.observed ?? 0) > 0, counts(result));
      assert.ok((result.faults.byKind["db-restart"]?.observed ?? 0) > 0, counts(result));
      assert.ok(result.effects.redeliveries > 0, "redeliveries");
      const html = readFileSync(join(dir, "report.html"), "utf8");
      assert.match(html, /<h2>Effects .*exactly once/);
      assert.match(html, /db-restart/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the unsafe example handler under the same faults (negative control): INVALID with duplicated effects, exit 1", async () => {
    const unsafe = writeFlakyAfterWrites(handlers, "unsafe-handler.mjs");
    const { code, result } = await chaos(["inbox-worker-crash", "--seed", "11", "--orders", "600", "--handler", unsafe]);
    assert.equal(result.valid, false, counts(result));
    assert.equal(code, 1);
    assert.equal(result.inbox?.handler, unsafe);
    // The inbox itself still holds each order once: only the effects betray the handler.
    for (const bad of ["lost", "duplicated", "unexpected", "stuck"] as const)
      assert.equal(result.check.categories[bad].count, 0, `${bad}: ${counts(result)}`);
    assert.ok((result.inbox?.effects?.categories.duplicatedEffects.count ?? 0) > 0, counts(result));
    // Named under the orders whose movements were applied twice, not only under their SKUs.
    const duplicated = result.inbox?.effects?.categories.duplicatedEffects.ids ?? [];
    assert.ok(
      duplicated.some((id) => !id.startsWith("stock:")),
      counts(result),
    );
    assert.ok(
      result.inbox?.effects?.movements.some((d) => d.actual > d.expected && duplicated.includes(d.orderId)),
      counts(result),
    );
    assert.ok(
      result.inbox?.effects?.stock.some((d) => d.actual > d.expected),
      counts(result),
    );
  });

  it("refuses --unsafe on an inbox scenario and a --handler that does not exist (exit 2, one line, nothing started)", async () => {
    const unsafe = await runCli(["chaos", "inbox-ack-lost", "--unsafe"]);
    assert.equal(unsafe.code, 2, unsafe.stderr);
    assert.match(unsafe.stderr.trim(), /^orderq: scenario inbox-ack-lost uses the inbox, where --unsafe changes nothing/);
    const missing = await runCli(["chaos", "inbox-ack-lost", "--handler", "./no-such-handler.mjs"]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.equal(missing.stderr.trim(), "orderq: --handler: no handler module at ./no-such-handler.mjs");
    assert.ok(!existsSync("./no-such-handler.mjs"));
  });

  it("checks the handler module and the schema before any worker starts: exit 2 / exit 3, one line naming where", async () => {
    const dir = mkdtempSync(join(tmpdir(), "orderq-inbox-handler-"));
    try {
      const module = join(dir, "no-default.mjs");
      writeFileSync(module, "export const storeOrder = async () => {};\n");
      const out = await runCli(["chaos", "inbox-ack-lost", "--handler", module]);
      assert.equal(out.code, 2, out.stderr);
      assert.equal(out.stderr.trim(), `orderq: --handler: no default export (write \`export default async (order, ctx) => { … }\`) (${module})`);
      // From a scenario file, the message names the file and the field.
      const scenario = join(dir, "s.yaml");
      writeFileSync(scenario, "orders: 10\nrate: 10\nhandler:\n  module: ./no-default.mjs\n");
      const fromFile = await runCli(["chaos", scenario]);
      assert.equal(fromFile.code, 2, fromFile.stderr);
      assert.match(fromFile.stderr.trim(), /^orderq: \S*s\.yaml: handler\.module: no default export .*no-default\.mjs\)$/);
      // A schema that fails, or one without the tables the effect checker reads: exit 3 before any order.
      writeFileSync(join(dir, "handler.mjs"), "export default async () => {};\n");
      writeFileSync(join(dir, "broken.sql"), "CREATE TABLE broken (\n");
      writeFileSync(join(dir, "other.sql"), "CREATE TABLE other (id int);\n");
      const inboxScenario = (schema: string) =>
        `orders: 10\nrate: 10\nhandler:\n  module: handler.mjs\ninbox:\n  schema: ${schema}\n  effects: true\n`;
      writeFileSync(scenario, inboxScenario("broken.sql"));
      const broken = await runCli(["chaos", scenario]);
      assert.equal(broken.code, 3, broken.stderr);
      assert.match(broken.stderr.trim(), /^orderq: \S*s\.yaml: inbox\.schema \S*broken\.sql failed: syntax error/);
      writeFileSync(scenario, inboxScenario("other.sql"));
      const noTables = await runCli(["chaos", scenario]);
      assert.equal(noTables.code, 3, noTables.stderr);
      assert.match(
        noTables.stderr.trim(),
        /^orderq: \S*s\.yaml: inbox\.effects reads the tables orders, stock_movements and stock .*"orders" does not exist$/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
