/**
 * Reads what the effect checker (effects.ts) needs from the inbox database: the inbox and the example's
 * tables (examples/postgres-orders/schema.sql: `orders`, `stock_movements`, the `stock` view).
 */
import pg from "pg";
import { EnvironmentError, errorMessage } from "../base/errors.js";
import type { InboxOutcome, OrderEffect, OrderMovement, StockLevel } from "./effects.js";

/** The inbox table the checker reads by default; its `order_id` and `outcome` columns are read. */
export const DEFAULT_INBOX_TABLE = "orderq_inbox";

/** One consistent snapshot of the tables. */
export interface EffectTables {
  inbox: InboxOutcome[];
  orders: OrderEffect[];
  /** Units taken per (order, SKU): the movements with an order id, summed. */
  movements: OrderMovement[];
  stock: StockLevel[];
}

/**
 * Reads the inbox, `orders`, each order's `stock_movements` and `stock` in one read-only
 * repeatable-read transaction (one snapshot), so a straggling commit cannot fall between two reads. Call it once the system is quiet.
 * @throws EnvironmentError (exit 3) when the database cannot be reached or a table is missing.
 */
export async function readEffects(pgUrl: string, options: { inboxTable?: string } = {}): Promise<EffectTables> {
  const inboxTable = pg.escapeIdentifier(options.inboxTable ?? DEFAULT_INBOX_TABLE);
  return withSnapshot(pgUrl, async (client) => {
    const inbox = await client.query<{ order_id: string; outcome: InboxOutcome["outcome"] }>(`SELECT order_id, outcome FROM ${inboxTable}`);
    const orders = await client.query<{ id: string; items: unknown }>("SELECT id, items FROM orders");
    // Units out are negative movements; bigint arrives as text, and no order takes near 2^53 units.
    const movements = await client.query<{ order_id: string; sku: string; taken: string }>(
      "SELECT order_id, sku, -sum(qty) AS taken FROM stock_movements WHERE order_id IS NOT NULL GROUP BY order_id, sku",
    );
    return {
      inbox: inbox.rows.map((r) => ({ orderId: r.order_id, outcome: r.outcome })),
      orders: orders.rows.map((r) => ({ orderId: r.id, items: itemsOf(r.items) })),
      movements: movements.rows.map((r) => ({ orderId: r.order_id, sku: r.sku, taken: Number(r.taken) })),
      stock: await stockOf(client),
    };
  });
}

/**
 * Reads `stock` alone: the "before" of a run, taken after the schema is applied and before any order.
 * @throws EnvironmentError as readEffects().
 */
export async function readStock(pgUrl: string): Promise<StockLevel[]> {
  return withSnapshot(pgUrl, stockOf);
}

async function stockOf(client: pg.ClientBase): Promise<StockLevel[]> {
  // bigint arrives as text (it may exceed 2^53); stock levels never come near that.
  const { rows } = await client.query<{ sku: string; on_hand: string }>("SELECT sku, on_hand FROM stock");
  return rows.map((r) => ({ sku: r.sku, onHand: Number(r.on_hand) }));
}

/** `items` as the handler stored it; whatever else a row holds counts as no units (the checker then sees the drift). */
function itemsOf(items: unknown): OrderEffect["items"] {
  if (!Array.isArray(items)) return [];
  return items.map((i: { sku?: unknown; qty?: unknown }) => ({ sku: String(i?.sku), qty: Number(i?.qty) || 0 }));
}

async function withSnapshot<T>(pgUrl: string, read: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 5_000 });
  client.on("error", () => {}); // a connection cut mid-read also fails the query, which says so
  try {
    await client.connect();
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    return await read(client);
  } catch (err) {
    throw new EnvironmentError(`cannot read the effects from the inbox database: ${errorMessage(err)}`);
  } finally {
    await client.end().catch(() => {});
  }
}
