/** `orderq bench`'s verdicts and figures, computed from made-up ledger writes: no server. */
import assert from "node:assert/strict";
import { checkCounts } from "../../src/core/bench/baseline.js";
import { commitTimes, steadyWindow, verifyCommits } from "../../src/core/bench/commits.js";
import { summarizeLatency } from "../../src/core/bench/histogram.js";
import type { LedgerWrite } from "../../src/core/pipeline/ledger.js";
import { makeOrder, orderJson, parseOrder } from "../../src/core/pipeline/order.js";
import { seededRng } from "../../src/core/base/random.js";
import { answerLatencies } from "../../src/core/bench/intake.js";
import { BenchSink } from "../../src/core/bench/produce.js";
import { checkTargets, summarize } from "../../src/core/bench/summary.js";
import type { PhaseName, PhaseResult, RunResult } from "../../src/core/bench/types.js";

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

  it("reports no percentile above the max (the top of the max's bucket lies above it)", () => {
    // 131.02 ms falls in a bucket 131.008–131.071 ms wide: its top was reported as p99.9 above the max.
    const s = summarizeLatency([...Array.from({ length: 998 }, () => 1), 131.02, 131.02]);
    assert.equal(s.maxMs, 131.02);
    assert.equal(s.p999Ms, 131.02);
    assert.ok(s.p99Ms <= s.p999Ms && s.p999Ms <= s.maxMs, JSON.stringify(s));
  });

  it("pads orders to the requested size and they still validate", () => {
    for (const bytes of [0, 120, 300, 1024, 5000]) {
      const payload = orderJson(makeOrder("pad-1", "web", seededRng(bytes)), bytes);
      assert.ok(payload.length >= bytes && payload.length < Math.max(bytes, 200) + 40, `${bytes}: ${payload.length}`);
      assert.equal(parseOrder(new TextEncoder().encode(payload)).ok, true);
    }
  });

  it("times an intake request from the send call to its answer, and leaves out one never answered", () => {
    const sink = new BenchSink(true);
    sink.record({ type: "invoke", id: "a", kind: "order", source: "web", resend: false, time: 0 });
    sink.record({ type: "invoke", id: "b", kind: "order", source: "web", resend: false, time: 0 });
    sink.record({ type: "ok", id: "a", seq: 1, duplicate: false, tries: 1, time: 0 });
    const latencies = answerLatencies(sink);
    assert.equal(latencies.length, 1);
    assert.ok(latencies[0] >= 0 && latencies[0] < 1000, String(latencies[0]));
    assert.deepEqual(sink.accepted, ["a"]);
  });

  it("with --intake, the gateway's ratio is each run's intake ÷ produce, then the median, against issue 12's targets", () => {
    const latency = (p99Ms: number) => ({ samples: 100, p50Ms: 1, p90Ms: 2, p99Ms, p999Ms: p99Ms + 1, maxMs: p99Ms + 2, meanMs: 1 });
    const result = (phase: PhaseName, rate: number, extra: Partial<PhaseResult> = {}): PhaseResult => ({
      phase,
      count: rate,
      elapsedMs: 1000,
      rate,
      window: "",
      cpu: { clientSeconds: 1, serverSeconds: 1 },
      verification: { ok: true, detail: "", expected: rate, lost: 0, duplicated: 0, unexpected: 0 },
      ...extra,
    });
    const run = (n: number, produce: number, intake: number, p99: number): RunResult => ({
      run: n,
      verified: true,
      phases: [
        result("publish", 10_000),
        result("consume", 10_000),
        result("floor", 8_000),
        result("produce", produce),
        result("work", 6_000, { workerPeakRssMb: [100] }),
        result("latency", 2_000, { latency: latency(5) }),
        result("intake", intake),
        result("intake-latency", 1_990, { latency: latency(p99) }),
      ],
    });
    // Ratios 0.5, 0.2, 0.6: their median 0.5 (meets ≥ 0.5); the medians of the rates alone would give 3,000 ÷ 10,000.
    const s = summarize([run(1, 10_000, 5_000, 8), run(2, 15_000, 3_000, 30), run(3, 5_000, 3_000, 9)]);
    assert.deepEqual(s.intake?.rates, { intake: 3_000, "intake-latency": 1_990 });
    assert.equal(s.intake?.produceRatio, 0.5);
    assert.equal(s.intake?.latency.p99Ms, 9);
    const targets = checkTargets(s, { rate: 2000, concurrency: 64 }).filter((t) => t.target.startsWith("intake"));
    assert.deepEqual(
      targets.map((t) => [t.target, t.measured, t.met]),
      [
        ["intake (HTTP) ≥ 0.5 × produce", "0.5 × (3,000/s)", true],
        ["intake p99 ≤ 10 ms at 2,000 requests/s", "9.00 ms", true],
      ],
    );
    // Without the intake phases there is no intake summary and no intake target.
    const plain = summarize([{ ...run(1, 10_000, 5_000, 8), phases: run(1, 10_000, 5_000, 8).phases.slice(0, 6) }]);
    assert.equal(plain.intake, undefined);
    assert.equal(checkTargets(plain, { rate: 1000, concurrency: 64 }).filter((t) => t.target.startsWith("intake")).length, 0);
  });
});
