/** The inbox as the checker's ledger: rows become ledger writes, and the checker sorts them like KV writes; the ids whose effects must exist. */
import assert from "node:assert/strict";
import { check } from "../../src/core/chaos/checker.js";
import { checkEffects } from "../../src/core/chaos/effects.js";
import { acceptedIds, inboxLedger } from "../../src/core/chaos/inbox-run.js";
import type { HistoryEvent } from "../../src/core/pipeline/history.js";
import type { Outcome } from "../../src/core/pipeline/outcome-store.js";

const outcome = (result: Outcome["result"], at: string, attempt = 1): Outcome => ({ result, worker: "w1", attempt, streamSeq: 1, at });

describe("chaos inbox run: the inbox as the ledger", () => {
  it("maps inbox rows to ledger writes in row order, with the outcome's time", () => {
    const rows = [
      { orderId: "a", outcome: outcome("committed", "2026-01-01T00:00:00.000Z") },
      { orderId: "p", outcome: { ...outcome("dead-lettered", "2026-01-01T00:00:01.500Z", 5), reason: "max-deliveries" as const } },
    ];
    const ledger = inboxLedger(rows);
    assert.deepEqual(
      ledger.map((w) => [w.orderId, w.seq, w.outcome.result, w.time]),
      [
        ["a", 1, "committed", Date.parse("2026-01-01T00:00:00.000Z")],
        ["p", 2, "dead-lettered", Date.parse("2026-01-01T00:00:01.500Z")],
      ],
    );
    assert.equal(ledger[1].outcome.reason, "max-deliveries");
  });

  it("accepted ids are those with a PubAck; the checker finds an accepted order without an inbox row lost", () => {
    const history: HistoryEvent[] = [
      { type: "invoke", id: "a", kind: "order", source: "web", resend: false, time: 1 },
      { type: "ok", id: "a", seq: 1, duplicate: false, tries: 1, time: 2 },
      { type: "invoke", id: "b", kind: "order", source: "web", resend: false, time: 3 },
      { type: "ok", id: "b", seq: 2, duplicate: false, tries: 1, time: 4 },
      { type: "invoke", id: "c", kind: "order", source: "web", resend: false, time: 5 },
      { type: "fail", id: "c", error: "no responders", tries: 3, time: 6 },
    ];
    assert.deepEqual([...acceptedIds(history)].sort(), ["a", "b"]);
    const result = check({
      history,
      ledger: inboxLedger([{ orderId: "a", outcome: outcome("committed", "2026-01-01T00:00:00.000Z") }]),
      dlq: [],
      remaining: [],
      expect: { dlq: "only-marked", minFaults: 0, minRedeliveries: 0, faultsMustHaveEffect: false },
      observed: { faults: 0, redeliveries: 0, effects: 0, quiet: true },
    });
    assert.equal(result.valid, false);
    assert.deepEqual(result.categories.ok.ids, ["a"]);
    assert.deepEqual(result.categories.lost.ids, ["b"]);
  });

  it("an invalid payload is accepted by the stream but expects no effect: the effect checker does not call it lost", () => {
    const history: HistoryEvent[] = [
      { type: "invoke", id: "a", kind: "order", source: "web", resend: false, time: 1 },
      { type: "ok", id: "a", seq: 1, duplicate: false, tries: 1, time: 2 },
      { type: "invoke", id: "x", kind: "invalid", source: "web", resend: false, time: 3 },
      { type: "ok", id: "x", seq: 2, duplicate: false, tries: 1, time: 4 },
      { type: "invoke", id: "x", kind: "invalid", source: "web", resend: true, time: 5 },
      { type: "ok", id: "x", seq: 2, duplicate: true, tries: 1, time: 6 },
    ];
    assert.deepEqual([...acceptedIds(history)], ["a"]);
    const effects = checkEffects({
      inbox: [{ orderId: "a", outcome: "committed" }],
      orders: [{ orderId: "a", items: [{ sku: "mug-330", qty: 2 }] }],
      movements: [{ orderId: "a", sku: "mug-330", taken: 2 }],
      stockBefore: [{ sku: "mug-330", onHand: 10 }],
      stockAfter: [{ sku: "mug-330", onHand: 8 }],
      accepted: acceptedIds(history),
    });
    assert.equal(effects.valid, true, JSON.stringify(effects.categories));
    assert.deepEqual(effects.categories.ok.ids, ["a"]);
  });
});
