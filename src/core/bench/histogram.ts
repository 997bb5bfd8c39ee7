/** Latency percentiles from an HdrHistogram (microsecond resolution, 3 significant digits). */
import { build } from "hdr-histogram-js";
import type { LatencySummary } from "./types.js";

const HOUR_US = 3_600_000_000;

export function summarizeLatency(latenciesMs: readonly number[]): LatencySummary {
  const h = build({ lowestDiscernibleValue: 1, highestTrackableValue: HOUR_US, numberOfSignificantValueDigits: 3 });
  // Publish time (this process) and commit time (the server) are read by two processes: clamp any inversion.
  for (const ms of latenciesMs) h.recordValue(Math.min(HOUR_US, Math.max(1, Math.round(ms * 1000))));
  const ms = (us: number) => Math.round(us) / 1000;
  // A percentile is the top of its bucket (64 µs wide around 131 ms at 3 digits), which can lie above
  // the largest value recorded: no percentile is reported above the max.
  const at = (percentile: number) => ms(Math.min(h.getValueAtPercentile(percentile), h.maxValue));
  return {
    samples: latenciesMs.length,
    p50Ms: at(50),
    p90Ms: at(90),
    p99Ms: at(99),
    p999Ms: at(99.9),
    maxMs: ms(h.maxValue),
    meanMs: ms(h.mean),
  };
}
