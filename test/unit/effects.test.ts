/**
 * The effect checker: a consistent state is valid, and one wrong effect of any kind is caught under its
 * own id — the order's, and for a stock change the SKU's too — including errors of two orders that
 * cancel out in an SKU's sum.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { SAMPLE_SIZE } from "../../src/core/chaos/checker.js";
import {
  checkEffects,
  EFFECT_CATEGORIES,
  stockId,
  type EffectCategory,
  type EffectsInput,
  type OrderEffect,
  type OrderMovement,
  type StockLevel,
} from "../../src/core/chaos/effects.js";

const RUNS = Number(process.env.ORDERQ_PROPERTY_RUNS ?? 300);

type Items = OrderEffect["items"];

/** A few known SKUs (seeded in stock) and unknown ones (absent before the run, so they go negative). */
const sku = fc.constantFrom("book-001", "mug-330", "tea-077", "new-1", "new-2");
const items: fc.Arbitrary<Items> = fc.array(fc.record({ sku, qty: fc.integer({ min: 1, max: 4 }) }), { minLength: 1, maxLength: 3 });

interface Order {
  id: string;
  items: Items;
  accepted: boolean;
}

/**
 * A run the handler got right: committed orders (accepted or recovered from an indeterminate publish)
 * have one row each and took their items out of stock, one movement per SKU (as handler.mjs writes
 * them); dead-lettered ones and ones never stored left nothing. At least one order of each fate, so every mutation has something to act on.
 */
interface World {
  committed: Order[];
  deadLettered: Order[];
  notStored: Order[];
  stockBefore: StockLevel[];
}

const order = (prefix: string) =>
  fc.record({ n: fc.nat(), items, accepted: fc.boolean() }).map(({ n, items, accepted }) => ({ id: `${prefix}${n}`, items, accepted }));
const orders = (prefix: string) => fc.uniqueArray(order(prefix), { minLength: 1, maxLength: 12, selector: (o) => o.id });

const world: fc.Arbitrary<World> = fc.record({
  committed: orders("c"),
  deadLettered: orders("d"),
  notStored: orders("n").map((os) => os.map((o) => ({ ...o, accepted: false }))),
  stockBefore: fc.uniqueArray(fc.record({ sku: fc.constantFrom("book-001", "mug-330", "tea-077"), onHand: fc.integer({ min: -50, max: 1_000 }) }), {
    selector: (s) => s.sku,
  }),
});

const skusOf = (what: Items) => [...new Set(what.map((i) => i.sku))];

/** `stock` with each item's qty taken out `times` times (negative: put back); a copy. */
function take(stock: readonly StockLevel[], what: Items, times = 1): StockLevel[] {
  const out = new Map(stock.map((s) => [s.sku, s.onHand]));
  for (const item of what) out.set(item.sku, (out.get(item.sku) ?? 0) - item.qty * times);
  return [...out].map(([sku, onHand]) => ({ sku, onHand }));
}

/** An order's stock movements as handler.mjs appends them: one per SKU, its units summed, `times` over. */
function movementsOf(o: { id: string; items: Items }, times = 1): OrderMovement[] {
  return skusOf(o.items).map((sku) => ({
    orderId: o.id,
    sku,
    taken: times * o.items.filter((i) => i.sku === sku).reduce((n, i) => n + i.qty, 0),
  }));
}

function consistent(w: World): EffectsInput {
  return {
    inbox: [
      ...w.committed.map((o) => ({ orderId: o.id, outcome: "committed" as const })),
      ...w.deadLettered.map((o) => ({ orderId: o.id, outcome: "dead-lettered" as const })),
    ],
    orders: w.committed.map((o) => ({ orderId: o.id, items: o.items })),
    movements: w.committed.flatMap((o) => movementsOf(o)),
    stockBefore: w.stockBefore,
    stockAfter: take(
      w.stockBefore,
      w.committed.flatMap((o) => o.items),
    ),
    accepted: [...w.committed, ...w.deadLettered].filter((o) => o.accepted).map((o) => o.id),
  };
}

/** The categories an id is found in. */
function whereIs(result: ReturnType<typeof checkEffects>, id: string): EffectCategory[] {
  return EFFECT_CATEGORIES.filter((c) => result.categories[c].ids.includes(id));
}

describe("effect checker", () => {
  it("finds a consistent state valid: every committed order ok, nothing else reported", () => {
    fc.assert(
      fc.property(world, (w) => {
        const r = checkEffects(consistent(w));
        assert.equal(r.valid, true, JSON.stringify(r));
        assert.equal(r.categories.ok.count, w.committed.length);
        assert.equal(r.committed, w.committed.length);
        assert.deepEqual(r.stock, []);
        assert.deepEqual(r.movements, []);
      }),
      { numRuns: RUNS },
    );
  });

  it("catches one injected wrong effect, every time, under the right ids and nothing else (negative control)", () => {
    const mutation = fc.constantFrom(
      "duplicate-row",
      "movements-twice",
      "lose-effect",
      "lose-movements",
      "cancel-in-sku-sum",
      "unexpected-row",
      "unexpected-movements",
      "never-processed",
    );
    fc.assert(
      fc.property(world, mutation, fc.nat(), (w, kind, pick) => {
        const input = consistent(w);
        const c = w.committed[pick % w.committed.length];
        const other = [...w.deadLettered, ...w.notStored][pick % (w.deadLettered.length + w.notStored.length)];
        const stockIds = (o: { items: Items }, category: EffectCategory) =>
          skusOf(o.items).map((s): [string, EffectCategory] => [stockId(s), category]);
        const withoutMovementsOf = (id: string) => input.movements.filter((m) => m.orderId !== id);
        let expected: [string, EffectCategory][];
        switch (kind) {
          case "duplicate-row": // a second row and a second set of movements for one committed order
            input.orders = [...input.orders, { orderId: c.id, items: c.items }];
            input.movements = [...input.movements, ...movementsOf(c)];
            input.stockAfter = take(input.stockAfter, c.items);
            expected = [[c.id, "duplicatedEffects"], ...stockIds(c, "duplicatedEffects")];
            break;
          case "movements-twice": // the unsafe handler run twice: the row once (ON CONFLICT DO NOTHING), its movements twice
            input.movements = [...input.movements, ...movementsOf(c)];
            input.stockAfter = take(input.stockAfter, c.items);
            expected = [[c.id, "duplicatedEffects"], ...stockIds(c, "duplicatedEffects")];
            break;
          case "lose-effect": // committed in the inbox, yet neither its row nor its movements happened
            input.orders = input.orders.filter((o) => o.orderId !== c.id);
            input.movements = withoutMovementsOf(c.id);
            input.stockAfter = take(input.stockAfter, c.items, -1);
            expected = [[c.id, "lostEffects"]];
            break;
          case "lose-movements": // the row is there, its movements are not
            input.movements = withoutMovementsOf(c.id);
            input.stockAfter = take(input.stockAfter, c.items, -1);
            expected = [[c.id, "lostEffects"], ...stockIds(c, "lostEffects")];
            break;
          case "cancel-in-sku-sum": {
            // One order's movements applied twice, and a committed twin with the same items whose
            // movements were lost: every SKU's sum is right. The per-SKU checker alone (before the
            // movements were read per order) found this valid; both orders are named now.
            const twin = { id: `t${c.id}`, items: c.items };
            input.inbox = [...input.inbox, { orderId: twin.id, outcome: "committed" }];
            input.orders = [...input.orders, { orderId: twin.id, items: twin.items }];
            input.accepted = [...input.accepted, twin.id];
            input.movements = [...input.movements, ...movementsOf(c)];
            input.stockAfter = take(input.stockAfter, c.items); // c's second movements; the twin's never left stock
            expected = [
              [c.id, "duplicatedEffects"],
              [twin.id, "lostEffects"],
            ];
            break;
          }
          case "unexpected-row": // a row and movements of an order that was dead-lettered or never stored
            input.orders = [...input.orders, { orderId: other.id, items: other.items }];
            input.movements = [...input.movements, ...movementsOf(other)];
            input.stockAfter = take(input.stockAfter, other.items);
            expected = [[other.id, "unexpectedEffects"], ...stockIds(other, "duplicatedEffects")];
            break;
          case "unexpected-movements": // movements alone (no row) of an order that was dead-lettered or never stored
            input.movements = [...input.movements, ...movementsOf(other)];
            input.stockAfter = take(input.stockAfter, other.items);
            expected = [[other.id, "unexpectedEffects"], ...stockIds(other, "duplicatedEffects")];
            break;
          case "never-processed": // accepted, then neither committed nor dead-lettered: no effect ever
            input.accepted = [...input.accepted, "lost-1"];
            expected = [["lost-1", "lostEffects"]];
            break;
        }
        const r = checkEffects(input);
        assert.equal(r.valid, false, kind);
        for (const [id, category] of expected) assert.deepEqual(whereIs(r, id), [category], `${kind}: ${id}`);
        const reported = EFFECT_CATEGORIES.filter((cat) => cat !== "ok").reduce((n, cat) => n + r.categories[cat].count, 0);
        assert.equal(reported, expected.length, `${kind}: nothing else is reported`);
      }),
      { numRuns: RUNS },
    );
  });

  it("two orders' errors cancelling in an SKU's sum: the sums match, yet both orders are named", () => {
    // The per-SKU check alone, before movements were read per order, called this run valid.
    const items = [{ sku: "mug-330", qty: 2 }];
    const r = checkEffects({
      inbox: [
        { orderId: "a", outcome: "committed" },
        { orderId: "b", outcome: "committed" },
      ],
      orders: [
        { orderId: "a", items },
        { orderId: "b", items },
      ],
      movements: [
        { orderId: "a", sku: "mug-330", taken: 2 },
        { orderId: "a", sku: "mug-330", taken: 2 }, // a's movements applied twice; b's lost
      ],
      stockBefore: [{ sku: "mug-330", onHand: 10 }],
      stockAfter: [{ sku: "mug-330", onHand: 6 }],
      accepted: ["a", "b"],
    });
    assert.deepEqual(r.stock, [], "stock went down by exactly the committed items");
    assert.equal(r.valid, false);
    assert.deepEqual(r.categories.duplicatedEffects, { count: 1, ids: ["a"] });
    assert.deepEqual(r.categories.lostEffects, { count: 1, ids: ["b"] });
    assert.deepEqual(r.movements, [
      { orderId: "a", sku: "mug-330", expected: 2, actual: 4 },
      { orderId: "b", sku: "mug-330", expected: 2, actual: 0 },
    ]);
  });

  it("an order that took too many of one SKU and too few of another is duplicated (more beats fewer); one category per id", () => {
    const r = checkEffects({
      inbox: [{ orderId: "a", outcome: "committed" }],
      orders: [
        {
          orderId: "a",
          items: [
            { sku: "mug-330", qty: 1 },
            { sku: "tea-077", qty: 2 },
          ],
        },
      ],
      movements: [
        { orderId: "a", sku: "mug-330", taken: 2 },
        { orderId: "a", sku: "tea-077", taken: 1 },
      ],
      stockBefore: [],
      stockAfter: [
        { sku: "mug-330", onHand: -2 },
        { sku: "tea-077", onHand: -1 },
      ],
      accepted: ["a"],
    });
    assert.deepEqual(r.categories.duplicatedEffects, { count: 2, ids: ["a", "stock:mug-330"] });
    assert.deepEqual(r.categories.lostEffects, { count: 1, ids: ["stock:tea-077"] });
    assert.deepEqual(
      r.movements.map((d) => [d.sku, d.expected, d.actual]),
      [
        ["mug-330", 1, 2],
        ["tea-077", 2, 1],
      ],
    );
  });

  it("lists the movement drift of the first SAMPLE_SIZE drifting orders only, by order id", () => {
    const ids = Array.from({ length: SAMPLE_SIZE + 5 }, (_, i) => `o${String(i).padStart(3, "0")}`);
    const r = checkEffects({
      inbox: ids.map((orderId) => ({ orderId, outcome: "committed" as const })),
      orders: ids.map((orderId) => ({ orderId, items: [{ sku: "mug-330", qty: 1 }] })),
      movements: [],
      stockBefore: [],
      stockAfter: [],
      accepted: ids,
    });
    assert.equal(r.categories.lostEffects.count, ids.length + 1, "every order, and stock:mug-330");
    assert.deepEqual(
      r.movements.map((d) => d.orderId),
      ids.slice(0, SAMPLE_SIZE),
    );
  });

  it("reports stock drift with its figures, unknown SKUs counting from 0: movements without an order id", () => {
    const r = checkEffects({
      inbox: [{ orderId: "a", outcome: "committed" }],
      orders: [
        {
          orderId: "a",
          items: [
            { sku: "mug-330", qty: 2 },
            { sku: "new-1", qty: 1 },
            { sku: "mug-330", qty: 1 },
          ],
        },
      ],
      // Its movements are right: the extra 3 mugs left stock without an order id.
      movements: [
        { orderId: "a", sku: "mug-330", taken: 3 },
        { orderId: "a", sku: "new-1", taken: 1 },
      ],
      stockBefore: [{ sku: "mug-330", onHand: 10 }],
      stockAfter: [
        { sku: "mug-330", onHand: 4 },
        { sku: "new-1", onHand: -1 },
      ],
      accepted: ["a"],
    });
    assert.deepEqual(r.stock, [{ sku: "mug-330", expected: 3, actual: 6 }]);
    assert.deepEqual(r.movements, []);
    assert.deepEqual(r.categories.duplicatedEffects, { count: 1, ids: ["stock:mug-330"] });
    assert.deepEqual(r.categories.ok, { count: 1, ids: ["a"] });
    assert.equal(r.valid, false);
  });
});
