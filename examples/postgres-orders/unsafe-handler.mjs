/**
 * DELIBERATELY UNSAFE: the negative control of the chaos suite. Do not copy this one.
 *
 * It makes the same changes as handler.mjs, but on its own connection pool, outside orderq's inbox
 * transaction: each statement commits at once (autocommit). When a delivery dies after these writes
 * and before orderq's commit (worker killed, database restarted, lease lost), the order is delivered
 * again and runs again. The `orders` insert looks idempotent (ON CONFLICT DO NOTHING), but the stock
 * movements are not: the items leave stock twice. The effect checker must report duplicated effects.
 *
 * It connects to `$ORDERQ_INBOX_URL`, the database of the inbox (the worker sets it).
 */
import pg from "pg";

const url = process.env.ORDERQ_INBOX_URL;
if (!url) throw new Error("unsafe-handler.mjs needs ORDERQ_INBOX_URL (the inbox database's URL) in its environment");

// allowExitOnIdle: idle connections do not keep a draining worker process alive.
const pool = new pg.Pool({ connectionString: url, max: 8, allowExitOnIdle: true });
pool.on("error", () => {}); // an idle connection cut by a database restart; the next query reconnects

export default async function storeOrderUnsafely(order) {
  await pool.query("INSERT INTO orders (id, source, items, amount, created_at) VALUES ($1, $2, $3::jsonb, $4, $5) ON CONFLICT (id) DO NOTHING", [
    order.id,
    order.source,
    JSON.stringify(order.items),
    order.amount,
    order.createdAt,
  ]);
  await pool.query(
    `INSERT INTO stock_movements (order_id, sku, qty)
     SELECT $1, item->>'sku', -sum((item->>'qty')::bigint) FROM jsonb_array_elements($2::jsonb) AS item GROUP BY 2`,
    [order.id, JSON.stringify(order.items)],
  );
}
