/** The DLQ operator tools without a server: replay pacing and its interrupted summary, purge's dry-run listing, page counts. */
import assert from "node:assert/strict";
import { countByReason, replayDueMs, withoutForeign, type ReplayOutcome } from "../../src/core/ops/dlq-admin.js";
import { DEFAULT_NAMES, dlqSubject } from "../../src/core/nats/names.js";
import { render, summarise } from "../../src/commands/dlq/replay.js";
import { renderDryRun } from "../../src/commands/dlq/purge.js";
import type { StoredDlqEntry } from "../../src/core/pipeline/dlq-entry.js";

const done = (dlqSeq: number, result: ReplayOutcome["result"]): ReplayOutcome => ({ dlqSeq, orderId: `o-${dlqSeq}`, result });

describe("DLQ replay pacing", () => {
  it("spaces entries 1000/rate ms apart from the start", () => {
    assert.deepEqual(
      [0, 1, 2, 10].map((i) => replayDueMs(5_000, i, 4)),
      [5_000, 5_250, 5_500, 7_500],
    );
  });

  it("does not wait with no rate (0)", () => {
    assert.deepEqual(
      [0, 1, 1000].map((i) => replayDueMs(5_000, i, 0)),
      [5_000, 5_000, 5_000],
    );
  });
});

describe("DLQ replay summary", () => {
  it("counts the entries not reached as left, and says so when interrupted", () => {
    const s = summarise(false, [1, 2, 4, 7, 9], [done(1, "replayed"), done(2, "refused")], true);
    assert.deepEqual(
      { replayed: s.replayed, refused: s.refused, failed: s.failed, left: s.left, leftSeqs: s.leftSeqs, interrupted: s.interrupted },
      { replayed: 1, refused: 1, failed: 0, left: 3, leftSeqs: [4, 7, 9], interrupted: true },
    );
    assert.match(
      render(s, "ORDERS"),
      /replayed 1, refused 1, failed 0\.\nInterrupted: 3 entries left in the DLQ, not attempted \(seq:4 seq:7 seq:9\): replay them again\.$/,
    );
  });

  it("is not interrupted when the signal came after the last entry", () => {
    const s = summarise(false, [1], [done(1, "replayed")], true);
    assert.equal(s.interrupted, false);
    assert.equal(s.left, 0);
    assert.doesNotMatch(render(s, "ORDERS"), /Interrupted/);
  });

  it("says nothing was replayed when stopped before the first entry, rather than 'nothing matches'", () => {
    assert.equal(
      render(summarise(false, [3, 5], [], true), "ORDERS"),
      "Interrupted before the first entry: 2 entries left in the DLQ (seq:3 seq:5), nothing replayed.",
    );
    assert.equal(render(summarise(false, [], [], false), "ORDERS"), "No DLQ entry matches: nothing to replay.");
  });
});

describe("DLQ purge --dry-run listing", () => {
  it("lists every entry and counts them by reason, saying nothing was deleted", () => {
    const entry = (dlqSeq: number, orderId: string | undefined, reason: StoredDlqEntry["reason"]) =>
      ({ dlqSeq, orderId, reason, source: "web", deadLetteredAt: "2026-01-01T00:00:00.000Z" }) as StoredDlqEntry;
    const text = renderDryRun([entry(3, "a-1", "max-deliveries"), entry(9, undefined, "invalid-payload")], "ORDERS_DLQ");
    assert.match(text, /│ 3 +│ a-1 +│ web +│ max-deliveries/);
    assert.match(text, /│ 9 +│ - +│ web +│ invalid-payload/);
    assert.match(text, /Would purge 2 entries \(.*\) from ORDERS_DLQ\. Dry run: nothing was deleted\.$/);
  });
});

describe("DLQ counts less the foreign messages a page read", () => {
  const counts = {
    total: 5,
    byReason: countByReason(["non-retryable", "non-retryable", "max-deliveries", "crashed-worker", "invalid-payload"]),
    foreign: 1,
  };

  it("moves a foreign message on a reason's subject from that reason to foreign, and leaves other subjects alone", () => {
    const read = [
      dlqSubject(DEFAULT_NAMES, "web", "non-retryable"),
      dlqSubject(DEFAULT_NAMES, "web"),
      dlqSubject(DEFAULT_NAMES, "web", "nope"),
      "elsewhere.x",
    ];
    const after = withoutForeign(
      counts,
      read.map((subject) => ({ subject })),
      DEFAULT_NAMES,
    );
    assert.deepEqual([after.total, after.byReason["non-retryable"], after.foreign], [4, 1, 2]);
    assert.deepEqual(counts.byReason["non-retryable"], 2, "the counts given are not changed");
  });

  it("never counts a reason below zero (a filtered count did not include it)", () => {
    const after = withoutForeign(
      counts,
      [{ subject: dlqSubject(DEFAULT_NAMES, "api", "non-retryable") }].concat(
        Array(3).fill({ subject: dlqSubject(DEFAULT_NAMES, "api", "non-retryable") }),
      ),
      DEFAULT_NAMES,
    );
    assert.deepEqual([after.total, after.byReason["non-retryable"], after.foreign], [3, 0, 3]);
  });
});
