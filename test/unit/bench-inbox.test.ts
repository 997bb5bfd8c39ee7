/** `orderq bench --inbox`: its verdict, window and summary from made-up rows and phases, no database. */
import assert from "node:assert/strict";
import { checkEffects } from "../../src/core/chaos/effects.js";
import { steadyWindowOf } from "../../src/core/bench/commits.js";
import { verifyInbox } from "../../src/core/bench/inbox.js";
import { checkTargets, summarize } from "../../src/core/bench/summary.js";
import type { PhaseName, PhaseResult, RunResult } from "../../src/core/bench/types.js";

const ok = { ok: true, detail: "", expected: 1, lost: 0, duplicated: 0, unexpected: 0 };

function phaseOf(phase: PhaseName, rate: number, cpu: PhaseResult["cpu"] = { clientSeconds: 1, serverSeconds: 0.5 }): PhaseResult {
  return {
    phase,
    count: rate,
    elapsedMs: 1000,
    rate,
    window: "",
    cpu,
    verification: ok,
    latency: { samples: 1, p50Ms: 1, p90Ms: 1, p99Ms: 1, p999Ms: 1, maxMs: 1, meanMs: 1 },
  };
}

function run(n: number, inbox?: { floor: number; work: number }): RunResult {
  const core = (["publish", "consume", "floor", "produce", "work", "latency"] as const).map((p) => phaseOf(p, 1000));
  const extra = inbox
    ? [
        phaseOf("inbox-floor", inbox.floor, { clientSeconds: 0.2, serverSeconds: 0.1, databaseSeconds: 0.3 }),
        phaseOf("inbox-work", inbox.work, { clientSeconds: 0.4, serverSeconds: 0.1, databaseSeconds: 0.6 }),
      ]
    : [];
  return { run: n, phases: [...core, ...extra], verified: true };
}

describe("bench --inbox: verdict, window and summary", () => {
  const items = (sku: string, qty: number) => [{ sku, qty }];
  const stockBefore = [{ sku: "mug", onHand: 100 }];

  it("verifyInbox passes every order committed once with its effects, and says so", () => {
    const rows = [
      { orderId: "a", outcome: "committed" as const },
      { orderId: "b", outcome: "committed" as const },
    ];
    const effects = checkEffects({
      inbox: rows,
      orders: [
        { orderId: "a", items: items("mug", 2) },
        { orderId: "b", items: items("mug", 1) },
      ],
      movements: [
        { orderId: "a", sku: "mug", taken: 2 },
        { orderId: "b", sku: "mug", taken: 1 },
      ],
      stockBefore,
      stockAfter: [{ sku: "mug", onHand: 97 }],
      accepted: ["a", "b"],
    });
    const v = verifyInbox(rows, ["a", "b"], 0, effects);
    assert.equal(v.ok, true, v.detail);
    assert.equal(
      v.detail,
      "2 committed, 0 lost, 0 unexpected; effects: 2 orders once (row and stock movements), 0 lost, 0 duplicated, 0 unexpected, stock down by exactly the committed items",
    );
  });

  it("verifyInbox fails a lost order, a row nobody sent, a dead-lettered order and an order's doubled stock change", () => {
    const rows = [
      { orderId: "a", outcome: "committed" as const },
      { orderId: "b", outcome: "dead-lettered" as const },
      { orderId: "z", outcome: "committed" as const },
    ];
    const orders = [
      { orderId: "a", items: items("mug", 2) },
      { orderId: "z", items: items("mug", 1) },
    ];
    // a's movements applied twice: stock went down by 5, the committed items are 3.
    const movements = [
      { orderId: "a", sku: "mug", taken: 4 },
      { orderId: "z", sku: "mug", taken: 1 },
    ];
    const effects = checkEffects({
      inbox: rows,
      orders,
      movements,
      stockBefore,
      stockAfter: [{ sku: "mug", onHand: 95 }],
      accepted: ["a", "b", "c"],
    });
    const v = verifyInbox(rows, ["a", "b", "c"], 2, effects);
    assert.equal(v.ok, false);
    assert.deepEqual([v.expected, v.lost, v.unexpected, v.duplicated], [3, 2, 1, 2], v.detail); // b, c lost; z unexpected; a and stock:mug doubled
    assert.match(
      v.detail,
      /1 dead-lettered, 2 left unacked in the stream; .*; order drift: a took 4 mug, expected 2; stock drift: mug down 5, expected 3$/,
    );
  });

  it("verifyInbox names the first three drifting SKUs of the orders and of stock, and counts what is left", () => {
    const rows = [{ orderId: "a", outcome: "committed" as const }];
    const skus = ["a1", "a2", "a3", "a4", "a5"];
    const orders = [{ orderId: "a", items: skus.map((sku) => ({ sku, qty: 1 })) }];
    const effects = checkEffects({ inbox: rows, orders, movements: [], stockBefore: [], stockAfter: [], accepted: ["a"] });
    assert.match(
      verifyInbox(rows, ["a"], 0, effects).detail,
      /; order drift: a took 0 a1, expected 1; a took 0 a2, expected 1; a took 0 a3, expected 1; 2 more; stock drift: a1 down 0, expected 1; a2 down 0, expected 1; a3 down 0, expected 1; 2 more SKUs$/,
    );
  });

  it("verifyInbox fails an order whose inbox row committed without its effect", () => {
    const rows = [{ orderId: "a", outcome: "committed" as const }];
    const effects = checkEffects({ inbox: rows, orders: [], movements: [], stockBefore, stockAfter: stockBefore, accepted: ["a"] });
    const v = verifyInbox(rows, ["a"], 0, effects);
    assert.equal(v.ok, false);
    assert.match(v.detail, /effects: 0 orders once \(row and stock movements\), 1 lost/);
  });

  it("times the inbox work phase from every worker's first commit to the last", () => {
    const commits = [
      { worker: "w1", time: 1000 },
      { worker: "w1", time: 1100 },
      { worker: "w2", time: 1200 },
      { worker: "w1", time: 1200 }, // a batch: one commit time for several orders
      { worker: "w2", time: 1800 },
    ];
    assert.deepEqual(steadyWindowOf(commits), { t0: 1200, t1: 1800, count: 1 });
    assert.deepEqual(steadyWindowOf([]), { t0: 0, t1: 0, count: 0 });
  });

  it("summarizes the inbox phases only when every run has them, with the ratio of each run and CPU per order", () => {
    assert.equal(summarize([run(1)]).inbox, undefined);
    assert.equal(checkTargets(summarize([run(1)]), { rate: 2000, concurrency: 256 }).length, 8, "issue 7's five and issue 13's three");
    assert.equal(summarize([run(1, { floor: 1000, work: 500 }), run(2)]).inbox, undefined, "a run without them: no inbox figures");

    const s = summarize([run(1, { floor: 1000, work: 900 }), run(2, { floor: 2000, work: 1000 }), run(3, { floor: 1000, work: 700 })]);
    const inbox = s.inbox!;
    assert.deepEqual(inbox.rates, { "inbox-floor": 1000, "inbox-work": 900 });
    assert.equal(inbox.workToFloor, 0.7, "median of 0.9, 0.5 and 0.7: each run's own ratio");
    assert.deepEqual(inbox.cpu["inbox-work"], { clientSeconds: 0.4, serverSeconds: 0.1, databaseSeconds: 0.6 });
    // 0.4 s of worker CPU over 900, 1000 and 700 orders: 444, 400 and 571 µs; the median is 444.
    assert.deepEqual(inbox.cpuPerOrderUs["inbox-work"], { client: 444, server: 111, database: 667 });
    assert.equal(s.cpu.work.databaseSeconds, undefined, "no database CPU for the phases without one");

    const targets = checkTargets(s, { rate: 2000, concurrency: 256 });
    assert.deepEqual(targets.slice(8), [
      { target: "inbox work ≥ 0.8 × inbox floor", measured: "0.7 ×", met: false },
      { target: "inbox work (example handler) ≥ 8,000 orders/s", measured: "900/s", met: false },
    ]);
  });
});
