/** The worker's pure rules (issue 16, item 4): whose write a commit found, and what a settings change does to the orders in hand. */
import assert from "node:assert/strict";
import { describeLeaseChange, isOwnWrite } from "../../src/core/pipeline/worker.js";
import type { Outcome } from "../../src/core/pipeline/outcome-store.js";
import { onceInAWhile } from "../../src/core/fleet/worker-process.js";

describe("isOwnWrite", () => {
  const mine: Outcome = { result: "committed", worker: "w1", attempt: 3, streamSeq: 42, at: "2026-11-30T10:00:00.000Z" };

  it("is the commit's own earlier try when result, worker, sequence and delivery match (the time may differ)", () => {
    assert.equal(isOwnWrite({ ...mine, at: "2026-11-30T10:00:01.000Z" }, mine), true);
  });

  it("is not when the same process's DLQ mover claimed the order under the same worker, sequence and delivery", () => {
    assert.equal(isOwnWrite({ ...mine, result: "dead-lettered", reason: "max-deliveries" }, mine), false);
  });

  it("is not another worker's, another delivery's, another message's or the other lane's write", () => {
    for (const other of [{ worker: "w2" }, { attempt: 2 }, { streamSeq: 43 }, { lane: "quarantine" as const }]) {
      assert.equal(isOwnWrite({ ...mine, ...other }, mine), false, JSON.stringify(other));
    }
  });
});

describe("describeLeaseChange", () => {
  const before = { ackWaitMs: 30_000, maxDeliver: 5 };

  it("says nothing when nothing changed", () => {
    assert.equal(describeLeaseChange(before, { ...before }, [{ contact: 0 }], 60_000), undefined);
  });

  it("names a shorter ack wait, the new in-progress interval and how many orders in hand may have lost their lease", () => {
    // Renewed 2.5 s and 0.5 s ago; the new ack wait is 1 s: the first may be redelivered already.
    const change = describeLeaseChange(before, { ackWaitMs: 1_000, maxDeliver: 5 }, [{ contact: 7_500 }, { contact: 9_500 }], 10_000);
    assert.equal(change?.atRisk, 1);
    assert.equal(
      change?.message,
      "the consumer's settings changed: ack wait 30s → 1s (in-progress acks now every 333ms); 1 order(s) in hand last renewed their lease longer ago than the new ack wait: they may be redelivered while their handlers still run (the ledger keeps one commit)",
    );
  });

  it("names a max deliver change, with no lease at risk when the ack wait stays", () => {
    const change = describeLeaseChange(before, { ackWaitMs: 30_000, maxDeliver: 3 }, [{ contact: 0 }], 20_000);
    assert.deepEqual([change?.atRisk, change?.message], [0, "the consumer's settings changed: max deliver 5 → 3"]);
  });
});

describe("a worker process's error lines (README, inbox: a failed batch COMMIT)", () => {
  it("writes a given message at most once every 10 s: a batch of 16 failing on one error is one line, counted elsewhere 16 times", () => {
    const lines: string[] = [];
    let clock = 0; // a clock that starts at 0 still lets the first line through
    const log = onceInAWhile(
      (line) => lines.push(line),
      () => clock,
    );
    for (let i = 0; i < 16; i++) log("Connection terminated unexpectedly");
    log("connect ECONNREFUSED 127.0.0.1:5432");
    clock += 9_999;
    log("Connection terminated unexpectedly");
    assert.deepEqual(lines, ["Connection terminated unexpectedly", "connect ECONNREFUSED 127.0.0.1:5432"]);
    clock += 1;
    log("Connection terminated unexpectedly");
    assert.equal(lines.length, 3, "again once 10 s have passed");
  });
});
