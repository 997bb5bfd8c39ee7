/** The autoscale policy's promises, as properties over arbitrary sample pairs. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { decide, type AutoscaleConfig, type Sample } from "../../src/core/fleet/autoscale-policy.js";

const RUNS = Number(process.env.ORDERQ_PROPERTY_RUNS ?? 500);

const config: fc.Arbitrary<AutoscaleConfig> = fc
  .record({
    min: fc.integer({ min: 1, max: 4 }),
    span: fc.integer({ min: 0, max: 12 }),
    targetLagSeconds: fc.integer({ min: 1, max: 60 }),
    cooldownMs: fc.integer({ min: 0, max: 30_000 }),
    maxStepUp: fc.integer({ min: 1, max: 4 }),
  })
  .map(({ min, span, ...rest }) => ({ min, max: min + span, ...rest }));

/** Two consecutive samples of a pool whose size is within bounds. */
const samples = (c: AutoscaleConfig) =>
  fc
    .record({
      time: fc.integer({ min: 1_000_000, max: 2_000_000 }),
      dt: fc.integer({ min: 100, max: 10_000 }),
      lag0: fc.integer({ min: 0, max: 100_000 }),
      lag1: fc.integer({ min: 0, max: 100_000 }),
      committed0: fc.integer({ min: 0, max: 1_000_000 }),
      commits: fc.integer({ min: 0, max: 50_000 }),
      workers: fc.integer({ min: c.min, max: c.max }),
      sinceChange: fc.option(fc.integer({ min: 0, max: 60_000 }), { nil: undefined }),
    })
    .map((s) => {
      const prev: Sample = { time: s.time, lag: s.lag0, committed: s.committed0, workers: s.workers };
      const now: Sample = { time: s.time + s.dt, lag: s.lag1, committed: s.committed0 + s.commits, workers: s.workers };
      const lastChangeAt = s.sinceChange === undefined ? undefined : now.time - s.sinceChange;
      return { prev, now, lastChangeAt };
    });

const withSamples = fc.tuple(config).chain(([c]) => fc.tuple(fc.constant(c), samples(c)));

function drainSeconds(prev: Sample, now: Sample): number {
  const rate = (now.committed - prev.committed) / ((now.time - prev.time) / 1000);
  return now.lag === 0 ? 0 : rate > 0 ? now.lag / rate : Infinity;
}

describe("autoscale policy (properties)", () => {
  it("never leaves [min, max]", () => {
    fc.assert(
      fc.property(withSamples, ([c, { prev, now, lastChangeAt }]) => {
        const d = decide(c, prev, now, lastChangeAt);
        return d.workers >= c.min && d.workers <= c.max;
      }),
      { numRuns: RUNS },
    );
  });

  it("brings a pool outside its bounds back at once", () => {
    fc.assert(
      fc.property(config, fc.integer({ min: 0, max: 40 }), (c, workers) => {
        fc.pre(workers < c.min || workers > c.max);
        const s: Sample = { time: 10_000, lag: 0, committed: 0, workers };
        const d = decide(c, { ...s, time: 9_000 }, s, s.time);
        return d.workers === (workers < c.min ? c.min : c.max);
      }),
      { numRuns: RUNS },
    );
  });

  it("never scales up while the lag is falling fast enough to meet the target", () => {
    fc.assert(
      fc.property(withSamples, ([c, { prev, now, lastChangeAt }]) => {
        const slope = (now.lag - prev.lag) / ((now.time - prev.time) / 1000);
        fc.pre(slope < 0 && now.lag / -slope <= c.targetLagSeconds);
        return decide(c, prev, now, lastChangeAt).action !== "up";
      }),
      { numRuns: RUNS },
    );
  });

  it("never scales down while the lag is above target", () => {
    fc.assert(
      fc.property(withSamples, ([c, { prev, now, lastChangeAt }]) => {
        fc.pre(drainSeconds(prev, now) > c.targetLagSeconds);
        return decide(c, prev, now, lastChangeAt).action !== "down";
      }),
      { numRuns: RUNS },
    );
  });

  it("never changes the pool inside a cooldown", () => {
    fc.assert(
      fc.property(withSamples, ([c, { prev, now, lastChangeAt }]) => {
        fc.pre(lastChangeAt !== undefined && now.time - lastChangeAt < c.cooldownMs);
        return decide(c, prev, now, lastChangeAt).action === "hold";
      }),
      { numRuns: RUNS },
    );
  });

  it("scales up a stalled backlog and down an empty one (examples)", () => {
    const c: AutoscaleConfig = { min: 1, max: 8, targetLagSeconds: 5, cooldownMs: 3000, maxStepUp: 2 };
    const up = decide(c, { time: 0, lag: 3000, committed: 0, workers: 1 }, { time: 1000, lag: 2950, committed: 50, workers: 1 }, undefined);
    assert.equal(up.action, "up");
    assert.equal(up.workers, 3, "step limit");
    assert.match(up.reason, /lag 2950, 50 orders\/s, drain 59\.0s > target 5s/);
    const down = decide(c, { time: 0, lag: 0, committed: 10, workers: 3 }, { time: 1000, lag: 0, committed: 10, workers: 3 }, undefined);
    assert.deepEqual([down.action, down.workers], ["down", 2]);
    const atMin = decide(c, { time: 0, lag: 0, committed: 10, workers: 1 }, { time: 1000, lag: 0, committed: 10, workers: 1 }, undefined);
    assert.equal(atMin.action, "hold");
  });
});
