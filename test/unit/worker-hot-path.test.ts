/** The worker's per-order shortcuts (issue 13) keep what they stand for: the same values, read later or made once. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { headers, type MsgHdrs } from "@nats-io/transport-node";
import type { JsMsg } from "@nats-io/jetstream";
import { isoNow } from "../../src/core/base/clock.js";
import { seededRng } from "../../src/core/base/random.js";
import { NonRetryableError, PoisonOrderError, simulatedHandler, TransientError, type HandlerContext } from "../../src/core/pipeline/handler.js";
import { OrderContext } from "../../src/core/pipeline/order-context.js";
import { daysInMonth, makeOrder } from "../../src/core/pipeline/order.js";
import type { Outcome } from "../../src/core/pipeline/outcome-store.js";
import { MainLaneDelivery, ownWriteAsWritten } from "../../src/core/pipeline/worker.js";

const RUNS = Number(process.env.ORDERQ_PROPERTY_RUNS ?? 200);

describe("a main-lane delivery", () => {
  /** A message that counts the reads of its subject and headers (each one decodes bytes in the client). */
  function message(h: MsgHdrs) {
    const reads = { subject: 0, headers: 0 };
    const msg = {
      info: { streamSequence: 42, deliveryCount: 3 },
      get subject() {
        reads.subject++;
        return "orders.web";
      },
      get headers() {
        reads.headers++;
        return h;
      },
    } as unknown as JsMsg;
    return { msg, reads };
  }

  it("takes its sequence and delivery count from the message, and reads subject and headers only when asked", () => {
    const h = headers();
    h.set("Nats-Msg-Id", "o-1");
    const { msg, reads } = message(h);
    const d = new MainLaneDelivery(msg);
    assert.deepEqual([d.seq, d.attempt, d.msg], [42, 3, msg]);
    assert.deepEqual(reads, { subject: 0, headers: 0 });
    assert.equal(d.subject, "orders.web");
    assert.equal(d.headers?.get("Nats-Msg-Id"), "o-1");
    assert.deepEqual(reads, { subject: 1, headers: 1 });
  });
});

describe("a handler's ctx", () => {
  const signals = new Map([["m1", AbortSignal.abort("lease lost")]]);
  const lines: string[] = [];
  const source = { signal: (key: string) => signals.get(key)!, log: (orderId: string, message: string) => lines.push(`${orderId}: ${message}`) };
  const db = { query: () => Promise.reject(new Error("no db")) };

  it("gives the attempt, the idempotency key, the db, the order's signal and a log tagged with the order id, destructured too", () => {
    lines.length = 0;
    const ctx: HandlerContext = new OrderContext(source, "m1", 2, "o-7", db);
    const { attempt, idempotencyKey, db: given, signal, log } = ctx;
    assert.deepEqual([attempt, idempotencyKey, given], [2, "o-7", db]);
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason, "lease lost");
    log("first");
    ctx.log("second");
    assert.deepEqual(lines, ["o-7: first", "o-7: second"]);
  });

  it("asks for the signal of its own order only when it is read", () => {
    let asked: string[] = [];
    const counting = { ...source, signal: (key: string) => (asked.push(key), AbortSignal.abort()) };
    const ctx = new OrderContext(counting, "m9", 1, "o-9", db);
    assert.deepEqual(asked, []);
    void ctx.signal;
    assert.deepEqual(asked, ["m9"]);
    asked = [];
    void new OrderContext(counting, "m10", 1, "o-10", db).attempt;
    assert.deepEqual(asked, []);
  });

  it("keeps a working log in a { ...ctx } copy, and its signal behind a Proxy or Object.create", () => {
    lines.length = 0;
    const ctx: HandlerContext = new OrderContext(source, "m1", 3, "o-8", db);
    const copy = { ...ctx };
    copy.log("from a copy");
    assert.deepEqual([copy.attempt, copy.idempotencyKey, lines], [3, "o-8", ["o-8: from a copy"]]);
    assert.equal(new Proxy(ctx, {}).signal.aborted, true);
    assert.equal((Object.create(ctx) as HandlerContext).signal.reason, "lease lost");
  });
});

describe("the commit's time stamp", () => {
  it("is new Date(Date.now()).toISOString() at each call: the same millisecond twice, the next, and a clock stepped back", () => {
    const clock = [1_764_500_000_000, 1_764_500_000_000, 1_764_500_000_001, 1_764_499_999_000, 1_764_500_000_001];
    const realNow = Date.now;
    const seen: string[] = [];
    try {
      for (const ms of clock) {
        Date.now = () => ms;
        seen.push(isoNow());
      }
    } finally {
      Date.now = realNow;
    }
    assert.deepEqual(
      seen,
      clock.map((ms) => new Date(ms).toISOString()),
    );
  });
});

describe("the validator's calendar", () => {
  it("has the days of every month of every year as Date counts them (year 0 and centuries included)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 1, max: 12 }), (year, month) => {
        const d = new Date(0);
        d.setUTCFullYear(year, month, 0); // day 0 of the next month: the last day of this one
        assert.equal(daysInMonth(year, month), d.getUTCDate());
      }),
      { numRuns: RUNS * 5 },
    );
    assert.deepEqual([daysInMonth(1900, 2), daysInMonth(2000, 2), daysInMonth(2023, 2), daysInMonth(2024, 4)], [28, 29, 28, 30]);
  });
});

describe("the simulated handler", () => {
  const ctx = (attempt: number): HandlerContext => ({
    attempt,
    idempotencyKey: "x",
    signal: new AbortController().signal,
    log: () => {},
    db: { query: () => Promise.reject(new Error("no")) },
  });
  const never = () => {
    throw new Error("the handler drew a random number at fail rate 0");
  };

  it("succeeds at zero delay and zero fail rate without a random draw", async () => {
    const handler = simulatedHandler({ handlerMs: 0, failRate: 0, poisonSwitch: true }, never);
    for (let i = 0; i < 3; i++) await handler(makeOrder(`o-${i}`, "web", seededRng(i)), ctx(1));
  });

  it("fails by rejecting, never by throwing: transient, poison and fatal", async () => {
    const failing = simulatedHandler({ handlerMs: 0, failRate: 1, poisonSwitch: true }, seededRng(1));
    const cases: [ReturnType<typeof makeOrder>, new (...args: never[]) => Error][] = [
      [makeOrder("t-1", "web", seededRng(1)), TransientError],
      [makeOrder("p-1", "web", seededRng(1), "poison"), PoisonOrderError],
      [makeOrder("f-1", "web", seededRng(1), "fatal"), NonRetryableError],
    ];
    for (const [order, kind] of cases) {
      let result: Promise<void> | undefined;
      assert.doesNotThrow(() => (result = failing(order, ctx(2))));
      await assert.rejects(result!, kind);
    }
  });

  it("waits handlerMs, then succeeds or fails as drawn", async () => {
    await simulatedHandler({ handlerMs: 5, failRate: 0, poisonSwitch: true }, never)(makeOrder("d-1", "api", seededRng(2)), ctx(1));
    await assert.rejects(
      simulatedHandler({ handlerMs: 5, failRate: 1, poisonSwitch: true }, seededRng(3))(makeOrder("d-2", "api", seededRng(2)), ctx(4)),
      /attempt 4/,
    );
  });

  it("lets poison orders through when the poison switch is off", async () => {
    await simulatedHandler({ handlerMs: 0, failRate: 0, poisonSwitch: false }, never)(makeOrder("p-2", "web", seededRng(1), "poison"), ctx(1));
  });
});

describe("a commit that found its own earlier try", () => {
  const mine: Outcome = { result: "committed", worker: "w1", attempt: 1, streamSeq: 7, at: "2026-11-30T17:00:00.000Z" };

  it("counts as written; another outcome stays what it is", () => {
    assert.deepEqual(ownWriteAsWritten({ written: false, existing: { ...mine, at: "2026-11-30T17:00:00.004Z" } }, mine), { written: true });
    const theirs = { written: false, existing: { ...mine, worker: "w2" } };
    assert.equal(ownWriteAsWritten(theirs, mine), theirs);
    assert.deepEqual(ownWriteAsWritten({ written: true, seq: 9 }, mine), { written: true, seq: 9 });
  });
});
