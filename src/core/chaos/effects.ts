/**
 * The effect checker: a pure function from the inbox, the example's `orders` table and `stock` view
 * (the sums of its append-only `stock_movements`) and the accepted ids to a verdict on the handler's effects (examples/postgres-orders). The ledger
 * checker proves each order was committed once; this one proves what the handler changed matches:
 * one `orders` row per committed order, none for any other, and stock down by exactly the committed
 * orders' items. Reading the tables is effects-reader.ts.
 */
import { SAMPLE_SIZE, type CategoryResult } from "./checker.js";

/** An inbox row, reduced to what decides whether an order's effects must exist. */
export interface InboxOutcome {
  orderId: string;
  outcome: "committed" | "dead-lettered";
}

/** A row of the example's `orders` table: the order id and its items (units per SKU). */
export interface OrderEffect {
  orderId: string;
  items: readonly { sku: string; qty: number }[];
}

/** A row of the example's `stock` view: units on hand, the sum of the SKU's movements (negative: backordered). */
export interface StockLevel {
  sku: string;
  onHand: number;
}

export interface EffectsInput {
  inbox: readonly InboxOutcome[];
  orders: readonly OrderEffect[];
  /** `stock` before the run (after the schema's seed) and after it; an SKU absent from one is at 0 there. */
  stockBefore: readonly StockLevel[];
  stockAfter: readonly StockLevel[];
  /** Ids with a PubAck, from the producers' history. */
  accepted: Iterable<string>;
}

export const EFFECT_CATEGORIES = ["ok", "lostEffects", "duplicatedEffects", "unexpectedEffects"] as const;
export type EffectCategory = (typeof EFFECT_CATEGORIES)[number];

/** An SKU whose stock went down by other than the committed orders' units. */
export interface StockDrift {
  sku: string;
  /** Units the committed orders' `orders` rows list for the SKU. */
  expected: number;
  /** Units the SKU went down by: before − after. */
  actual: number;
}

export interface EffectsResult {
  /** No lost, duplicated or unexpected effect. */
  valid: boolean;
  /**
   * Each order id is in at most one category: `ok` (committed, one row); `lostEffects` (committed or
   * accepted-and-never-dead-lettered, yet no row); `duplicatedEffects` (committed, several rows);
   * `unexpectedEffects` (a row for an order not committed: dead-lettered, or never processed). An
   * SKU whose stock drifted is counted too, as `stock:<sku>`: down by more than expected in
   * `duplicatedEffects`, by less in `lostEffects`. Up to SAMPLE_SIZE ids each, sorted.
   */
  categories: Record<EffectCategory, CategoryResult>;
  /** Committed orders (inbox rows with outcome committed). */
  committed: number;
  /** Every drifting SKU with its figures, sorted by SKU. */
  stock: StockDrift[];
}

/** The id an SKU's finding is reported under; order ids cannot contain ':'. */
export const stockId = (sku: string): string => `stock:${sku}`;

/** Checks the handler's effects against the inbox; see EffectsResult for the categories. Never throws. */
export function checkEffects(input: EffectsInput): EffectsResult {
  const categories = Object.fromEntries(EFFECT_CATEGORIES.map((c) => [c, { count: 0, ids: [] as string[] }])) as Record<
    EffectCategory,
    CategoryResult
  >;
  const put = (category: EffectCategory, id: string) => {
    const bucket = categories[category];
    bucket.count++;
    if (bucket.ids.length < SAMPLE_SIZE) bucket.ids.push(id);
  };

  const committed = new Set<string>();
  const deadLettered = new Set<string>();
  for (const row of input.inbox) (row.outcome === "committed" ? committed : deadLettered).add(row.orderId);
  const rows = new Map<string, OrderEffect[]>();
  for (const row of input.orders) rows.set(row.orderId, [...(rows.get(row.orderId) ?? []), row]);
  const accepted = new Set(input.accepted);

  const ids = [...new Set([...committed, ...deadLettered, ...rows.keys(), ...accepted])].sort();
  for (const id of ids) {
    const n = rows.get(id)?.length ?? 0;
    if (committed.has(id)) put(n === 0 ? "lostEffects" : n > 1 ? "duplicatedEffects" : "ok", id);
    else if (n > 0) put("unexpectedEffects", id);
    // Accepted, neither committed nor dead-lettered: its effects never happened (the ledger checker
    // reports the order itself as lost).
    else if (accepted.has(id) && !deadLettered.has(id)) put("lostEffects", id);
  }

  const stock = stockDrift(input, committed, rows);
  for (const drift of stock) put(drift.actual > drift.expected ? "duplicatedEffects" : "lostEffects", stockId(drift.sku));

  const valid = categories.lostEffects.count + categories.duplicatedEffects.count + categories.unexpectedEffects.count === 0;
  return { valid, categories, committed: committed.size, stock };
}

/**
 * Expected: each committed order's items counted once (from its first row; a missing row is a lost
 * effect already, and its stock change cannot be known). Actual: before − after.
 */
function stockDrift(input: EffectsInput, committed: Set<string>, rows: Map<string, OrderEffect[]>): StockDrift[] {
  const expected = new Map<string, number>();
  for (const id of committed) {
    for (const item of rows.get(id)?.[0]?.items ?? []) expected.set(item.sku, (expected.get(item.sku) ?? 0) + item.qty);
  }
  const before = new Map(input.stockBefore.map((s) => [s.sku, s.onHand]));
  const after = new Map(input.stockAfter.map((s) => [s.sku, s.onHand]));
  const skus = [...new Set([...before.keys(), ...after.keys(), ...expected.keys()])].sort();
  return skus
    .map((sku) => ({ sku, expected: expected.get(sku) ?? 0, actual: (before.get(sku) ?? 0) - (after.get(sku) ?? 0) }))
    .filter((d) => d.expected !== d.actual);
}
