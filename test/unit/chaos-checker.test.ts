import assert from "node:assert/strict";
import { check, type CheckInput, type MessageRef } from "../../src/core/chaos/checker.js";
import type { HistoryEvent, OpKind } from "../../src/core/pipeline/history.js";
import type { LedgerWrite } from "../../src/core/pipeline/ledger.js";

let time = 1_000;
let seq = 0;

function published(id: string, kind: OpKind = "order", completion: "ok" | "fail" | "indeterminate" = "ok"): HistoryEvent[] {
  const invoke: HistoryEvent = { type: "invoke", id, kind, source: "web", resend: false, time: time++ };
  if (completion === "ok") return [invoke, { type: "ok", id, seq: ++seq, duplicate: false, tries: 1, time: time++ }];
  return [invoke, { type: completion, id, error: "timeout", tries: 3, time: time++ }];
}

function write(orderId: string, result: "committed" | "dead-lettered" = "committed", attempt = 1): LedgerWrite {
  return { orderId, seq: ++seq, outcome: { result, worker: "w1", attempt, streamSeq: seq, at: new Date(time++).toISOString() } };
}

/** A run where a, b, c were committed once and p (poison) was dead-lettered once, with faults that had an effect. */
function cleanRun(): CheckInput {
  return {
    history: [...published("a"), ...published("b"), ...published("c"), ...published("p", "poison")],
    ledger: [write("a"), write("b", "committed", 2), write("c"), write("p", "dead-lettered", 5)],
    dlq: [{ msgId: "p", orderId: "p" }],
    remaining: [],
    expect: { dlq: "only-marked", minFaults: 1, minRedeliveries: 1, faultsMustHaveEffect: true },
    observed: { faults: 3, redeliveries: 1, effects: 4, quiet: true },
  };
}

describe("chaos checker", () => {
  it("finds a clean history valid", () => {
    const r = check(cleanRun());
    assert.equal(r.valid, true, JSON.stringify(r.expectations));
    assert.equal(r.categories.ok.count, 3);
    assert.equal(r.categories.deadLetteredExpected.count, 1);
    assert.equal(r.invoked, 4);
    assert.equal(r.accepted, 4);
  });

  it("is invalid when a fault kind the schedule names never had an effect, however many other faults there were", () => {
    const input = cleanRun();
    input.observed = { ...input.observed, faults: 100, unseenKinds: [] };
    assert.equal(check(input).valid, true);
    input.observed.unseenKinds = ["cut-network"];
    const r = check(input);
    assert.equal(r.valid, false);
    assert.deepEqual(
      r.expectations.filter((e) => !e.ok).map((e) => [e.name, e.detail]),
      [["every scheduled fault seen at work", "never seen at work: cut-network"]],
    );
  });

  it("catches a lost order: accepted, never committed nor dead-lettered", () => {
    const input = cleanRun();
    input.ledger = input.ledger.filter((w) => w.orderId !== "b");
    const r = check(input);
    assert.equal(r.valid, false);
    assert.deepEqual(r.categories.lost, { count: 1, ids: ["b"] });
  });

  it("catches a duplicated order: committed twice", () => {
    const input = cleanRun();
    input.ledger.push(write("c", "committed", 2));
    const r = check(input);
    assert.equal(r.valid, false);
    assert.deepEqual(r.categories.duplicated, { count: 1, ids: ["c"] });
  });

  it("catches an order both committed and dead-lettered as duplicated", () => {
    const input = cleanRun();
    input.ledger.push(write("a", "dead-lettered", 5));
    input.dlq.push({ msgId: "a", orderId: "a" });
    assert.deepEqual(check(input).categories.duplicated.ids, ["a"]);
  });

  it("catches an unexpected order: processed but never published", () => {
    const input = cleanRun();
    input.ledger.push(write("ghost"));
    const r = check(input);
    assert.equal(r.valid, false);
    assert.deepEqual(r.categories.unexpected, { count: 1, ids: ["ghost"] });
  });

  it("catches an unexpected order: processed though its every publish surely failed", () => {
    const input = cleanRun();
    input.history.push(...published("f", "order", "fail"));
    input.ledger.push(write("f"));
    assert.deepEqual(check(input).categories.unexpected.ids, ["f"]);
  });

  it("counts an indeterminate publish that was processed as recovered, and one that was not as unresolved", () => {
    const input = cleanRun();
    input.history.push(...published("i1", "order", "indeterminate"), ...published("i2", "order", "indeterminate"));
    input.ledger.push(write("i1"));
    const r = check(input);
    assert.equal(r.valid, true);
    assert.deepEqual(r.categories.recovered.ids, ["i1"]);
    assert.deepEqual(r.categories.unresolved.ids, ["i2"]);
  });

  it("counts an unprocessed order still in the stream as stuck, a processed one as residue", () => {
    const input = cleanRun();
    input.history.push(...published("s"));
    input.remaining = [{ msgId: "s" }, { msgId: "a" }] satisfies MessageRef[];
    const r = check(input);
    assert.equal(r.valid, false);
    assert.deepEqual(r.categories.stuck.ids, ["s"]);
    assert.deepEqual(r.residue.ids, ["a"]);
  });

  it("matches an invalid payload's DLQ entry by its original message id", () => {
    const input = cleanRun();
    input.history.push(...published("bad", "invalid"));
    input.dlq.push({ msgId: "bad" }); // the payload had no usable order id
    assert.deepEqual(check(input).categories.deadLetteredExpected.ids, ["bad", "p"]);
  });

  it("fails the only-marked expectation when an ordinary order is dead-lettered, or a poison one committed", () => {
    const input = cleanRun();
    input.ledger = input.ledger.map((w) => (w.orderId === "b" ? write("b", "dead-lettered", 5) : w.orderId === "p" ? write("p") : w));
    input.dlq = [{ msgId: "b", orderId: "b" }];
    const r = check(input);
    assert.equal(r.valid, false);
    const failed = r.expectations.filter((e) => !e.ok).map((e) => e.name);
    assert.deepEqual(failed, ["dlq holds only marked orders", "every marked order dead-lettered"]);
  });

  it("fails a run whose faults were not observed or changed nothing", () => {
    const input = cleanRun();
    input.observed = { faults: 0, redeliveries: 0, effects: 0, quiet: true };
    const failed = check(input).expectations.filter((e) => !e.ok).map((e) => e.name);
    assert.deepEqual(failed, ["faults observed", "redeliveries", "faults had an effect"]);
  });

  it("fails a run that never became quiet, and says whether the time limit cut its schedule short", () => {
    const input = cleanRun();
    input.observed.quiet = false;
    const quiet = (i: CheckInput) => check(i).expectations.find((e) => e.name === "quiet");
    assert.equal(check(input).valid, false);
    assert.match(quiet(input)?.detail ?? "", /leftover orders remained/);
    input.observed.cutShort = true;
    assert.equal(check(input).valid, false);
    assert.equal(quiet(input)?.detail, "the time limit ended the run before its schedule did");
  });

  it("keeps at most 20 sample ids per category", () => {
    const input = cleanRun();
    for (let i = 0; i < 30; i++) input.history.push(...published(`l${String(i).padStart(2, "0")}`));
    const r = check(input);
    assert.equal(r.categories.lost.count, 30);
    assert.equal(r.categories.lost.ids.length, 20);
  });
});
