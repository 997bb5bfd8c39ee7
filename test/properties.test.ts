/** Pure properties of the codecs and the checker, many runs each (ORDERQ_PROPERTY_RUNS). */
import assert from "node:assert/strict";
import fc from "fast-check";
import { MsgHdrsImpl } from "@nats-io/transport-node";
import type { AttemptRecord } from "../src/core/attempts.js";
import { decodeDlqEntry, DLQ_REASONS, encodeDlqHeaders, oneLine, type DlqEntry } from "../src/core/dlq-entry.js";

const RUNS = Number(process.env.ORDERQ_PROPERTY_RUNS ?? 300);

const token = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/);
const time = fc.date({ min: new Date("2020-01-01"), max: new Date("2040-01-01"), noInvalidDate: true }).map((d) => d.toISOString());
const text = fc.string({ unit: "binary", maxLength: 200 });

const attempt: fc.Arbitrary<AttemptRecord> = fc.record(
  {
    orderId: token,
    streamSeq: fc.nat(),
    attempt: fc.integer({ min: 1, max: 100 }),
    worker: token,
    error: text,
    errorClass: token,
    at: time,
  },
  { requiredKeys: ["streamSeq", "attempt", "worker", "error", "errorClass", "at"] },
);

const entry: fc.Arbitrary<DlqEntry> = fc.record(
  {
    reason: fc.constantFrom(...DLQ_REASONS),
    lastError: text,
    orderId: text,
    source: token,
    originalStream: token,
    originalSubject: token,
    originalSeq: fc.nat(),
    originalHeaders: fc.dictionary(token, fc.array(text, { minLength: 1, maxLength: 3 })),
    consumer: token,
    deliveries: fc.integer({ min: 1, max: 1000 }),
    attempts: fc.array(attempt, { maxLength: 8 }),
    firstAttemptAt: time,
    lastAttemptAt: time,
    deadLetteredAt: time,
  },
  { requiredKeys: ["reason", "lastError", "source", "originalStream", "originalSubject", "originalSeq", "originalHeaders", "consumer", "deliveries", "attempts", "deadLetteredAt"] },
);

/** Through the bytes a NATS message carries, not just the in-memory header map. */
function overTheWire(e: DlqEntry, msgId?: string) {
  const wire = MsgHdrsImpl.decode((encodeDlqHeaders(e, msgId) as MsgHdrsImpl).encode());
  return decodeDlqEntry(wire, new Uint8Array(), 7);
}

describe("DLQ entry codec (properties)", () => {
  it("round-trips every field over the wire (free text as one trimmed line)", () => {
    fc.assert(
      fc.property(entry, (e) => {
        const { dlqSeq, payload, ...decoded } = overTheWire(e);
        const expected: Record<string, unknown> = { ...e, lastError: oneLine(e.lastError) };
        if (e.orderId !== undefined) expected.orderId = oneLine(e.orderId);
        for (const k of ["orderId", "firstAttemptAt", "lastAttemptAt"] as const) if (e[k] === undefined) delete expected[k];
        const actual = Object.fromEntries(Object.entries(decoded).filter(([, v]) => v !== undefined));
        // (JSON: fast-check builds null-prototype objects, the decoder ordinary ones)
        assert.deepEqual(actual, JSON.parse(JSON.stringify(expected)));
        assert.equal(dlqSeq, 7);
        assert.equal(payload.length, 0);
      }),
      { numRuns: RUNS },
    );
  });

  it("always puts the de-duplication id first", () => {
    fc.assert(
      fc.property(entry, token, (e, id) => {
        const bytes = new TextDecoder().decode((encodeDlqHeaders(e, id) as MsgHdrsImpl).encode());
        return bytes.split("\r\n")[1] === `Nats-Msg-Id: ${id}`;
      }),
      { numRuns: RUNS },
    );
  });
});
