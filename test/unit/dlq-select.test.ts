/** Naming DLQ entries: a bare argument is an order id, seq:N a DLQ sequence, id:X an order id. */
import assert from "node:assert/strict";
import { parseSelector, select } from "../../src/core/ops/dlq-admin.js";
import type { StoredDlqEntry } from "../../src/core/pipeline/dlq-entry.js";

const at = (dlqSeq: number, orderId?: string) => ({ dlqSeq, orderId }) as StoredDlqEntry;
// Order "7" sits at sequence 2; sequence 1 belongs to order "a"; order "seq:9" exists too.
const entries = [at(1, "a"), at(2, "7"), at(3, undefined), at(4, "a"), at(7, "b"), at(8, "seq:9")];
const seqs = (selectors: string[]) => select(entries, selectors).map((e) => e.dlqSeq);

describe("DLQ selectors", () => {
  it("reads a bare argument as an order id, digits included, never as a sequence", () => {
    assert.deepEqual(seqs(["7"]), [2]);
    assert.deepEqual(seqs(["a"]), [1, 4]);
    assert.throws(() => seqs(["1"]), /^InputError: not in the DLQ: 1 \(no order has that id; the entry at DLQ sequence 1 is seq:1\)$/);
    assert.throws(() => seqs(["99"]), /^InputError: not in the DLQ: 99$/);
  });

  it("reads seq:N as a sequence and id:X as an order id", () => {
    assert.deepEqual(seqs(["seq:7"]), [7]);
    assert.deepEqual(seqs(["seq:3"]), [3], "an entry without an order id is reachable by sequence");
    assert.deepEqual(seqs(["id:7"]), [2]);
    assert.deepEqual(seqs(["id:seq:9"]), [8]);
    assert.deepEqual(seqs(["seq:4", "a", "id:a"]), [1, 4], "each entry once, in DLQ order");
  });

  it("refuses malformed selectors before anything is read", () => {
    for (const bad of ["seq:", "seq:0", "seq:-1", "seq:1.5", "seq:x", "seq:99999999999999999999", "seq:9007199254740993", "id:", ""])
      assert.throws(() => parseSelector(bad), /InputError/, bad);
    assert.throws(() => seqs(["seq:9"]), /not in the DLQ: seq:9/);
  });
});
