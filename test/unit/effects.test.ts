/** The effect checker: a consistent state is valid, and one wrong effect of any kind is caught under its own id. */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkEffects,
  EFFECT_CATEGORIES,
  stockId,
  type EffectCategory,
  type EffectsInput,
  type OrderEffect,
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
 * have one row each and took their items out of stock; dead-lettered ones and ones never stored left
 * nothing. At least one order of each fate, so every mutation has something to act on.
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

/** `stock` with each item's qty taken out `times` times (negative: put back); a copy. */
function take(stock: readonly StockLevel[], what: Items, times = 1): StockLevel[] {
  const out = new Map(stock.map((s) => [s.sku, s.onHand]));
  for (const item of what) out.set(item.sku, (out.get(item.sku) ?? 0) - item.qty * times);
  return [...out].map(([sku, onHand]) => ({ sku, onHand }));
}

function consistent(w: World): EffectsInput {
  return {
    inbox: [
      ...w.committed.map((o) => ({ orderId: o.id, outcome: "committed" as const })),
      ...w.deadLettered.map((o) => ({ orderId: o.id, outcome: "dead-lettered" as const })),
    ],
    orders: w.committed.map((o) => ({ orderId: o.id, items: o.items })),
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

const skusOf = (what: Items) => [...new Set(what.map((i) => i.sku))];

describe("effect checker", () => {
  it("finds a consistent state valid: every committed order ok, nothing else reported", () => {
    fc.assert(
      fc.property(world, (w) => {
        const r = checkEffects(consistent(w));
        assert.equal(r.valid, true, JSON.stringify(r));
        assert.equal(r.categories.ok.count, w.committed.length);
        assert.equal(r.committed, w.committed.length);
        assert.deepEqual(r.stock, []);
      }),
      { numRuns: RUNS },
    );
  });

  it("catches one injected wrong effect, every time, under the right id (negative control)", () => {
    const mutation = fc.constantFrom("duplicate-row", "redo-stock", "lose-effect", "lose-stock", "unexpected-row", "never-processed");
    fc.assert(
      fc.property(world, mutation, fc.nat(), (w, kind, pick) => {
        const input = consistent(w);
        const c = w.committed[pick % w.committed.length];
        const other = [...w.deadLettered, ...w.notStored][pick % (w.deadLettered.length + w.notStored.length)];
        let expected: [string, EffectCategory][];
        switch (kind) {
          case "duplicate-row": // a second row and a second stock change for one committed order
            input.orders = [...input.orders, { orderId: c.id, items: c.items }];
            input.stockAfter = take(input.stockAfter, c.items);
            expected = [[c.id, "duplicatedEffects"], ...skusOf(c.items).map((s): [string, EffectCategory] => [stockId(s), "duplicatedEffects"])];
            break;
          case "redo-stock": // the unsafe handler run twice: the row once (ON CONFLICT DO NOTHING), stock twice
            input.stockAfter = take(input.stockAfter, c.items);
            expected = [[c.id, "ok"], ...skusOf(c.items).map((s): [string, EffectCategory] => [stockId(s), "duplicatedEffects"])];
            break;
          case "lose-effect": // committed in the inbox, yet neither its row nor its stock change happened
            input.orders = input.orders.filter((o) => o.orderId !== c.id);
            input.stockAfter = take(input.stockAfter, c.items, -1);
            expected = [[c.id, "lostEffects"]];
            break;
          case "lose-stock": // the row is there, the stock change is not
            input.stockAfter = take(input.stockAfter, c.items, -1);
            expected = [[c.id, "ok"], ...skusOf(c.items).map((s): [string, EffectCategory] => [stockId(s), "lostEffects"])];
            break;
          case "unexpected-row": // effects of an order that was dead-lettered or never stored
            input.orders = [...input.orders, { orderId: other.id, items: other.items }];
            input.stockAfter = take(input.stockAfter, other.items);
            expected = [
              [other.id, "unexpectedEffects"],
              ...skusOf(other.items).map((s): [string, EffectCategory] => [stockId(s), "duplicatedEffects"]),
            ];
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
        assert.equal(reported, expected.filter(([, cat]) => cat !== "ok").length, `${kind}: nothing else is reported`);
      }),
      { numRuns: RUNS },
    );
  });

  it("reports stock drift with its figures, unknown SKUs counting from 0", () => {
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
      stockBefore: [{ sku: "mug-330", onHand: 10 }],
      stockAfter: [
        { sku: "mug-330", onHand: 4 },
        { sku: "new-1", onHand: -1 },
      ],
      accepted: ["a"],
    });
    assert.deepEqual(r.stock, [{ sku: "mug-330", expected: 3, actual: 6 }]);
    assert.deepEqual(r.categories.duplicatedEffects, { count: 1, ids: ["stock:mug-330"] });
    assert.deepEqual(r.categories.ok, { count: 1, ids: ["a"] });
    assert.equal(r.valid, false);
  });
});
