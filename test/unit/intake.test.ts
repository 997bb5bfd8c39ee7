/** The gateway's pure parts: the Idempotency-Key header, the payload fingerprint, problem field paths, tokens. */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fingerprint, parseIdempotencyKey } from "../../src/core/intake/idempotency.js";
import { fieldProblem } from "../../src/core/intake/problem.js";
import { tokensFrom } from "../../src/cli/intake-flags.js";
import { InputError } from "../../src/core/base/errors.js";

describe("intake: Idempotency-Key", () => {
  it("accepts the draft's quoted string and a bare token", () => {
    assert.deepEqual(parseIdempotencyKey('"ord-1"'), { ok: true, key: "ord-1" });
    assert.deepEqual(parseIdempotencyKey(" ord-1 "), { ok: true, key: "ord-1" });
    assert.deepEqual(parseIdempotencyKey('"a \\"b\\" \\\\c"'), { ok: true, key: 'a "b" \\c' });
  });

  it("refuses what is neither, naming why", () => {
    for (const bad of ['"ord-1', '"', '""', "", "a b", 'a"b', '"a\\x"', '"a"b"', `"${"k".repeat(256)}"`, '"é"']) {
      const r = parseIdempotencyKey(bad);
      assert.equal(r.ok, false, bad);
    }
  });
});

describe("intake: fingerprint", () => {
  it("is the same for the same JSON in another member order, and differs for another value", () => {
    const a = fingerprint({ id: "x", items: [{ sku: "a", qty: 1 }], amount: 1 });
    assert.equal(a, fingerprint({ amount: 1, items: [{ qty: 1, sku: "a" }], id: "x" }));
    assert.notEqual(a, fingerprint({ id: "x", items: [{ sku: "a", qty: 2 }], amount: 1 }));
    assert.match(a, /^[0-9a-f]{64}$/);
  });
});

describe("intake: problem field paths", () => {
  it("gives a JSON pointer and a dotted path", () => {
    assert.deepEqual(fieldProblem(["items", 0, "qty"], "too small"), { pointer: "#/items/0/qty", path: "items.0.qty", detail: "too small" });
    assert.deepEqual(fieldProblem([], "not JSON"), { pointer: "#", path: "(root)", detail: "not JSON" });
    assert.equal(fieldProblem(["a/b", "c~d"], "x").pointer, "#/a~1b/c~0d");
  });
});

describe("intake: bearer tokens", () => {
  it("reads a tokens file (comments and blank lines skipped) and names a bad line without showing it", () => {
    const dir = mkdtempSync(join(tmpdir(), "orderq-tokens-"));
    const good = join(dir, "good");
    writeFileSync(good, "# shop\nt0ken-a\n\n  t0ken-b  \n");
    assert.deepEqual(tokensFrom({ "api-token": "t0ken-c", "api-tokens-file": good }), ["t0ken-c", "t0ken-a", "t0ken-b"]);
    const bad = join(dir, "bad");
    writeFileSync(bad, "t0ken-a\nsecret with spaces\n");
    assert.throws(
      () => tokensFrom({ "api-tokens-file": bad }),
      (err: Error) => err instanceof InputError && /line 2/.test(err.message) && !/secret/.test(err.message),
    );
    assert.deepEqual(tokensFrom({}), []);
  });
});
