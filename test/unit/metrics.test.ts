/** The metrics only the supervising process serves, rendered as a scraper reads them. */
import assert from "node:assert/strict";
import { dlqDepthRegistry } from "../../src/core/fleet/metrics.js";

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
