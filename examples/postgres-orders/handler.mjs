/**
 * Stores an order and takes its items out of stock (appends its stock movements), inside orderq's
 * inbox transaction.
 *
 * Run it with `orderq work --handler ./handler.mjs --inbox postgres://…`. orderq opens a transaction,
 * inserts the order's inbox row, calls this function with `ctx.db` (that transaction's `pg` client),
 * then commits and acks. So the `orders` row, the stock change and the inbox row commit together or
 * not at all: a redelivered order finds its inbox row and never reaches this code again, and a crash
 * before the commit leaves no trace here. Write only through `ctx.db`: a write on another connection
 * is outside the transaction (see unsafe-handler.mjs for what that costs).
 *
 * `order`: { id, source, items: [{ sku, qty, price }], amount, createdAt }.
 * `ctx`: { attempt, idempotencyKey, signal, log, db }.
 * A throw is a failed attempt (retried with backoff; `NonRetryableError` from "orderq" sends the order to
 * the DLQ at once); orderq rolls the transaction back either way.
 */

// One round trip: the insert feeds the stock movements through RETURNING, one row per SKU (an order
// may list one SKU twice). Movements are only ever appended, never updated: no two orders contend for
// a row, so orders for the same SKUs run side by side and many can commit in one transaction. An SKU
// missing from stock simply goes negative (a backorder).
const STORE_ORDER = `
WITH stored AS (
  INSERT INTO orders (id, source, items, amount, created_at)
  VALUES ($1, $2, $3::jsonb, $4, $5)
  RETURNING id, items
)
INSERT INTO stock_movements (order_id, sku, qty)
SELECT stored.id, item->>'sku', -sum((item->>'qty')::bigint)
FROM stored, jsonb_array_elements(stored.items) AS item
GROUP BY stored.id, item->>'sku'`;

export default async function storeOrder(order, ctx) {
  await ctx.db.query({
    // A named statement is prepared: PostgreSQL parses and plans it once per connection instead of
    // for every order, and planning this statement costs more than running it.
    name: "store_order",
    text: STORE_ORDER,
    // items as JSON text: pg would send a JS array as a PostgreSQL array, not as jsonb.
    values: [order.id, order.source, JSON.stringify(order.items), order.amount, order.createdAt],
  });
}
