/**
 * The example handlers of examples/postgres-orders against a private PostgreSQL with the example's
 * schema: the safe one changes the tables once, inside the transaction or not at all; the unsafe one,
 * run twice for one order, leaves effects the effect checker reports as duplicated.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type pg from "pg";
import { checkEffects } from "../../src/core/chaos/effects.js";
import { readEffects, readStock, type EffectTables } from "../../src/core/chaos/effects-reader.js";
import { seededRng } from "../../src/core/base/random.js";
import { makeOrder, type Order } from "../../src/core/pipeline/order.js";
import { usePostgres } from "../support/postgres.js";

const EXAMPLE = new URL("../../examples/postgres-orders/", import.meta.url);

type ExampleHandler = (
  order: Order,
  ctx: { attempt: number; idempotencyKey: string; signal: AbortSignal; log: unknown; db: Pick<pg.ClientBase, "query"> },
) => Promise<void>;

async function load(file: string): Promise<ExampleHandler> {
  return ((await import(new URL(file, EXAMPLE).href)) as { default: ExampleHandler }).default;
}

/** mug-330 twice (summed per SKU), a seeded SKU and one the schema does not know (a backorder). */
function anOrder(id: string): Order {
  return {
    id,
    source: "web",
    items: [
      { sku: "mug-330", qty: 2, price: 12.5 },
      { sku: "tea-077", qty: 1, price: 4 },
      { sku: "mug-330", qty: 1, price: 12.5 },
      { sku: `new-${id}`, qty: 3, price: 1 },
    ],
    amount: 44.5,
    createdAt: new Date().toISOString(),
  };
}

/** The tables as if `id` were the run's only order (the tests share one database). */
function only(tables: EffectTables, id: string): EffectTables {
  const of = <T extends { orderId: string }>(rows: T[]) => rows.filter((r) => r.orderId === id);
  return { ...tables, inbox: of(tables.inbox), orders: of(tables.orders), movements: of(tables.movements) };
}

const onHand = (stock: { sku: string; onHand: number }[], sku: string) => stock.find((s) => s.sku === sku)?.onHand;

describe("examples/postgres-orders", function () {
  this.timeout(60_000);
  const db = usePostgres();

  before(async () => {
    await db.pool.query(readFileSync(new URL("schema.sql", EXAMPLE), "utf8"));
    await db.pool.query(readFileSync(new URL("schema.sql", EXAMPLE), "utf8")); // idempotent
    // Stand-in for orderq's inbox table: the two columns the effect reader uses.
    await db.pool.query("CREATE TABLE orderq_inbox (order_id text PRIMARY KEY, outcome text NOT NULL)");
  });

  /** What orderq's inbox mode does with one delivery: inbox row, handler on ctx.db, commit (or roll back). */
  async function deliver(handler: ExampleHandler, order: Order, end: "COMMIT" | "ROLLBACK"): Promise<number> {
    const client = await db.pool.connect();
    let queries = 0;
    try {
      await client.query("BEGIN");
      await client.query("INSERT INTO orderq_inbox (order_id, outcome) VALUES ($1, 'committed')", [order.id]);
      const counted = { query: ((...args: Parameters<pg.ClientBase["query"]>) => (queries++, client.query(...args))) as pg.ClientBase["query"] };
      await handler(order, { attempt: 1, idempotencyKey: order.id, signal: new AbortController().signal, log: () => {}, db: counted });
      await client.query(end);
    } finally {
      client.release();
    }
    return queries;
  }

  it("seeds stock for every SKU orderq produce generates", async () => {
    const rng = seededRng(15);
    const generated = new Set(Array.from({ length: 500 }, (_, i) => makeOrder(`g${i}`, "web", rng).items.map((item) => item.sku)).flat());
    const stock = await readStock(db.server.url);
    assert.deepEqual(stock.map((s) => s.sku).sort(), [...generated].sort());
    assert.ok(stock.every((s) => s.onHand === 1_000_000));
  });

  it("handler.mjs: one order, committed → one orders row and stock down once, in one round trip", async () => {
    const handler = await load("handler.mjs");
    const before = await readStock(db.server.url);
    const order = anOrder("safe-1");
    assert.equal(await deliver(handler, order, "COMMIT"), 1, "one query through ctx.db");

    const tables = await readEffects(db.server.url);
    assert.deepEqual(tables.orders.filter((o) => o.orderId === order.id).length, 1);
    assert.equal(onHand(tables.stock, "mug-330"), onHand(before, "mug-330")! - 3);
    assert.equal(onHand(tables.stock, "tea-077"), onHand(before, "tea-077")! - 1);
    assert.equal(onHand(tables.stock, "new-safe-1"), -3);
    const { rows } = await db.pool.query("SELECT source, amount::float8 AS amount, items FROM orders WHERE id = $1", [order.id]);
    assert.deepEqual(rows, [{ source: "web", amount: 44.5, items: order.items }]);
    // Its movements, read per (order, SKU); the seed's movements have no order id and are not among them.
    assert.deepEqual(
      only(tables, order.id).movements.sort((a, b) => a.sku.localeCompare(b.sku)),
      [
        { orderId: order.id, sku: "mug-330", taken: 3 },
        { orderId: order.id, sku: "new-safe-1", taken: 3 },
        { orderId: order.id, sku: "tea-077", taken: 1 },
      ],
    );
    assert.ok(
      tables.movements.every((m) => typeof m.orderId === "string"),
      "only movements with an order id",
    );
    const r = checkEffects({ ...only(tables, order.id), stockBefore: before, stockAfter: tables.stock, accepted: [order.id] });
    assert.equal(r.valid, true, JSON.stringify(r));
    assert.equal(r.categories.ok.count, 1);
  });

  it("handler.mjs: rolled back → no row, no stock change, no inbox row", async () => {
    const handler = await load("handler.mjs");
    const before = await readStock(db.server.url);
    const order = anOrder("rolled-back-1");
    await deliver(handler, order, "ROLLBACK");
    const tables = await readEffects(db.server.url);
    assert.equal(
      tables.orders.some((o) => o.orderId === order.id),
      false,
    );
    assert.equal(
      tables.inbox.some((o) => o.orderId === order.id),
      false,
    );
    assert.deepEqual(only(tables, order.id).movements, []);
    assert.deepEqual(tables.stock, before);
  });

  it("unsafe-handler.mjs run twice for one order (a redelivery) → the effect checker reports the order's effects duplicated", async () => {
    process.env.ORDERQ_INBOX_URL = db.server.url; // read when the module loads, as in a worker
    const unsafe = await load("unsafe-handler.mjs");
    delete process.env.ORDERQ_INBOX_URL;
    const before = await readStock(db.server.url);
    const order = anOrder("unsafe-1");
    // The first delivery wrote its effects outside the transaction, then died before the commit.
    await deliver(unsafe, order, "ROLLBACK");
    await deliver(unsafe, order, "COMMIT");

    const tables = await readEffects(db.server.url);
    assert.equal(tables.orders.filter((o) => o.orderId === order.id).length, 1, "the row looks idempotent (ON CONFLICT DO NOTHING)");
    const r = checkEffects({ ...only(tables, order.id), stockBefore: before, stockAfter: tables.stock, accepted: [order.id] });
    assert.equal(r.valid, false);
    // Named under the order that took its items twice, and under each SKU whose stock went down too far.
    assert.deepEqual(r.categories.duplicatedEffects.ids, [order.id, "stock:mug-330", "stock:new-unsafe-1", "stock:tea-077"]);
    assert.deepEqual(r.movements, [
      { orderId: order.id, sku: "mug-330", expected: 3, actual: 6 },
      { orderId: order.id, sku: "new-unsafe-1", expected: 3, actual: 6 },
      { orderId: order.id, sku: "tea-077", expected: 1, actual: 2 },
    ]);
    assert.deepEqual(r.stock, [
      { sku: "mug-330", expected: 3, actual: 6 },
      { sku: "new-unsafe-1", expected: 3, actual: 6 },
      { sku: "tea-077", expected: 1, actual: 2 },
    ]);
  });
});
