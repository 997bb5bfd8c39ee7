/** Scrapes a Prometheus endpoint as a scraper would, for the tests of `--metrics-port`. */
import assert from "node:assert/strict";

/** Parses Prometheus text format strictly enough to catch a malformed exposition: series → value. */
export function parsePrometheus(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+]+|NaN|\+Inf|-Inf)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${JSON.stringify(line)}`);
    values.set(m[1] + (m[2] ?? ""), Number(m[3]));
  }
  return values;
}

/** GET http://127.0.0.1:port/metrics, parsed. */
export async function scrape(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
  return parsePrometheus(await res.text());
}

/** The sum of every series of `metric`, whatever its labels (what `sum(metric)` is in PromQL). */
export function sumSeries(samples: Map<string, number>, metric: string): number {
  let total = 0;
  for (const [series, value] of samples) if (series === metric || series.startsWith(`${metric}{`)) total += value;
  return total;
}
