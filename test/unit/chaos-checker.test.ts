import assert from "node:assert/strict";
import { ackedWriteLine, parseAckedWrites } from "../../src/core/pipeline/acked-writes.js";
import { brokerFindings, type BrokerEvidence } from "../../src/core/chaos/broker-loss.js";
import { check, invalidReasons, scaleExpectations, type CheckInput, type MessageRef } from "../../src/core/chaos/checker.js";
import type { HistoryEvent, OpKind } from "../../src/core/pipeline/history.js";
import type { LedgerWrite } from "../../src/core/pipeline/ledger.js";

let time = 1_000;
let seq = 0;
/** The ORDERS sequence each id was last acknowledged at: a ledger write names the sequence it was delivered from. */
const acknowledgedAt = new Map<string, number>();

function published(id: string, kind: OpKind = "order", completion: "ok" | "fail" | "indeterminate" = "ok"): HistoryEvent[] {
  const invoke: HistoryEvent = { type: "invoke", id, kind, source: "web", resend: false, time: time++ };
  if (completion === "ok") {
    acknowledgedAt.set(id, ++seq);
    return [invoke, { type: "ok", id, seq, duplicate: false, tries: 1, time: time++ }];
  }
  return [invoke, { type: completion, id, error: "timeout", tries: 3, time: time++ }];
}

function write(orderId: string, result: "committed" | "dead-lettered" = "committed", attempt = 1): LedgerWrite {
  return {
    orderId,
    seq: ++seq,
    outcome: { result, worker: "w1", attempt, streamSeq: acknowledgedAt.get(orderId) ?? seq, at: new Date(time++).toISOString() },
  };
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
    const failed = check(input)
      .expectations.filter((e) => !e.ok)
      .map((e) => e.name);
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

describe("chaos verdicts an operator can read (issue 14)", () => {
  it("names every broken rule of an INVALID run, and nothing for a valid one", () => {
    assert.deepEqual(invalidReasons(check(cleanRun())), []);
    const input = cleanRun();
    input.ledger = input.ledger.filter((w) => w.orderId !== "c"); // c accepted, never processed
    input.observed = { ...input.observed, faults: 0 };
    assert.deepEqual(invalidReasons(check(input)), ["1 lost (c)", "faults observed: 0 observed, at least 1 expected"]);
  });

  it("scales the minimum faults and redeliveries down with the run's orders, never to 0 and never up", () => {
    const expect = { minFaults: 6, minRedeliveries: 2 };
    assert.deepEqual(scaleExpectations(expect, 500, 2000), {
      minFaults: 1,
      minRedeliveries: 1,
      scaledFrom: { orders: 2000, minFaults: 6, minRedeliveries: 2 },
    });
    assert.deepEqual(scaleExpectations(expect, 1000, 2000).minFaults, 3);
    assert.equal(scaleExpectations(expect, 2000, 2000), expect);
    assert.equal(scaleExpectations(expect, 8000, 2000), expect, "a bigger run keeps the scenario's minimums");
    assert.equal(scaleExpectations({ minFaults: 0, minRedeliveries: 0 }, 10, 2000).minFaults, 0);
    // The detail says it was scaled: a reader of the table knows why 1 sufficed.
    const input = cleanRun();
    input.expect = { ...input.expect, ...scaleExpectations({ minFaults: 6, minRedeliveries: 1 }, 500, 2000) };
    const faults = check(input).expectations.find((e) => e.name === "faults observed")!;
    assert.equal(faults.detail, "3 observed, at least 1 expected (the scenario's 6 for 2000 orders, scaled to this run's size)");
  });
});

describe("chaos checker: writes the broker acknowledged and lost", () => {
  /** cleanRun with the broker evidence of a healthy end: every stream holds what it acknowledged. */
  function withEvidence(input: CheckInput): CheckInput & { broker: BrokerEvidence } {
    const ok = input.history.filter((e) => e.type === "ok").map((e) => e.seq);
    return {
      ...input,
      broker: {
        acked: input.ledger.map((w) => ({ stream: "ledger" as const, seq: w.seq, id: w.orderId, at: w.time })),
        end: {
          orders: { lastSeq: Math.max(...ok) },
          ledger: { lastSeq: Math.max(...input.ledger.map((w) => w.seq)), held: new Map(input.ledger.map((w) => [w.seq, w.orderId])) },
          dlq: { lastSeq: 1, held: new Map([[1, "p"]]), complete: true },
        },
      },
    };
  }

  /** The ORDERS sequence the producer was acknowledged for `id`. */
  const pubAckSeq = (input: CheckInput, id: string) => (input.history.find((e) => e.type === "ok" && e.id === id) as { seq: number }).seq;

  it("finds nothing lost in a healthy run", () => {
    const r = check(withEvidence(cleanRun()));
    assert.equal(r.valid, true);
    assert.equal(r.brokerLostWrites.count, 0);
    assert.equal(r.categories.brokerLost.count, 0);
  });

  it("blames the broker for an order whose ORDERS sequence it later acknowledged for another order (the sequence was issued twice)", () => {
    const input = withEvidence(cleanRun());
    input.ledger = input.ledger.filter((w) => w.orderId !== "b");
    const reissued = pubAckSeq(input, "b");
    input.history.push(
      { type: "invoke", id: "x", kind: "order", source: "web", resend: false, time: time++ },
      { type: "ok", id: "x", seq: reissued, duplicate: false, tries: 1, time: time++ },
    );
    input.ledger.push(write("x"));
    const r = check(input);
    assert.deepEqual(r.categories.brokerLost, { count: 1, ids: ["b"] });
    assert.equal(r.categories.lost.count, 0);
    assert.deepEqual(r.brokerLostWrites.byStream, { orders: 1 }, "x, acknowledged later at that sequence, is not proven lost");
    assert.equal(r.valid, false, "the guarantee did not hold: the run is INVALID");
    assert.equal(r.brokerExplained, true, "but the broker's loss explains it");
  });

  it("blames the broker for an order whose ORDERS stream ends below its acknowledged sequence", () => {
    const input = withEvidence(cleanRun());
    input.ledger = input.ledger.filter((w) => w.orderId !== "p");
    input.dlq = [];
    input.broker.end.orders = { lastSeq: pubAckSeq(input, "p") - 1 };
    input.broker.end.dlq = { lastSeq: 0, held: new Map(), complete: true };
    const r = check(input);
    assert.deepEqual(r.categories.brokerLost.ids, ["p"]);
    assert.equal(r.brokerExplained, true);
  });

  it("blames the broker for a commit it acknowledged at a ledger sequence that now holds another key", () => {
    const input = withEvidence(cleanRun());
    const commit = input.ledger.find((w) => w.orderId === "a")!;
    // The commit of a is gone; the ledger reissued its sequence to c's commit.
    input.ledger = input.ledger.filter((w) => w.orderId !== "a" && w.orderId !== "c").concat({ ...write("c"), seq: commit.seq });
    input.broker.end.ledger!.held = new Map(input.ledger.map((w) => [w.seq, w.orderId]));
    const r = check(input);
    assert.deepEqual(r.categories.brokerLost.ids, ["a"]);
    assert.deepEqual(
      r.brokerLostWrites.samples.map((w) => [w.stream, w.id, w.proof]),
      [["ledger", "a", `ledger seq ${commit.seq} now holds c`]],
    );
    assert.equal(r.brokerExplained, true);
  });

  it("blames the broker for an order whose acknowledged ORDERS sequence it delivered another order from", () => {
    const input = withEvidence(cleanRun());
    input.ledger = input.ledger.filter((w) => w.orderId !== "b");
    const c = input.ledger.find((w) => w.orderId === "c")!;
    c.outcome = { ...c.outcome, streamSeq: pubAckSeq(input, "b") };
    const r = check(input);
    assert.deepEqual(r.categories.brokerLost.ids, ["b"]);
    assert.equal(r.brokerLostWrites.renumbered, 1, "c was delivered from b's sequence");
    assert.equal(r.brokerExplained, true);
  });

  it("blames the broker for a DLQ copy it acknowledged and no longer holds", () => {
    const input = withEvidence(cleanRun());
    input.dlq = [];
    input.broker.acked.push({ stream: "dlq", seq: 1, id: "p" });
    input.broker.end.dlq = { lastSeq: 1, held: new Map(), complete: true };
    const r = check(input);
    assert.deepEqual(r.categories.brokerLost.ids, ["p"]);
    assert.equal(r.categories.lost.count, 0);
  });

  it("negative control: an order orderq dropped is lost, not the broker's, even beside a proven broker loss", () => {
    const input = withEvidence(cleanRun());
    // b: acknowledged once, at a sequence nobody reused, committed by nobody — orderq's fault.
    input.ledger = input.ledger.filter((w) => w.orderId !== "b");
    input.broker.acked = input.broker.acked.filter((w) => w.id !== "b");
    input.broker.end.ledger!.held = new Map(input.ledger.map((w) => [w.seq, w.orderId]));
    let r = check(input);
    assert.deepEqual(r.categories.lost.ids, ["b"]);
    assert.equal(r.categories.brokerLost.count, 0);
    assert.equal(r.brokerExplained, false);
    // The broker losing c's commit as well explains c, not b.
    const commit = input.ledger.find((w) => w.orderId === "c")!;
    input.ledger = input.ledger.filter((w) => w !== commit);
    input.broker.end.ledger = { lastSeq: commit.seq - 1, held: new Map(input.ledger.map((w) => [w.seq, w.orderId])) };
    r = check(input);
    assert.deepEqual(r.categories.lost.ids, ["b"]);
    assert.deepEqual(r.categories.brokerLost.ids, ["c"]);
    assert.equal(r.valid, false);
    assert.equal(r.brokerExplained, false, "orderq's own loss is not explained by the broker's");
  });

  it("counts a lost write whose order was processed anyway, and stays valid", () => {
    const input = withEvidence(cleanRun());
    // a's first commit was acknowledged and lost; its redelivery committed it again, at a new sequence.
    input.broker.acked.push({ stream: "ledger", seq: 10_000, id: "a" });
    const r = check(input);
    assert.equal(r.brokerLostWrites.count, 1);
    assert.equal(r.categories.ok.count, 3);
    assert.equal(r.valid, true);
    assert.equal(r.brokerExplained, false);
  });
});

describe("acknowledged writes in a worker's trace", () => {
  it("reads back what the worker wrote, and nothing else", () => {
    const log = [
      `2026-11-30T07:12:47.836Z w1 commit a seq=2 attempt=1: written`,
      `2026-11-30T07:12:47.836Z w1 ${ackedWriteLine("ledger", 17, "a")}`,
      `2026-11-30T07:12:48.001Z w1 ${ackedWriteLine("dlq", 3, "seq:42")}`,
      "orderq: worker w1: timeout (the order is left for redelivery)",
    ].join("\n");
    assert.deepEqual(parseAckedWrites(log), [
      { stream: "ledger", seq: 17, id: "a" },
      { stream: "dlq", seq: 3, id: "seq:42" },
    ]);
  });

  it("proves an ORDERS write lost when the broker delivered another order from its sequence, and the order itself from nowhere", () => {
    // As in the run of seed 43415774: ORDERS' replicas numbered their messages differently (12 apart),
    // the consumer delivered from one of them, and the orders the others held at those sequences vanished.
    const history: HistoryEvent[] = [
      { type: "ok", id: "x", seq: 10, duplicate: false, tries: 1, time: 1 },
      { type: "ok", id: "y", seq: 11, duplicate: false, tries: 1, time: 2 },
    ];
    const findings = brokerFindings(history, [{ id: "y", seq: 10 }], { acked: [], end: { orders: { lastSeq: 11 } } });
    assert.deepEqual(findings.lost, [{ stream: "orders", seq: 10, id: "x", proof: "orders delivered y from seq 10, acknowledged for this one" }]);
    assert.deepEqual(findings.renumbered, ["y"], "y was delivered, from another sequence than acknowledged: renumbered, not lost");
    // x delivered from anywhere did what its write was for.
    assert.deepEqual(
      brokerFindings(
        history,
        [
          { id: "y", seq: 10 },
          { id: "x", seq: 9 },
        ],
        { acked: [], end: {} },
      ).lost,
      [],
    );
  });

  it("proves only what the evidence shows: an acknowledged write still held is not lost", () => {
    const history: HistoryEvent[] = [{ type: "ok", id: "a", seq: 1, duplicate: false, tries: 1, time: 1 }];
    const held = { lastSeq: 5, held: new Map([[5, "a"]]) };
    assert.deepEqual(brokerFindings(history, [], { acked: [{ stream: "ledger", seq: 5, id: "a" }], end: { orders: { lastSeq: 1 }, ledger: held } }), {
      lost: [],
      renumbered: [],
    });
  });
});
