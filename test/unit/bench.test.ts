/** `orderq bench`'s verdicts and figures, computed from made-up ledger writes: no server. */
import assert from "node:assert/strict";
import { checkCounts } from "../../src/core/bench/baseline.js";
import { commitTimes, steadyWindow, verifyCommits } from "../../src/core/bench/commits.js";
import { summarizeLatency } from "../../src/core/bench/histogram.js";
import type { LedgerWrite } from "../../src/core/pipeline/ledger.js";
import { makeOrder, orderJson, parseOrder } from "../../src/core/pipeline/order.js";
import { seededRng } from "../../src/core/base/random.js";

function commit(orderId: string, worker: string, time: number, seq: number): LedgerWrite {
  return { orderId, seq, time, outcome: { result: "committed", worker, attempt: 1, streamSeq: seq, at: new Date(time).toISOString() } };
}

describe("bench: verdicts and figures", () => {
  it("verifyCommits fails a phase that lost, doubled or invented an order", () => {
    const writes = [commit("a", "w1", 1, 1), commit("b", "w1", 2, 2), commit("b", "w2", 3, 3), commit("z", "w1", 4, 4)];
    const v = verifyCommits(writes, ["a", "b", "c"], 0);
    assert.equal(v.ok, false);
    assert.deepEqual([v.lost, v.duplicated, v.unexpected], [1, 1, 1]);
    assert.equal(verifyCommits(writes.slice(0, 2), ["a", "b"], 0).ok, true);
  });

  it("the baselines' verdict fails a phase with a message lost, doubled or extra, and passes an exact one", () => {
    assert.deepEqual(checkCounts(10, 10, 0, "d"), { ok: true, detail: "d", expected: 10, lost: 0, duplicated: 0, unexpected: 0 });
    assert.deepEqual(checkCounts(10, 9, 0, "d"), { ok: false, detail: "d", expected: 10, lost: 1, duplicated: 0, unexpected: 0 });
    assert.deepEqual(checkCounts(10, 10, 2, "d"), { ok: false, detail: "d", expected: 10, lost: 0, duplicated: 2, unexpected: 0 });
    assert.deepEqual(checkCounts(10, 11, 0, "d"), { ok: false, detail: "d", expected: 10, lost: 0, duplicated: 0, unexpected: 1 });
  });

  it("times work from the moment every worker has committed, and latency from the first commit", () => {
    const writes = [
      commit("a", "w1", 1000, 1),
      commit("b", "w1", 1100, 2),
      commit("c", "w2", 1200, 3),
      commit("d", "w1", 1700, 4),
      commit("d", "w2", 1800, 5),
    ];
    assert.deepEqual(steadyWindow(writes), { t0: 1200, t1: 1800, count: 2 });
    assert.equal(commitTimes(writes).get("d"), 1700);
  });

  it("summarizes latencies with HdrHistogram percentiles", () => {
    const s = summarizeLatency(Array.from({ length: 1000 }, (_, i) => (i + 1) / 10));
    assert.equal(s.samples, 1000);
    assert.ok(Math.abs(s.p50Ms - 50) < 0.1 && Math.abs(s.p99Ms - 99) < 0.1 && Math.abs(s.maxMs - 100) < 0.1, JSON.stringify(s));
  });

  it("pads orders to the requested size and they still validate", () => {
    for (const bytes of [0, 120, 300, 1024, 5000]) {
      const payload = orderJson(makeOrder("pad-1", "web", seededRng(bytes)), bytes);
      assert.ok(payload.length >= bytes && payload.length < Math.max(bytes, 200) + 40, `${bytes}: ${payload.length}`);
      assert.equal(parseOrder(new TextEncoder().encode(payload)).ok, true);
    }
  });
});
