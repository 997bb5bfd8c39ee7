/** The metrics a worker and its supervisor serve, rendered as a scraper reads them. */
import assert from "node:assert/strict";
import { dlqDepthRegistry, mergeMetrics, WorkerMetrics } from "../../src/core/fleet/metrics.js";
import { emptyStats } from "../../src/core/pipeline/worker.js";

describe("orderq_dlq_depth", () => {
  it("is one series per reason, read afresh at each scrape", async () => {
    let byReason: Record<string, number> = { "invalid-payload": 3, "non-retryable": 1, "max-deliveries": 0 };
    const registry = dlqDepthRegistry(async () => byReason);
    const first = await registry.metrics();
    assert.match(first, /^# TYPE orderq_dlq_depth gauge$/m);
    assert.match(first, /^orderq_dlq_depth\{reason="invalid-payload"\} 3$/m);
    assert.match(first, /^orderq_dlq_depth\{reason="non-retryable"\} 1$/m);
    assert.match(first, /^orderq_dlq_depth\{reason="max-deliveries"\} 0$/m);

    byReason = { "invalid-payload": 0 }; // purged
    const second = await registry.metrics();
    assert.match(second, /^orderq_dlq_depth\{reason="invalid-payload"\} 0$/m);
    assert.doesNotMatch(second, /non-retryable/, "a reason the sample no longer names is not left at its old value");
  });
});

describe("the labelled order counters", () => {
  it("count commits by source and dead-letters by source and reason; any other source is unknown", async () => {
    const metrics = new WorkerMetrics(() => emptyStats());
    for (const source of ["web", "web", "mobile", "kiosk", "constructor"]) metrics.committed(source);
    metrics.deadLettered("api", "max-deliveries");
    metrics.deadLettered("__proto__", "invalid-payload");
    const text = await metrics.registry.metrics();
    assert.match(text, /^orderq_orders_committed_total\{source="web"\} 2$/m);
    assert.match(text, /^orderq_orders_committed_total\{source="mobile"\} 1$/m);
    assert.match(text, /^orderq_orders_committed_total\{source="unknown"\} 2$/m);
    assert.match(text, /^orderq_orders_dead_lettered_total\{source="api",reason="max-deliveries"\} 1$/m);
    assert.match(text, /^orderq_orders_dead_lettered_total\{source="unknown",reason="invalid-payload"\} 1$/m);
    assert.doesNotMatch(text, /source="(kiosk|constructor|__proto__)"/, "a stray source is no series of its own");
    assert.doesNotMatch(text, /committed_total\{source="api"\}/, "a label set never counted is no series");
  });

  it("sum over a supervisor's children series by series", async () => {
    const a = new WorkerMetrics(() => emptyStats());
    const b = new WorkerMetrics(() => emptyStats());
    a.committed("web");
    b.committed("web");
    b.committed("api");
    const merged = mergeMetrics([await a.registry.getMetricsAsJSON(), await b.registry.getMetricsAsJSON()]);
    const text = await merged.metrics();
    assert.match(text, /^orderq_orders_committed_total\{source="web"\} 2$/m);
    assert.match(text, /^orderq_orders_committed_total\{source="api"\} 1$/m);
  });
});
