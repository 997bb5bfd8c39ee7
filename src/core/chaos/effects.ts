/**
 * The effect checker: a pure function from the inbox, the example's tables (examples/postgres-orders:
 * `orders`, each order's `stock_movements`, and the `stock` view, their sums per SKU) and the accepted
 * ids to a verdict on the handler's effects. The ledger checker proves each order was committed once;
 * this one proves what the handler changed matches, in three ways:
 * - per order, its row: one `orders` row per committed order, none for any other;
 * - per order, its stock movements: a committed order took exactly its items' units of each SKU, and
 *   an order not committed took none. So an order whose movements were applied twice and another's
 *   that were lost are both named, even when they cancel out in an SKU's sum;
 * - per SKU, the sum: stock down by exactly the committed orders' items, which also catches movements
 *   without an order id and whatever the per-order checks cannot see.
 * Reading the tables is effects-reader.ts.
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

/** An order's stock movements for one SKU, summed: the units it took out of stock (negative: put back). */
export interface OrderMovement {
  orderId: string;
  sku: string;
  taken: number;
}

/** A row of the example's `stock` view: units on hand, the sum of the SKU's movements (negative: backordered). */
export interface StockLevel {
  sku: string;
  onHand: number;
}

export interface EffectsInput {
  inbox: readonly InboxOutcome[];
  orders: readonly OrderEffect[];
  /** Every order's movements (rows of `stock_movements` with an order id), one per (order, SKU). */
  movements: readonly OrderMovement[];
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

/** One SKU of an order whose units taken differ from its items: the per-order counterpart of StockDrift. */
export interface MovementDrift {
  orderId: string;
  sku: string;
  /** Units of the SKU the order's `orders` row lists (0 for an order that is not committed). */
  expected: number;
  /** Units of the SKU its movements took. */
  actual: number;
}

export interface EffectsResult {
  /** No lost, duplicated or unexpected effect. */
  valid: boolean;
  /**
   * Each order id is in at most one category, decided in this order:
   * - not committed (dead-lettered, or never processed), with a row or any movement:
   *   `unexpectedEffects`; accepted, never dead-lettered, and neither: `lostEffects`;
   * - committed without a row: `lostEffects`; with several rows: `duplicatedEffects` (the row decides
   *   first: without exactly one row the order's items, and so its movements' due, are unknown);
   * - committed with one row: its movements against its items, per SKU. More units taken of some SKU:
   *   `duplicatedEffects` (even if another SKU fell short; `movements` has the figures); fewer units
   *   (or no movement at all): `lostEffects`; exactly its items: `ok`.
   * An SKU whose stock drifted is counted too, as `stock:<sku>`: down by more than expected in
   * `duplicatedEffects`, by less in `lostEffects`. So an order whose movements were applied twice
   * is in `duplicatedEffects` with its SKUs beside it, unless another order's loss cancels them out.
   * Up to SAMPLE_SIZE ids each, sorted.
   */
  categories: Record<EffectCategory, CategoryResult>;
  /** Committed orders (inbox rows with outcome committed). */
  committed: number;
  /** Every drifting SKU with its figures, sorted by SKU. */
  stock: StockDrift[];
  /**
   * The drifting SKUs of the first SAMPLE_SIZE orders (by id) whose movements differ from their items:
   * committed orders with one row, and orders not committed that took units. Sorted by order, then SKU.
   */
  movements: MovementDrift[];
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
  const taken = new Map<string, Map<string, number>>();
  for (const m of input.movements) {
    const bySku = taken.get(m.orderId) ?? new Map<string, number>();
    taken.set(m.orderId, bySku.set(m.sku, (bySku.get(m.sku) ?? 0) + m.taken));
  }
  const accepted = new Set(input.accepted);

  const movements: MovementDrift[] = [];
  let drifting = 0; // orders with a movement drift, of which the first SAMPLE_SIZE are listed
  const ids = [...new Set([...committed, ...deadLettered, ...rows.keys(), ...taken.keys(), ...accepted])].sort();
  for (const id of ids) {
    const n = rows.get(id)?.length ?? 0;
    let category: EffectCategory | undefined;
    let drift: MovementDrift[] = [];
    if (committed.has(id) && n === 1) {
      drift = movementDrift(id, unitsPerSku(rows.get(id)![0].items), taken.get(id));
      category = drift.some((d) => d.actual > d.expected) ? "duplicatedEffects" : drift.length ? "lostEffects" : "ok";
    } else if (committed.has(id)) category = n === 0 ? "lostEffects" : "duplicatedEffects";
    else if (n > 0 || taken.has(id)) {
      drift = movementDrift(id, new Map(), taken.get(id));
      category = "unexpectedEffects";
    }
    // Accepted, neither committed nor dead-lettered: its effects never happened (the ledger checker
    // reports the order itself as lost).
    else if (accepted.has(id) && !deadLettered.has(id)) category = "lostEffects";
    if (drift.length && drifting++ < SAMPLE_SIZE) movements.push(...drift);
    if (category) put(category, id);
  }

  const stock = stockDrift(input, committed, rows);
  for (const drift of stock) put(drift.actual > drift.expected ? "duplicatedEffects" : "lostEffects", stockId(drift.sku));

  const valid = categories.lostEffects.count + categories.duplicatedEffects.count + categories.unexpectedEffects.count === 0;
  return { valid, categories, committed: committed.size, stock, movements };
}

/** Units per SKU of an order's items (an order may list one SKU twice). */
function unitsPerSku(items: OrderEffect["items"]): Map<string, number> {
  const units = new Map<string, number>();
  for (const item of items) units.set(item.sku, (units.get(item.sku) ?? 0) + item.qty);
  return units;
}

/** The SKUs where an order's units taken differ from `expected` (its items), sorted by SKU. */
function movementDrift(orderId: string, expected: Map<string, number>, taken: Map<string, number> = new Map()): MovementDrift[] {
  const skus = [...new Set([...expected.keys(), ...taken.keys()])].sort();
  return skus.map((sku) => ({ orderId, sku, expected: expected.get(sku) ?? 0, actual: taken.get(sku) ?? 0 })).filter((d) => d.expected !== d.actual);
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
