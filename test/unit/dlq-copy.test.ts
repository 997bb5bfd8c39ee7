/**
 * What a DLQ copy may add to the original, and the claim of a payload without an order id: every
 * message fits in a copy (so it can leave ORDERS), and one publish re-sent is claimed once.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  boundDlqCopy,
  decodeDlqEntry,
  encodeDlqHeaders,
  headerBytes,
  MAX_HEADER_BYTES,
  MAX_VALUE_CHARS,
  type DlqEntry,
} from "../../src/core/pipeline/dlq-entry.js";
import { isPayloadClaim, payloadClaimKey } from "../../src/core/pipeline/outcome-store.js";
import { parseOrder } from "../../src/core/pipeline/order.js";

const MiB = 1024 * 1024;

function entry(overrides: Partial<DlqEntry> = {}): DlqEntry {
  return {
    reason: "invalid-payload",
    lastError: "invalid-payload: no id",
    source: "web",
    originalStream: "ORDERS",
    originalSubject: "orders.web",
    originalSeq: 3,
    originalHeaders: { "Nats-Msg-Id": ["o-1"] },
    consumer: "workers",
    deliveries: 1,
    attempts: [],
    deadLetteredAt: "2026-11-30T10:00:00.000Z",
    ...overrides,
  };
}

describe("DLQ copy bounds", () => {
  it("keeps an ordinary entry and its payload as they are", () => {
    const payload = new TextEncoder().encode('{"id":"o-1"}');
    const e = entry();
    const copy = boundDlqCopy(e, payload, MiB, "dlq:ORDERS:3:o-1");
    assert.deepEqual(copy.entry, e);
    assert.equal(copy.payload, payload);
  });

  it("a body just under max payload: the copy keeps its size and SHA-256 instead, and says so", () => {
    const payload = new Uint8Array(MiB - 64).fill(120);
    const copy = boundDlqCopy(entry(), payload, MiB, "dlq:ORDERS:3:o-1");
    assert.equal(copy.payload.length, 0);
    assert.deepEqual(copy.entry.payloadOmitted, { bytes: MiB - 64, sha256: createHash("sha256").update(payload).digest("hex") });
    const h = encodeDlqHeaders(copy.entry, "dlq:ORDERS:3:o-1");
    assert.ok(headerBytes(h) + copy.payload.length <= MiB);
    assert.deepEqual(decodeDlqEntry(h, copy.payload, 1).payloadOmitted, copy.entry.payloadOmitted, "round-trips");
  });

  it("a JSON order with a 70,000-character id: every value is cut, the headers stay bounded", () => {
    const id = "a".repeat(70_000);
    const payload = new TextEncoder().encode(JSON.stringify({ id, source: "web", items: [], amount: 1, createdAt: "2026-11-30" }));
    const parsed = parseOrder(payload);
    assert.equal(parsed.ok, false);
    const e = entry({ orderId: id, lastError: `invalid-payload: bad id ${id}`, originalHeaders: { "Nats-Msg-Id": [id], "X-Trace": ["t"] } });
    assert.ok(headerBytes(encodeDlqHeaders(e, `dlq:ORDERS:3:${id}`)) > 64 * 1024, "the unbounded copy would be refused");
    const copy = boundDlqCopy(e, payload, MiB, "dlq:ORDERS:3");
    const h = encodeDlqHeaders(copy.entry, "dlq:ORDERS:3");
    assert.ok(headerBytes(h) <= MAX_HEADER_BYTES, `${headerBytes(h)} header bytes`);
    assert.deepEqual(copy.entry.truncated, ["originalHeaders", "lastError", "orderId"]);
    assert.ok(copy.entry.orderId!.startsWith("a".repeat(MAX_VALUE_CHARS)));
    assert.match(copy.entry.orderId!, /… \[70000 characters, cut\]$/);
    assert.equal(copy.entry.originalHeaders["X-Trace"][0], "t");
    assert.equal(copy.payload, payload, "a payload that fits is kept whole");
    const back = decodeDlqEntry(h, copy.payload, 1);
    assert.deepEqual([back.orderId, back.truncated], [copy.entry.orderId, copy.entry.truncated]);
  });

  it("drops the oldest attempts while the headers are too large, and counts them", () => {
    const attempts = Array.from({ length: 200 }, (_, i) => ({
      orderId: "o-1",
      streamSeq: 3,
      attempt: i + 1,
      worker: "w1",
      error: `attempt ${i + 1}: ${"e".repeat(900)}`,
      errorClass: "Error",
      at: "2026-11-30T10:00:00.000Z",
    }));
    const copy = boundDlqCopy(entry({ reason: "max-deliveries", attempts }), new Uint8Array(10), MiB);
    assert.ok(headerBytes(encodeDlqHeaders(copy.entry)) <= MAX_HEADER_BYTES);
    assert.equal(copy.entry.attemptsOmitted! + copy.entry.attempts.length, 200);
    assert.equal(copy.entry.attempts.at(-1)!.attempt, 200, "the newest attempts are kept");
    assert.equal(copy.payload.length, 10);
  });
});

describe("payload claims", () => {
  const bytes = (text: string) => new TextEncoder().encode(text);

  it("claim a re-sent publish by its message id, whatever its bytes, and one without an id by its content", () => {
    assert.equal(payloadClaimKey(bytes("{bad"), "id-1"), payloadClaimKey(bytes("{other"), "id-1"));
    assert.notEqual(payloadClaimKey(bytes("{bad"), "id-1"), payloadClaimKey(bytes("{bad"), "id-2"));
    assert.equal(payloadClaimKey(bytes("{bad")), payloadClaimKey(bytes("{bad")));
    assert.notEqual(payloadClaimKey(bytes("{bad")), payloadClaimKey(bytes("{bad2")));
    assert.notEqual(payloadClaimKey(bytes("x"), "x"), payloadClaimKey(bytes("x")), "an id and a content never share a key");
  });

  it("are valid KV keys that no order id can be", () => {
    for (const key of [payloadClaimKey(bytes("x"), "a b.c*>"), payloadClaimKey(bytes("x"))]) {
      assert.match(key, /^[-/_=.a-zA-Z0-9]+$/);
      assert.ok(isPayloadClaim(key));
      assert.equal(parseOrder(bytes(JSON.stringify({ id: key, source: "web", items: [], amount: 1, createdAt: "2026-11-30" }))).ok, false);
    }
    assert.equal(isPayloadClaim("order-1"), false);
  });
});
