/**
 * `orderq bench`: the shape of its result and its exactly-once verdicts, never its speed (CI machines
 * are slow and shared). It starts its own nats-server; NATS_URL must not lead it to another one.
 */
import assert from "node:assert/strict";
import type { BenchResult } from "../../src/core/bench/runner.js";
import { json, runCli } from "../support/cli.js";

describe("orderq bench", function () {
  this.timeout(240_000);

  it("measures every phase on its own server and verifies each one exactly-once", async () => {
    // A NATS_URL that points nowhere: the bench must ignore it and start its own server.
    const result = await runCli(["bench", "--orders", "2000", "--runs", "1", "--rate", "500", "--latency-seconds", "2", "--json"], {
      NATS_URL: "nats://127.0.0.1:1",
    });
    assert.equal(result.code, 0, result.stderr);
    const r = json<BenchResult>(result);
    assert.equal(r.environment.server.ours, true);
    assert.doesNotMatch(r.environment.server.url, /:4222$|:1$/);
    assert.equal(r.verified, true);
    assert.equal(r.runs.length, 1);
    const phases = r.runs[0].phases;
    assert.deepEqual(phases.map((p) => p.phase), ["publish", "consume", "floor", "produce", "work", "latency"]);
    for (const p of phases) {
      assert.equal(p.verification.ok, true, `${p.phase}: ${p.verification.detail}`);
      assert.ok(p.rate > 0 && p.elapsedMs > 0 && p.count > 0, `${p.phase} figures: ${JSON.stringify(p)}`);
      assert.ok(p.cpu.clientSeconds >= 0 && p.cpu.serverSeconds !== null && p.cpu.serverSeconds >= 0, `${p.phase} cpu`);
    }
    const latency = phases.find((p) => p.phase === "latency")!;
    assert.equal(latency.count, 1000, "500/s for 2 s");
    assert.equal(latency.verification.expected, 3000, "2,000 warm-up orders (--orders) are verified too");
    assert.equal(latency.latency!.samples, 1000);
    for (const p of phases.filter((p) => p.phase === "work" || p.phase === "latency")) {
      assert.equal(p.workerPeakRssMb!.length, 1);
      assert.ok(p.workerPeakRssMb![0] > 0);
    }
    const s = r.summary;
    for (const rate of Object.values(s.rates)) assert.ok(rate > 0);
    assert.ok(s.produceRatio > 0 && s.workRatio > 0 && s.floorRatio > 0 && s.workToFloor > 0 && s.workerPeakRssMb > 0);
    const l = s.latency;
    assert.ok(l.p50Ms > 0 && l.p50Ms <= l.p90Ms && l.p90Ms <= l.p99Ms && l.p99Ms <= l.p999Ms && l.p999Ms <= l.maxMs, JSON.stringify(l));
    assert.equal(r.targets.length, 5);
    for (const t of r.targets) assert.equal(typeof t.met, "boolean");
  });
});
